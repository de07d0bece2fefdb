"""Late data: a daily partition not there N hours after the batch hour fails an asset check.

The batch runs yesterday's partition of the daily models at HH:00 (`schedule.hour`, or a model's
own `meta.flower.schedule_hour`), and the repair rule builds the daily roll-ups once their inputs
are in. `schedule.late_after_hours` later, yesterday's partition of every daily model is expected
to exist: Dagster's time-partition freshness check (`build_time_partition_freshness_checks`)
evaluates exactly that at a deadline cron, and its sensor runs the checks when each deadline
passes. A failed check is what the alerts tell people about.

Dagster marks these builders as superseded by `FreshnessPolicy`, but a freshness policy only asks
whether *some* materialization happened in a time window (a backfill of last March at 09:30
would satisfy it) and raises no asset check; the time-partition check asks for yesterday's
partition itself, which is what late data means here.

A model's deadline is its own batch hour plus the allowance: for a model the schedule runs, the
hour of its schedule; for a roll-up, the latest hour of the scheduled daily models it is built
from (it cannot be ready before them); else the batch hour.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache

from dagster import (
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    DefaultSensorStatus,
    SensorDefinition,
    build_sensor_for_freshness_checks,
    build_time_partition_freshness_checks,
)

from flower_dagster.dbt.models import NodeGrain
from flower_dagster.errors import SettingsError
from flower_dagster.partitions import Grain
from flower_dagster.settings import Settings

LATE_DATA_SENSOR_NAME = "late_daily_partitions"
# Dagster names each freshness check `freshness_check`; alerts recognise late data by it.
LATE_CHECK_NAME = "freshness_check"
# How often the sensor looks whether a deadline has passed.
LATE_DATA_SENSOR_INTERVAL_SECONDS = 60
# At most this many models' checks in one check definition (see `late_data_checks`).
CHECKS_PER_DEFINITION = 100


def batch_hours(grains: Mapping[str, NodeGrain], default_hour: int) -> dict[str, int]:
    """The hour each daily model's partition is due to start building, by unique id."""

    @cache
    def hour_of(uid: str) -> int | None:
        node = grains[uid]
        if node.grain is not Grain.DAILY:
            return None
        if not node.is_rollup:
            return default_hour if node.schedule_hour is None else node.schedule_hour
        parents = [hour_of(parent) for parent in node.partitioned_parents if parent in grains]
        known = [hour for hour in parents if hour is not None]
        return max(known) if known else default_hour

    hours = {uid: hour_of(uid) for uid in grains}
    return {uid: hour for uid, hour in hours.items() if hour is not None}


def deadlines(
    grains: Mapping[str, NodeGrain], default_hour: int, late_after_hours: int
) -> dict[int, list[str]]:
    """Deadline hour -> the daily models due by then (sorted unique ids).

    A deadline past midnight would expect the partition that the next morning's batch builds, so
    it is refused with the models and settings that cause it.
    """
    by_deadline: dict[int, list[str]] = defaultdict(list)
    too_late = []
    for uid, hour in sorted(batch_hours(grains, default_hour).items()):
        deadline = hour + late_after_hours
        if deadline > 23:
            too_late.append(f"{grains[uid].name} (batch hour {hour:02d}:00)")
        by_deadline[deadline].append(uid)
    if too_late:
        raise SettingsError(
            f"schedule.late_after_hours is {late_after_hours}: the late-data deadline of "
            f"{', '.join(too_late)} would pass midnight; allowed: a batch hour plus "
            "late_after_hours of at most 23"
        )
    return dict(sorted(by_deadline.items()))


def late_data_checks(
    settings: Settings, grains: Mapping[str, NodeGrain], asset_keys: Mapping[str, AssetKey]
) -> list[AssetChecksDefinition]:
    """One freshness check per daily model, grouped by deadline, in definitions of at most
    `CHECKS_PER_DEFINITION` checks.

    Dagster's builder makes one definition of all the assets it is given, which reads every one
    of them. Building a job over the graph (at every load of the code location), Dagster looks
    through all of a definition's checks again for each asset it reads: 1,500 daily models in
    one definition cost it 2.25 million steps, in definitions of 100 a fifteenth of that (about
    0.1 s less of every load at 3,000 models). The checks, their names, deadlines and sensor
    are the same.
    """
    checks: list[AssetChecksDefinition] = []
    for deadline, uids in deadlines(
        grains, settings.schedule_hour, settings.late_after_hours
    ).items():
        for first in range(0, len(uids), CHECKS_PER_DEFINITION):
            with _superseded_is_intended():
                checks.extend(
                    build_time_partition_freshness_checks(
                        assets=[
                            asset_keys[uid] for uid in uids[first : first + CHECKS_PER_DEFINITION]
                        ],
                        deadline_cron=f"0 {deadline} * * *",
                        timezone=settings.timezone,
                        severity=AssetCheckSeverity.ERROR,
                    )
                )
    return checks


def late_data_sensor(
    settings: Settings, checks: Sequence[AssetChecksDefinition]
) -> SensorDefinition:
    """Runs the late-data checks as each deadline passes; on where the schedules run."""
    with _superseded_is_intended():
        return build_sensor_for_freshness_checks(
            freshness_checks=checks,
            minimum_interval_seconds=LATE_DATA_SENSOR_INTERVAL_SECONDS,
            name=LATE_DATA_SENSOR_NAME,
            default_status=(
                DefaultSensorStatus.RUNNING
                if settings.environment.schedules
                else DefaultSensorStatus.STOPPED
            ),
        )


@contextmanager
def _superseded_is_intended() -> Iterator[None]:
    """Silence Dagster's supersession warning for these builders (see the module's docstring)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is superseded.*")
        yield
