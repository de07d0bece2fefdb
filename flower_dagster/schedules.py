"""Schedules that follow the batch hour of flower.yaml.

Clock-driven models are the partitioned models that read no partitioned model (the ones fed by
sources and staging: `fct_orders`, `fct_sessions`). At HH:00 in the configured time zone the
daily ones run for the partition that has just closed (yesterday); hourly ones run every hour for
the hour that has just closed. Roll-ups (weekly, monthly, a daily built from a daily) are not
clock-driven: the repair rule runs them once their window is complete.

A model may take another hour with `meta.flower.schedule_hour`; each hour in use gets its own
schedule, named for what it runs and when: `daily_models_0700_kst`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping

from dagster import (
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    build_schedule_from_partitioned_job,
    define_asset_job,
)
from dagster._core.definitions.partitions.partitioned_schedule import (
    UnresolvedPartitionedAssetScheduleDefinition,
)

from flower_dagster.dbt.models import NodeGrain
from flower_dagster.partitions import Grain
from flower_dagster.settings import Settings

CLOCK_DRIVEN_GRAINS = (Grain.HOURLY, Grain.DAILY)


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
        if node.grain not in CLOCK_DRIVEN_GRAINS or node.is_rollup:
            continue
        own = node.schedule_hour
        hour = None if node.grain is Grain.HOURLY else (default_hour if own is None else own)
        groups[(node.grain, hour)].append(uid)
    return {key: sorted(uids) for key, uids in sorted(groups.items(), key=lambda kv: str(kv[0]))}


def build_schedules(
    settings: Settings,
    grains: Mapping[str, NodeGrain],
    asset_key_of: Callable[[str], AssetKey],
) -> list[UnresolvedPartitionedAssetScheduleDefinition]:
    """One schedule per (grain, hour) in use; on only where the environment runs schedules."""
    status = (
        DefaultScheduleStatus.RUNNING
        if settings.environment.schedules
        else DefaultScheduleStatus.STOPPED
    )
    schedules = []
    for (grain, hour), uids in clock_driven_models(grains, settings.schedule_hour).items():
        name = schedule_name(grain, hour, settings.timezone)
        job = define_asset_job(
            f"{name}_job",
            selection=AssetSelection.assets(*[asset_key_of(uid) for uid in uids]),
        )
        schedules.append(
            build_schedule_from_partitioned_job(
                job,
                name=name,
                minute_of_hour=0,
                hour_of_day=hour if grain is not Grain.HOURLY else None,
                default_status=status,
                description=(
                    f"Runs {', '.join(uid.split('.')[-1] for uid in uids)} for the "
                    f"{'hour' if grain is Grain.HOURLY else 'day'} that has just closed, "
                    + ("every hour" if hour is None else f"at {hour:02d}:00")
                    + f" {settings.timezone}."
                ),
            )
        )
    return schedules
