"""Posting to Slack through dagster-slack: the message was delivered, or not yet and when to retry.

`FlowerSlackResource` is dagster-slack's `SlackResource` (its token comes from the
SLACK_BOT_TOKEN environment variable through `EnvVar`, so Dagster shows the variable's name,
never its value) with the Web API base URL configurable, so tests point it at a local server.

Its client retries nothing by itself (`retry_handlers=[]`): a sensor tick must stay short, and a
message Slack did not take is retried by a later tick instead (sensors.py). The outcome of one
call is `Posted` (channel id and ts, for thread replies) or `NotDelivered` (why, and when Slack
allows the next try for a 429).
"""

from __future__ import annotations

import math
import urllib.error
from dataclasses import dataclass
from typing import Any

from dagster_slack import SlackResource
from pydantic import Field
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from flower_dagster.settings import DEFAULT_SLACK_API_URL

TOKEN_VARIABLE = "SLACK_BOT_TOKEN"
# Slack errors that say the channel is wrong, not Slack: the alert goes to the platform channel.
CHANNEL_ERRORS = frozenset({"channel_not_found", "not_in_channel", "is_archived"})
RETRY_AFTER_DEFAULT = 30.0  # seconds, when a 429 has no usable Retry-After


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


def post(
    client: WebClient,
    channel: str,
    message: dict[str, Any],
    thread_ts: str | None = None,
) -> Posted | NotDelivered:
    """One chat.postMessage; never raises for Slack's or the network's failures."""
    try:
        response = client.chat_postMessage(
            channel=channel,
            text=message["text"],
            blocks=message.get("blocks"),
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
        )
    except SlackApiError as error:
        return _not_delivered(error)
    except (TimeoutError, urllib.error.URLError, OSError) as error:
        return NotDelivered(f"Slack is unreachable ({type(error).__name__}: {_reason(error)})")
    return Posted(str(response.get("channel") or channel), str(response["ts"]))


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
        return NotDelivered(f"Slack server error ({status}{f': {code}' if code else ''})")
    return NotDelivered(
        f"Slack refused the message ({code or status})", channel_problem=code in CHANNEL_ERRORS
    )


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None)
    return str(reason if reason is not None else error)[:200]
