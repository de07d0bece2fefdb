"""The alert sensor: one Slack message per failed run, a thread reply when it is resolved.

Each tick reads the runs that ended since the cursor, in the event log's order:

- a failed run (or a run whose asset checks failed) becomes one alert: its facts are read
  (facts.py), classified (classify.py), routed to the owners' channel with the owners and the
  on-call people mentioned (people.py, oncall.py), worded (messages.py) and posted (delivery.py);
- every run's materializations (and passed checks) resolve what earlier alerts reported: a reply
  in the alert's thread names the run that built the partitions again.

A platform problem goes to the platform channel (not the model's fault); everything else to the
owners' channel (people.route). A canceled run is a person's decision: no alert.

Never lost, never doubled (docs/alerts.md has the table of faults and their tests):

- The cursor (`{"after": <event storage id>, "not_before": <time>}`) moves past a run only once
  its alert and replies are delivered, or known undeliverable. When Slack answers 429, 5xx, or
  cannot be reached, or the answer is lost, the tick stops there; the next tick starts again
  from that run. A 429's Retry-After sets `not_before`: no call to Slack before then.
- Every post carries a mark (message metadata naming the run, and the resolving run for a
  reply), and its attempt is written to the Dagster instance's key-value store before it is
  posted: `flower_alerts/<sensor>/attempt/<key>`. A later try of a message whose outcome is
  unknown (lost answer, 5xx, a process that died before recording) first looks for the mark in
  the channel or thread, and records what it finds instead of posting again.
- What was delivered is written right after Slack accepted it, not at the end of the tick:
  `.../open` the failed partitions still waiting for a success (first), then
  `.../sent/<run id>` the channel and the thread ts, or `.../reply/<run id>/<resolving run id>`.
  A tick that re-reads a run (after a later alert of the same tick was not delivered, a crash
  before the cursor was saved, or a cursor reset in the UI) finds it there and sends nothing
  twice. The sensor cursor alone could not do this: Dagster saves it only when the tick ends.
- A message Slack refuses for good (invalid_blocks, msg_too_long, ...) goes to the platform
  channel once in a short plain-text form; if that is refused too it is recorded under
  `.../undeliverable` and logged as UNDELIVERABLE at error level. The sensor moves on.
- The token is never in the cursor, the store, a message or a log line: dagster-slack's resource
  reads it from SLACK_BOT_TOKEN.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DefaultSensorStatus,
    RunStatusChangeRecordsFilter,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)
from slack_sdk import WebClient

from flower_dagster.alerts.classify import Cause, RunFacts, classify, headline
from flower_dagster.alerts.delivery import (
    LOOKUP_BLOCKED,
    FlowerSlackResource,
    NotDelivered,
    Posted,
    find_channel,
    find_marked,
    mark,
    post,
)
from flower_dagster.alerts.facts import run_facts
from flower_dagster.alerts.messages import (
    Alert,
    render_alert,
    render_resolution,
    render_safe_alert,
    render_safe_resolution,
)
from flower_dagster.alerts.oncall import Rotation, Shift, oncall_for
from flower_dagster.alerts.people import Directory, route
from flower_dagster.settings import AlertSettings

SENSOR_NAME = "flower_alerts"
RUNS_PER_TICK = 50
LOOKUP_MARGIN = 60.0  # seconds before the first try where its mark is looked for (clock skew)
Item = tuple[str, ...]  # (asset, partition) or (asset, partition, check); partition "" if none


@dataclass(frozen=True)
class AlertConfig:
    """Everything the sensor needs besides Slack, read once when the definitions load."""

    alerts: AlertSettings
    timezone: str
    directory: Directory
    rotation: Rotation
    model_files: Mapping[str, str] = field(default_factory=dict)
    dbt_target_root: Path | None = None


@dataclass(frozen=True)
class Cursor:
    after: int | None = None  # the storage id of the last run-end event fully handled
    not_before: float | None = None  # no Slack call before this time (a 429's Retry-After)

    @classmethod
    def parse(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        data = json.loads(text)
        return cls(data.get("after"), data.get("not_before"))

    def dump(self) -> str:
        return json.dumps({"after": self.after, "not_before": self.not_before})


class Outbox:
    """What was tried and delivered, in the instance's key-value store (see the module docstring).

    Each write is one key, ordered so that a crash between two writes is found again: an
    attempt is written before its post, `open` before `sent` and before `reply`.
    """

    def __init__(self, instance: DagsterInstance, sensor_name: str) -> None:
        self._storage = instance.run_storage
        self._prefix = f"flower_alerts/{sensor_name}"

    def _put(self, pairs: Mapping[str, str]) -> None:
        # One key per call, in order: the storage's set_cursor_values inserts a batch, and when
        # one key of it exists already it only updates the existing ones, dropping new keys.
        for key, value in pairs.items():
            self._storage.set_cursor_values({key: value})

    def _get(self, key: str) -> Any:
        value = self._storage.get_cursor_values({key}).get(key)
        return json.loads(value) if value else None

    def sent(self, alert_id: str) -> dict[str, Any] | None:
        return self._get(f"{self._prefix}/sent/{alert_id}")

    def open_alerts(self) -> dict[str, dict[str, Any]]:
        return self._get(f"{self._prefix}/open") or {}

    def replied(self, alert_id: str, run_id: str) -> bool:
        return self._get(f"{self._prefix}/reply/{alert_id}/{run_id}") is not None

    def attempt(self, key: str) -> dict[str, Any] | None:
        """`{"since": <first try>, "tries": [[channel, thread ts], ...]}` of an unsent message."""
        return self._get(f"{self._prefix}/attempt/{key}")

    def record_try(self, key: str, channel: str, thread_ts: str | None, now: float) -> None:
        entry = self.attempt(key) or {"since": now, "tries": []}
        if [channel, thread_ts] not in entry["tries"]:
            entry["tries"].append([channel, thread_ts])
            self._put({f"{self._prefix}/attempt/{key}": json.dumps(entry)})

    def drop_try(self, key: str, channel: str, thread_ts: str | None) -> None:
        """Slack answered that this try was not posted: no need to look for it."""
        entry = self.attempt(key)
        if entry is not None and [channel, thread_ts] in entry["tries"]:
            entry["tries"].remove([channel, thread_ts])
            self._put({f"{self._prefix}/attempt/{key}": json.dumps(entry)})

    def channel_id(self, name: str) -> str | None:
        return self._get(f"{self._prefix}/channel/{name}")

    def remember_channel(self, name: str, channel_id: str) -> None:
        if name.startswith("#") and self.channel_id(name) != channel_id:
            self._put({f"{self._prefix}/channel/{name}": json.dumps(channel_id)})

    def undeliverable(self) -> list[dict[str, Any]]:
        return self._get(f"{self._prefix}/undeliverable") or []

    def record_undeliverable(self, key: str, reason: str, now: float) -> None:
        entries = [e for e in self.undeliverable() if e["key"] != key]
        entries.append({"key": key, "reason": reason, "at": now})
        self._put({f"{self._prefix}/undeliverable": json.dumps(entries)})

    def record_sent(self, alert_id: str, posted: Posted | None, items: Sequence[Item]) -> None:
        """`posted` None: undeliverable, nothing to reply to. `open` first: a crash before
        `sent` leaves an unsent alert whose mark the next tick finds, never a lost thread."""
        pairs: dict[str, str] = {}
        opened = self.open_alerts()
        if posted is not None and items and alert_id not in opened:
            opened[alert_id] = {"channel": posted.channel, "ts": posted.ts, "items": items}
            pairs[f"{self._prefix}/open"] = json.dumps(opened)
        where = {"channel": posted.channel, "ts": posted.ts} if posted else {"undeliverable": True}
        pairs[f"{self._prefix}/sent/{alert_id}"] = json.dumps(where)
        self._put(pairs)

    def record_reply(
        self, alert_id: str, run_id: str, posted: Posted | None, remaining: Sequence[Item]
    ) -> None:
        """`open` first: after a crash before `reply` the run resolves nothing more in that
        alert, so the reply is neither sent again nor sent later for a run that builds again."""
        opened = self.open_alerts()
        if remaining:
            opened[alert_id]["items"] = [list(item) for item in remaining]
        else:
            opened.pop(alert_id, None)
        self._put(
            {
                f"{self._prefix}/open": json.dumps(opened),
                f"{self._prefix}/reply/{alert_id}/{run_id}": json.dumps(
                    {"ts": posted.ts if posted else None}
                ),
            }
        )


@dataclass(frozen=True)
class Undeliverable:
    """Slack refused a message and its safe form for good: recorded, and the sensor moves on."""

    reason: str


@dataclass(frozen=True)
class TickOutcome:
    cursor: str
    summary: str
    log: tuple[str, ...] = ()


def alert_tick(
    instance: DagsterInstance,
    cursor_text: str | None,
    client: WebClient,
    config: AlertConfig,
    owners_of: Callable[[str], Sequence[str]],
    sensor_name: str = SENSOR_NAME,
    now: float | None = None,
) -> TickOutcome:
    """One evaluation of the alert sensor (the sensor itself only adds Dagster's context)."""
    now = time.time() if now is None else now
    cursor = Cursor.parse(cursor_text)
    if cursor.after is None:
        # A new sensor alerts on runs that end from now on, not on the instance's history.
        latest = instance.event_log_storage.get_maximum_record_id() or 0
        return TickOutcome(Cursor(latest).dump(), "alerts start with runs that end from now on")
    if cursor.not_before is not None and now < cursor.not_before:
        wait = cursor.not_before - now
        return TickOutcome(cursor.dump(), f"Slack asked to wait: next try in {wait:.0f} s")

    outbox = Outbox(instance, sensor_name)
    after = cursor.after
    handled: list[str] = []
    for storage_id, run_id, ended in _run_ends(instance, after):
        facts = run_facts(instance, run_id, config.dbt_target_root, config.model_files)
        problem = _handle_run(facts, ended, client, config, owners_of, outbox, handled, now)
        if problem is not None:
            not_before = now + problem.retry_after if problem.retry_after else None
            line = f"run {run_id}: not delivered yet, {problem.reason}; retried on a later tick"
            return TickOutcome(
                Cursor(after, not_before).dump(), line, (*(f"sent: {h}" for h in handled), line)
            )
        after = storage_id
    summary = "; ".join(handled) if handled else "no new failures or resolutions"
    return TickOutcome(Cursor(after).dump(), summary, tuple(f"sent: {h}" for h in handled))


def _run_ends(instance: DagsterInstance, after: int) -> list[tuple[int, str, float]]:
    """Runs that failed or succeeded after `after`, in order: (storage id, run id, time)."""
    found: list[tuple[int, str, float]] = []
    bound: int | None = None
    for event_type in (DagsterEventType.RUN_FAILURE, DagsterEventType.RUN_SUCCESS):
        records = instance.fetch_run_status_changes(
            RunStatusChangeRecordsFilter(event_type=event_type, after_storage_id=after),
            limit=RUNS_PER_TICK,
            ascending=True,
        ).records
        found.extend((r.storage_id, r.run_id, r.timestamp) for r in records)
        if len(records) == RUNS_PER_TICK:
            # More may follow: only what is below both lists' ends is complete.
            last = records[-1].storage_id
            bound = last if bound is None else min(bound, last)
    found.sort()
    return [item for item in found if bound is None or item[0] <= bound]


def _handle_run(
    facts: RunFacts,
    ended: float,
    client: WebClient,
    config: AlertConfig,
    owners_of: Callable[[str], Sequence[str]],
    outbox: Outbox,
    handled: list[str],
    now: float,
) -> NotDelivered | None:
    zone = ZoneInfo(config.timezone)
    at = datetime.fromtimestamp(ended, zone)
    run_url = f"{config.alerts.ui_base_url}/runs/{facts.run_id}"
    platform = config.alerts.platform_channel
    findings = classify(facts)
    alerting = (not facts.succeeded or facts.failed_checks) and findings
    if alerting and outbox.sent(facts.run_id) is None:
        items = _items(facts)
        assets = list(dict.fromkeys([i[0] for i in items] + [f.model for f in findings if f.model]))
        owners = [owner for asset in assets for owner in owners_of(asset)]
        where = route(owners, config.directory, platform)
        if headline(findings) is Cause.PLATFORM:
            # Not the model's fault: the platform channel, still naming the owners.
            where = replace(where, channel=platform, fallback=True)
        shift = oncall_for(at, config.rotation)
        alert = Alert(
            run_id=facts.run_id,
            run_url=run_url,
            failed=facts.failed,
            findings=tuple(findings),
            route=where,
            oncall=shift,
            oncall_ids=_ids(shift, config.directory),
            at=at,
            excerpt=_excerpt(facts),
            run_succeeded=facts.succeeded,
        )
        letter = Letter(
            facts.run_id,
            where.channel,
            render_alert(alert),
            mark(facts.run_id),
            lambda refusal: render_safe_alert(alert, refusal),
        )
        result = _deliver(client, outbox, letter, platform, now)
        if isinstance(result, NotDelivered):
            return result
        if isinstance(result, Undeliverable):
            outbox.record_undeliverable(letter.key, result.reason, now)
            outbox.record_sent(facts.run_id, None, items)
            handled.append(f"UNDELIVERABLE alert for run {facts.run_id}: {result.reason}")
        else:
            outbox.record_sent(facts.run_id, result, items)
            handled.append(f"alert for run {facts.run_id} to {result.channel}")

    built = {(asset, partition or "") for asset, partition in facts.materialized}
    passed = set(facts.passed_checks)
    for alert_id, entry in outbox.open_alerts().items():
        if alert_id == facts.run_id or outbox.replied(alert_id, facts.run_id):
            continue
        items = [tuple(item) for item in entry["items"]]
        resolved = [i for i in items if _resolves(i, built, passed)]
        if not resolved:
            continue
        remaining = [i for i in items if i not in resolved]
        reply = render_resolution(
            [(i[0], i[1] or None) for i in resolved],
            facts.run_id,
            run_url,
            at,
            [(i[0], i[1] or None) for i in remaining],
        )
        letter = Letter(
            f"{alert_id}/{facts.run_id}",
            entry["channel"],
            reply,
            mark(alert_id, facts.run_id),
            lambda refusal, a=alert_id: render_safe_resolution(a, facts.run_id, run_url, refusal),
            thread_ts=entry["ts"],
        )
        result = _deliver(client, outbox, letter, platform, now)
        if isinstance(result, NotDelivered):
            return result
        if isinstance(result, Undeliverable):
            outbox.record_undeliverable(letter.key, result.reason, now)
            outbox.record_reply(alert_id, facts.run_id, None, remaining)
            handled.append(
                f"UNDELIVERABLE resolution of run {alert_id} by run {facts.run_id}: {result.reason}"
            )
        else:
            outbox.record_reply(alert_id, facts.run_id, result, remaining)
            handled.append(f"resolution of run {alert_id} by run {facts.run_id}")
    return None


@dataclass(frozen=True)
class Letter:
    """One message to deliver: where, what, its mark, and its safe form should Slack refuse it."""

    key: str  # the alert's run id, or "<alert run id>/<resolving run id>" for a reply
    channel: str
    message: dict[str, Any]
    metadata: dict[str, Any]
    safe: Callable[[str], dict[str, Any]]  # Slack's refusal -> the short plain-text form
    thread_ts: str | None = None


def _deliver(
    client: WebClient, outbox: Outbox, letter: Letter, platform: str, now: float
) -> Posted | Undeliverable | NotDelivered:
    """Post `letter` once: first look for it where an earlier try's outcome is unknown.

    A channel Slack says is wrong gets the message in the platform channel instead; a message
    Slack refuses for good goes there in its safe form, and if that is refused too it is
    Undeliverable. Anything else (429, 5xx, unreachable, a lost answer) is NotDelivered: the
    next tick looks for the mark, then posts again.
    """
    earlier = outbox.attempt(letter.key)
    if earlier is not None and earlier["tries"]:
        found = _look(client, outbox, earlier, letter.metadata)
        if found is not None:
            return found
    result = _post(client, outbox, letter, letter.channel, letter.message, letter.thread_ts, now)
    if isinstance(result, NotDelivered) and result.channel_problem and letter.channel != platform:
        # The owners' channel is wrong (or the bot is not in it): the platform channel.
        result = _post(client, outbox, letter, platform, letter.message, None, now)
    if isinstance(result, NotDelivered) and result.refused:
        refusal = result.code or result.reason
        safe = _post(client, outbox, letter, platform, letter.safe(refusal), None, now)
        if isinstance(safe, NotDelivered) and (safe.refused or safe.channel_problem):
            return Undeliverable(f"{result.reason}; its safe form too: {safe.reason}")
        return safe
    return result


def _post(
    client: WebClient,
    outbox: Outbox,
    letter: Letter,
    channel: str,
    message: dict[str, Any],
    thread_ts: str | None,
    now: float,
) -> Posted | NotDelivered:
    """One post, its try written before it: a crash or a lost answer after it is looked for."""
    outbox.record_try(letter.key, channel, thread_ts, now)
    result = post(client, channel, message, thread_ts=thread_ts, metadata=letter.metadata)
    if isinstance(result, NotDelivered) and not result.maybe_posted:
        outbox.drop_try(letter.key, channel, thread_ts)
    if isinstance(result, Posted):
        outbox.remember_channel(channel, result.channel)
    return result


def _look(
    client: WebClient, outbox: Outbox, earlier: dict[str, Any], metadata: dict[str, Any]
) -> Posted | NotDelivered | None:
    """The message an earlier try posted, found by its mark; NotDelivered when Slack cannot
    be asked now. A try that cannot be looked up at all (the bot lacks the history scope, the
    channel is gone) counts as not posted: a possible duplicate rather than a lost alert."""
    oldest = earlier["since"] - LOOKUP_MARGIN
    for channel, thread_ts in earlier["tries"]:
        where: str | NotDelivered | None = channel
        if channel.startswith("#"):
            where = outbox.channel_id(channel) or find_channel(client, channel)
        if isinstance(where, str):
            outbox.remember_channel(channel, where)
            where = find_marked(client, where, metadata, oldest, thread_ts)
        if isinstance(where, Posted):
            return where
        if isinstance(where, NotDelivered) and not (where.refused or where.code in LOOKUP_BLOCKED):
            return where
    return None


def _items(facts: RunFacts) -> list[Item]:
    """What the alert waits to see built again (or, for a check, pass again)."""
    items: list[Item] = [(asset, partition or "") for asset, partition in facts.failed]
    if facts.succeeded:
        for check in facts.failed_checks:
            for partition in check.partitions or ("",):
                items.append((check.asset, partition, check.check))
    return list(dict.fromkeys(items))


def _resolves(item: Item, built: set[tuple[str, str]], passed: set[tuple[str, str]]) -> bool:
    """A failed partition is resolved when it is built; a failed check when it passes, or when
    its asset (its partition, if the check named one) is built again — late data arrived."""
    if len(item) == 3:
        asset, partition, check = item
        if (asset, check) in passed:
            return True
        return (asset, partition) in built if partition else any(a == asset for a, _ in built)
    return (item[0], item[1]) in built


def _ids(shift: Shift, directory: Directory) -> tuple[str, ...]:
    people = (directory.person(name) for name in shift.people)
    return tuple(p.slack_id for p in people if p is not None)


def _excerpt(facts: RunFacts) -> str:
    if facts.dbt_errors:
        return facts.dbt_errors[0]
    if facts.step_errors:
        # The innermost error of the chain: dbt's summary rather than Dagster's wrapper.
        return facts.step_errors[0].split("\n", 1)[-1]
    return facts.run_error or ""


def alert_sensor(
    config: AlertConfig,
    running: bool,
    name: str = SENSOR_NAME,
    interval_seconds: int = 30,
):
    """The sensor; RUNNING from the start where the environment's `alerts` flag is true."""

    @sensor(
        name=name,
        minimum_interval_seconds=interval_seconds,
        default_status=DefaultSensorStatus.RUNNING if running else DefaultSensorStatus.STOPPED,
        description=(
            "Posts one Slack message per failed run to the owners' channel, mentioning the "
            "owners and the on-call people, and replies in its thread when it is resolved."
        ),
    )
    def flower_alerts(context: SensorEvaluationContext, slack: FlowerSlackResource):
        graph = context.repository_def.asset_graph if context.repository_def else None

        def owners_of(asset: str) -> Sequence[str]:
            key = AssetKey.from_user_string(asset)
            if graph is None or not graph.has(key):
                return ()
            return list(graph.get(key).owners)

        outcome = alert_tick(
            context.instance, context.cursor, slack.get_client(), config, owners_of, name
        )
        for line in outcome.log:
            # An undeliverable message is an error in the sensor's log (docs/alerts.md).
            (context.log.error if "UNDELIVERABLE" in line else context.log.info)(line)
        return SensorResult(cursor=outcome.cursor, skip_reason=outcome.summary)

    return flower_alerts
