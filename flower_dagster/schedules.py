"""Schedules that follow the batch hour of flower.yaml.

Clock-driven models are the partitioned models that read no partitioned model (fed only by
sources and unpartitioned models: `fct_orders`, `fct_sessions`). Nothing else would ever run
them: the repair rule follows partitioned parents, and they have none. Each runs at the batch
hour for the partition that has just closed: hourly ones every hour for the hour before, daily
ones at HH:00 for yesterday, weekly ones at HH:00 on Mondays for last week (weeks start on
Monday), monthly ones at HH:00 on the 1st for last month. Roll-ups (models with partitioned
parents) are not clock-driven: the repair rule runs them once their window is complete.

A model may take another hour with `meta.flower.schedule_hour`; each (grain, hour) in use gets
its own schedule, named for what it runs and when: `daily_models_0700_kst`,
`weekly_models_0700_kst`.

A schedule targets its models as an asset selection, Dagster's public way to schedule assets:
Dagster makes each schedule a job of those models (`__anonymous_asset_job_<schedule name>`, a
subset of the grain's multi-asset), built at every load of the code location. Naming Dagster's
own asset job instead would spare that build, but that job is a hidden name of Dagster's.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    TimeWindowPartitionsDefinition,
    partition_loading_context,
)

from flower_dagster.dbt.models import NodeGrain
from flower_dagster.partitions import Grain, partitions_for
from flower_dagster.settings import Settings

# When each grain's partition closes, as a cron (minute, hour, day of month, month, weekday)
# with the batch hour in it: weeks close on Monday 00:00 (partitions.py), months on the 1st.
_CRON = {
    Grain.DAILY: "0 {hour} * * *",
    Grain.WEEKLY: "0 {hour} * * 1",
    Grain.MONTHLY: "0 {hour} 1 * *",
}
_WINDOW = {Grain.HOURLY: "hour", Grain.DAILY: "day", Grain.WEEKLY: "week", Grain.MONTHLY: "month"}
_WHEN = {Grain.DAILY: "", Grain.WEEKLY: " on Mondays", Grain.MONTHLY: " on the 1st"}


def zone_label(timezone: str) -> str:
    """`kst` for Asia/Seoul (the team's zone), else the zone in lower case: `europe_berlin`."""
    if timezone == "Asia/Seoul":
        return "kst"
    return timezone.lower().replace("/", "_").replace("-", "_")


def schedule_name(grain: Grain, hour: int | None, timezone: str) -> str:
    when = "every_hour" if grain is Grain.HOURLY else f"{hour:02d}00"
    return f"{grain.value}_models_{when}_{zone_label(timezone)}"


def clock_driven_models(
    grains: Mapping[str, NodeGrain], default_hour: int
) -> dict[tuple[Grain, int | None], list[str]]:
    """(grain, hour) -> the unique ids of the models a schedule at that hour runs."""
    groups: dict[tuple[Grain, int | None], list[str]] = defaultdict(list)
    for uid, node in grains.items():
        if node.grain is None or node.is_rollup:
            continue
        groups[(node.grain, _hour_of(node, default_hour))].append(uid)
    return {key: sorted(uids) for key, uids in sorted(groups.items(), key=lambda kv: str(kv[0]))}


def cron_of(grain: Grain, hour: int | None) -> str:
    """`0 7 * * 1` for weekly models at 07:00; `0 * * * *` (every hour) for hourly ones."""
    if grain is Grain.HOURLY or hour is None:
        return "0 * * * *"
    return _CRON[grain].format(hour=hour)


def trigger_of(node: NodeGrain, default_hour: int, timezone: str) -> str:
    """How a model is run, as `flower models` shows it: its schedule, the repair rule, or a
    person (an unpartitioned model is built by hand or with a run that selects it)."""
    if node.grain is None:
        return "by hand (unpartitioned)"
    if node.is_rollup:
        parents = ", ".join(sorted(uid.split(".")[-1] for uid in node.partitioned_parents))
        return f"repair rule, from {parents}"
    return f"schedule {schedule_name(node.grain, _hour_of(node, default_hour), timezone)}"


def _hour_of(node: NodeGrain, default_hour: int) -> int | None:
    """The hour a clock-driven model's schedule runs at; None for hourly models (every hour)."""
    if node.grain is Grain.HOURLY:
        return None
    return default_hour if node.schedule_hour is None else node.schedule_hour


def partition_closed_at(
    partitions: TimeWindowPartitionsDefinition, tick: datetime | None
) -> str | None:
    """The partition that has just closed at `tick` (yesterday at 07:00 KST; 09:00 at 10:00;
    now without a tick), None before the first partition has closed."""
    with partition_loading_context(effective_dt=tick):
        return partitions.get_last_partition_key()


def _tick_time(context: ScheduleEvaluationContext) -> datetime | None:
    """The tick's time; None when the schedule is evaluated by hand without one (then: now).

    Dagster raises its private `CheckError` for a context without a tick time, and offers no
    public way to ask first; reading the property is the only thing in the `try`.
    """
    try:
        return context.scheduled_execution_time
    except Exception:
        return None


def describe(grain: Grain, hour: int | None, timezone: str, names: list[str]) -> str:
    """`Runs fct_orders, fct_sessions for the day that has just closed, at 07:00 Asia/Seoul.`
    Past five models the rest is counted, not listed: the description is shown on one line."""
    shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return (
        f"Runs {shown} for the {_WINDOW[grain]} that has just closed, "
        + ("every hour" if hour is None else f"at {hour:02d}:00{_WHEN[grain]}")
        + f" {timezone}."
    )


def build_schedules(
    settings: Settings,
    grains: Mapping[str, NodeGrain],
    asset_key_of: Callable[[str], AssetKey],
) -> list[ScheduleDefinition]:
    """One schedule per (grain, hour) in use; on only where the environment runs schedules."""
    status = (
        DefaultScheduleStatus.RUNNING
        if settings.environment.schedules
        else DefaultScheduleStatus.STOPPED
    )
    schedules = []
    for (grain, hour), uids in clock_driven_models(grains, settings.schedule_hour).items():
        partitions = partitions_for(
            grain, settings.partition_start, settings.timezone, settings.partition_end
        )
        keys = [asset_key_of(uid) for uid in uids]

        def run_closed_partition(
            context: ScheduleEvaluationContext,
            partitions: TimeWindowPartitionsDefinition = partitions,
            keys: list[AssetKey] = keys,
        ) -> RunRequest | SkipReason:
            tick = _tick_time(context)
            partition_key = partition_closed_at(partitions, tick)
            if partition_key is None:
                return SkipReason(
                    "No partition has closed yet: partitions start on "
                    f"{settings.partition_start.isoformat()} (partitions.start in flower.yaml)."
                )
            return RunRequest(
                run_key=partition_key, partition_key=partition_key, asset_selection=keys
            )

        schedules.append(
            ScheduleDefinition(
                name=schedule_name(grain, hour, settings.timezone),
                cron_schedule=cron_of(grain, hour),
                execution_timezone=settings.timezone,
                target=AssetSelection.assets(*keys),
                execution_fn=run_closed_partition,
                default_status=status,
                description=describe(
                    grain, hour, settings.timezone, [u.split(".")[-1] for u in uids]
                ),
            )
        )
    return schedules
