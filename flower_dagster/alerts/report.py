"""The after-hours report: each incident in a window, who was on call, and how long it took.

An incident is a failure of an asset partition until its next success: it starts with the first
failed run after the partition was last built (or ever), and ends with the next run that builds
it. The report reads both from the Dagster instance — the failed runs (what they planned and did
not build, and why: classify.py) and the partitions' materializations — and adds, for the first
failure, who was on call (oncall.py) and whether it fell outside working hours (alerts.
working_hours of flower.yaml, default weekdays 09:00-18:00 in schedule.timezone).

Incidents that started and ended with the same runs for the same model are one row, their
partitions listed together.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    RunStatusChangeRecordsFilter,
)

from flower_dagster.alerts.classify import classify, headline
from flower_dagster.alerts.facts import run_facts
from flower_dagster.alerts.oncall import Rotation, oncall_for
from flower_dagster.settings import WEEKDAYS, AlertSettings


@dataclass(frozen=True)
class Incident:
    model: str
    partitions: tuple[str, ...]
    first_failure: datetime  # aware, in the team's zone
    failure_run: str
    cause: str
    oncall: tuple[str, ...]
    outside_hours: bool
    resolved: datetime | None = None
    resolved_by: str | None = None

    @property
    def took(self) -> timedelta | None:
        return None if self.resolved is None else self.resolved - self.first_failure


def outside_working_hours(instant: datetime, alerts: AlertSettings, zone: ZoneInfo) -> bool:
    """Whether an instant falls outside the working days and hours, in the team's zone."""
    local = instant.astimezone(zone)
    if local.weekday() not in alerts.working_days:
        return True
    clock = local.time().replace(tzinfo=None)
    end = alerts.working_end or time.max
    return not (alerts.working_start <= clock < end)


def window(since: date, until: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[since 00:00, the day after until 00:00) in the team's zone: both days included."""
    return (
        datetime.combine(since, time(), tzinfo=zone),
        datetime.combine(until + timedelta(days=1), time(), tzinfo=zone),
    )


def incidents(
    instance: DagsterInstance,
    start: datetime,
    end: datetime,
    alerts: AlertSettings,
    rotation: Rotation,
    zone: ZoneInfo,
    dbt_target_root: Path | None = None,
) -> list[Incident]:
    """The incidents whose first failure falls in [start, end), oldest first."""
    # Failures up to `end`: one before the window decides whether a failure in it is a new
    # incident or the same one going on.
    failures: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
    causes: dict[str, str] = {}
    cursor = None
    while True:
        result = instance.fetch_run_status_changes(
            RunStatusChangeRecordsFilter(
                event_type=DagsterEventType.RUN_FAILURE, before_timestamp=end.timestamp()
            ),
            limit=500,
            cursor=cursor,
            ascending=True,
        )
        for record in result.records:
            facts = run_facts(instance, record.run_id, dbt_target_root)
            cause = headline(classify(facts))
            causes[record.run_id] = cause.value if cause else "failed"
            for asset, partition in facts.failed:
                failures[(asset, partition or "")].append((record.timestamp, record.run_id))
        if not result.has_more:
            break
        cursor = result.cursor
    successes = _successes(instance, failures)

    found: list[Incident] = []
    for (asset, partition), failed in failures.items():
        timeline = sorted(
            [(t, run, "failed") for t, run in failed]
            + [(t, run, "built") for t, run in successes.get((asset, partition), [])]
        )
        opened: tuple[float, str] | None = None
        for moment, run_id, what in timeline:
            if what == "failed" and opened is None:
                opened = (moment, run_id)
            elif what == "built" and opened is not None:
                found.append(_incident(asset, partition, opened, (moment, run_id)))
                opened = None
        if opened is not None:
            found.append(_incident(asset, partition, opened, None))

    rows = []
    for item in found:
        first = datetime.fromtimestamp(item[2], zone)
        if not (start <= first < end):
            continue
        rows.append(
            Incident(
                model=item[0],
                partitions=(item[1],) if item[1] else (),
                first_failure=first,
                failure_run=item[3],
                cause=causes.get(item[3], "failed"),
                oncall=oncall_for(first, rotation).people,
                outside_hours=outside_working_hours(first, alerts, zone),
                resolved=datetime.fromtimestamp(item[4], zone) if item[4] else None,
                resolved_by=item[5],
            )
        )
    return _merge(rows)


def _incident(asset, partition, opened, closed):
    return (
        asset,
        partition,
        opened[0],
        opened[1],
        closed[0] if closed else None,
        closed[1] if closed else None,
    )


def _successes(
    instance: DagsterInstance, failures: dict[tuple[str, str], list[tuple[float, str]]]
) -> dict[tuple[str, str], list[tuple[float, str]]]:
    wanted: dict[str, set[str]] = defaultdict(set)
    for asset, partition in failures:
        wanted[asset].add(partition)
    built: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
    for asset, partitions in wanted.items():
        keyed = sorted(p for p in partitions if p)
        cursor = None
        while True:
            result = instance.fetch_materializations(
                AssetRecordsFilter(
                    asset_key=AssetKey.from_user_string(asset),
                    asset_partitions=keyed or None,
                ),
                limit=1000,
                cursor=cursor,
                ascending=True,
            )
            for record in result.records:
                key = (asset, record.partition_key or "")
                if key in failures:
                    built[key].append((record.timestamp, record.run_id))
            if not result.has_more:
                break
            cursor = result.cursor
    return built


def _merge(rows: Sequence[Incident]) -> list[Incident]:
    """One row per model, failing run and resolving run, its partitions together."""
    groups: dict[tuple[str, str, str | None], list[Incident]] = defaultdict(list)
    for row in rows:
        groups[(row.model, row.failure_run, row.resolved_by)].append(row)
    merged = []
    for items in groups.values():
        first = min(items, key=lambda i: i.first_failure)
        resolved = [i.resolved for i in items if i.resolved is not None]
        merged.append(
            Incident(
                model=first.model,
                partitions=tuple(sorted(p for i in items for p in i.partitions)),
                first_failure=first.first_failure,
                failure_run=first.failure_run,
                cause=first.cause,
                oncall=first.oncall,
                outside_hours=first.outside_hours,
                resolved=max(resolved) if len(resolved) == len(items) else None,
                resolved_by=first.resolved_by,
            )
        )
    return sorted(merged, key=lambda i: (i.first_failure, i.model))


def render_report(
    rows: Sequence[Incident],
    since: date,
    until: date,
    alerts: AlertSettings,
    timezone: str,
    ui_base_url: str | None = None,
) -> str:
    """The markdown the team files for after-hours work."""
    days = _days(alerts.working_days)
    end = alerts.working_end.strftime("%H:%M") if alerts.working_end else "24:00"
    after = [r for r in rows if r.outside_hours]
    lines = [
        f"# After-hours report {since.isoformat()} to {until.isoformat()}",
        "",
        f"Working hours: {days} {alerts.working_start.strftime('%H:%M')}-{end} ({timezone}). "
        f"{len(rows)} incident{'s' if len(rows) != 1 else ''}, {len(after)} outside working "
        "hours.",
        "",
    ]
    if not rows:
        lines.append("No failures in this window.")
        return "\n".join(lines)
    lines += [
        "| first failure | model | partitions | cause | on call | outside hours | resolved "
        "| took |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        run = _run_link(row.failure_run, ui_base_url)
        resolved = (
            f"{_when(row.resolved)} by {_run_link(row.resolved_by, ui_base_url)}"
            if row.resolved and row.resolved_by
            else "not yet"
        )
        lines.append(
            f"| {_when(row.first_failure)} ({run}) | {row.model} | "
            f"{_partitions(row.partitions)} | {row.cause} | {', '.join(row.oncall)} | "
            f"{'yes' if row.outside_hours else 'no'} | {resolved} | {_took(row.took)} |"
        )
    total = sum((r.took for r in after if r.took is not None), timedelta())
    lines += [
        "",
        f"After-hours time to resolve: {_took(total)} over {len(after)} incident"
        f"{'s' if len(after) != 1 else ''} (first failure to the run that built it again).",
    ]
    return "\n".join(lines)


def _days(days: Sequence[int]) -> str:
    """`Mon-Fri`, `Sat, Sun`: consecutive weekdays as a range."""
    names = [WEEKDAYS[d].title() for d in sorted(days)]
    consecutive = list(days) == list(range(days[0], days[0] + len(days)))
    return f"{names[0]}-{names[-1]}" if len(names) > 2 and consecutive else ", ".join(names)


def _when(moment: datetime) -> str:
    return moment.strftime("%a %Y-%m-%d %H:%M")


def _run_link(run_id: str, base: str | None) -> str:
    return f"[{run_id[:8]}]({base}/runs/{run_id})" if base else run_id[:8]


def _partitions(keys: Sequence[str]) -> str:
    if not keys:
        return "-"
    return ", ".join(keys) if len(keys) <= 3 else f"{keys[0]} … {keys[-1]} ({len(keys)})"


def _took(delta: timedelta | None) -> str:
    if delta is None:
        return "-"
    minutes = int(delta.total_seconds() // 60)
    if minutes < 1:
        return f"{int(delta.total_seconds())} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min"
