"""Posting to Slack through dagster-slack: the message was delivered, or not yet and when to retry.

`FlowerSlackResource` is dagster-slack's `SlackResource` (its token comes from the
SLACK_BOT_TOKEN environment variable through `EnvVar`, so Dagster shows the variable's name,
never its value) with the Web API base URL configurable, so tests point it at a local server.

Its client retries nothing by itself (`retry_handlers=[]`): a sensor tick must stay short, and a
message Slack did not take is retried by a later tick instead (sensors.py). The outcome of one
call is `Posted` (channel id and ts, for thread replies) or `NotDelivered` (why, whether Slack
may have taken it anyway, whether retrying can help, and when Slack allows the next try).

`chat.postMessage` has no idempotency key, so each post carries a mark in its message
`metadata` (`mark`); `find_marked` looks for it, so a post whose answer was lost is found
instead of posted twice.
"""

from __future__ import annotations

import math
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dagster_slack import SlackResource
from pydantic import Field
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from flower_dagster.settings import DEFAULT_SLACK_API_URL

TOKEN_VARIABLE = "SLACK_BOT_TOKEN"
MARK_EVENT = "flower_alert"  # the metadata event_type of every message the sensor posts
LOOKUP_PAGES = 10  # pages of history read when looking for a mark (200 messages each)
# Slack errors that say the channel is wrong, not Slack: the alert goes to the platform channel.
CHANNEL_ERRORS = frozenset({"channel_not_found", "not_in_channel", "is_archived"})
RETRY_AFTER_DEFAULT = 30.0  # seconds, when a 429 has no usable Retry-After
# Slack errors that make a look for a mark impossible (not the bot's channel, no history scope).
LOOKUP_BLOCKED = CHANNEL_ERRORS | {"missing_scope", "no_permission", "not_allowed_token_type"}
# Slack errors that another try may fix: Slack's own trouble, or the bot's token and workspace
# (every message would fail alike, so alerts wait for the fix rather than being dropped).
TRANSIENT_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "not_authed",
        "invalid_auth",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "not_allowed_token_type",
        "team_access_not_granted",
        "ekm_access_denied",
        "access_denied",
    }
)


class FlowerSlackResource(SlackResource):
    """dagster-slack's resource with a configurable Web API base URL and no in-call retries."""

    base_url: str = Field(DEFAULT_SLACK_API_URL, description="the Slack Web API base URL")
    timeout_seconds: int = Field(10, description="seconds to wait for one Slack call")

    def get_client(self) -> WebClient:
        return WebClient(
            token=self.token,
            base_url=self.base_url,
            timeout=self.timeout_seconds,
            retry_handlers=[],
        )


@dataclass(frozen=True)
class Posted:
    channel: str
    ts: str


@dataclass(frozen=True)
class NotDelivered:
    reason: str
    retry_after: float | None = None  # seconds, from Slack's Retry-After
    channel_problem: bool = False  # the channel is wrong: try the platform channel
    refused: bool = False  # Slack refused this message for good: retrying cannot fix it
    maybe_posted: bool = False  # the request may have reached Slack (timeout, dropped, 5xx)
    code: str | None = None  # Slack's error code when it refused


def mark(run_id: str, resolved_by: str | None = None) -> dict[str, Any]:
    """The message metadata that identifies an alert (or its reply by `resolved_by`)."""
    payload = {"run_id": run_id}
    if resolved_by is not None:
        payload["resolved_by"] = resolved_by
    return {"event_type": MARK_EVENT, "event_payload": payload}


def post(
    client: WebClient,
    channel: str,
    message: dict[str, Any],
    thread_ts: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> Posted | NotDelivered:
    """One chat.postMessage; never raises for Slack's or the network's failures."""
    response = _call(
        client.chat_postMessage,
        channel=channel,
        text=message["text"],
        blocks=message.get("blocks"),
        thread_ts=thread_ts,
        unfurl_links=False,
        unfurl_media=False,
        metadata=metadata,
    )
    if isinstance(response, NotDelivered):
        return response
    return Posted(str(response.get("channel") or channel), str(response["ts"]))


def find_marked(
    client: WebClient,
    channel: str,
    metadata: dict[str, Any],
    oldest: float,
    thread_ts: str | None = None,
) -> Posted | NotDelivered | None:
    """The message carrying `metadata` in `channel` (a channel id) since `oldest`, if any.

    A thread reply is looked for in its thread (conversations.replies), anything else in the
    channel's history (conversations.history); both need the mark, hence include_all_metadata.
    """
    cursor: str | None = None
    for _ in range(LOOKUP_PAGES):
        thread = {} if thread_ts is None else {"ts": thread_ts}
        response = _call(
            client.conversations_history if thread_ts is None else client.conversations_replies,
            channel=channel,
            oldest=f"{oldest:.6f}",
            include_all_metadata=True,
            limit=200,
            cursor=cursor,
            **thread,
        )
        if isinstance(response, NotDelivered):
            return response
        for message in response.get("messages") or []:
            found = message.get("metadata") or {}
            if (
                found.get("event_type") == metadata["event_type"]
                and found.get("event_payload") == metadata["event_payload"]
            ):
                return Posted(channel, str(message["ts"]))
        cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return None
    return None


def find_channel(client: WebClient, name: str) -> str | NotDelivered | None:
    """The id of the channel `#name` (conversations.history takes ids only), if the bot sees it."""
    wanted = name.removeprefix("#")
    cursor: str | None = None
    while True:
        response = _call(
            client.conversations_list,
            types="public_channel,private_channel",
            limit=1000,
            cursor=cursor,
        )
        if isinstance(response, NotDelivered):
            return response
        for channel in response.get("channels") or []:
            if channel.get("name") == wanted:
                return str(channel["id"])
        cursor = (response.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return None


def _call(method: Callable[..., Any], **arguments: Any) -> Any:
    """One Web API call; Slack's and the network's failures become NotDelivered, never raised."""
    try:
        return method(**arguments)
    except SlackApiError as error:
        return _not_delivered(error)
    except (TimeoutError, urllib.error.URLError, OSError) as error:
        return _unreachable(error)


def retry_after_seconds(value: Any) -> float:
    """Slack's Retry-After in whole seconds: an integer, a decimal rounded up, else 30 s."""
    if isinstance(value, list):
        value = value[0] if value else None
    try:
        seconds = math.ceil(float(str(value).strip()))
    except (TypeError, ValueError, OverflowError):
        return RETRY_AFTER_DEFAULT
    return float(seconds) if seconds >= 0 else RETRY_AFTER_DEFAULT


def _not_delivered(error: SlackApiError) -> NotDelivered:
    response = error.response
    status = getattr(response, "status_code", None)
    headers = {k.lower(): v for k, v in (getattr(response, "headers", None) or {}).items()}
    if status == 429:
        seconds = retry_after_seconds(headers.get("retry-after"))
        return NotDelivered(f"Slack rate limit (429, retry after {seconds:g} s)", seconds)
    data = getattr(response, "data", None)
    code = data.get("error") if isinstance(data, dict) else None
    if status is not None and status >= 500:
        return NotDelivered(
            f"Slack server error ({status}{f': {code}' if code else ''})", maybe_posted=True
        )
    return NotDelivered(
        f"Slack refused the message ({code or status})",
        code=code,
        channel_problem=code in CHANNEL_ERRORS,
        # Only Slack's own answer about this message is final; an answer without one is not.
        refused=code is not None and code not in CHANNEL_ERRORS | TRANSIENT_ERRORS,
    )


def _unreachable(error: BaseException) -> NotDelivered:
    # A refused connection never reached Slack; a timeout or a dropped connection may have.
    reason = getattr(error, "reason", error)
    sent = not isinstance(reason, ConnectionRefusedError)
    return NotDelivered(
        f"Slack is unreachable ({type(error).__name__}: {_reason(error)})", maybe_posted=sent
    )


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None)
    return str(reason if reason is not None else error)[:200]
