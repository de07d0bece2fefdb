"""Grains, their Dagster partitions, and the window a partition run hands to dbt.

A model's grain (hourly, daily, weekly, monthly) comes from its own dbt config. Every grain
shares one start date and one time zone; weeks start on Monday. Between grains Dagster's
default time-window mapping applies: weekly partition 2024-01-08 reads daily partitions
2024-01-08 .. 2024-01-14, monthly 2024-02-01 reads the 29 days of February 2024.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import cache
from zoneinfo import ZoneInfo

from dagster import (
    DailyPartitionsDefinition,
    HourlyPartitionsDefinition,
    MonthlyPartitionsDefinition,
    PartitionsDefinition,
    TimeWindowPartitionsDefinition,
    WeeklyPartitionsDefinition,
)

# Every asset carries its grain in this tag (`tag:flower/grain=daily` in a selection); models
# without one are tagged UNPARTITIONED.
GRAIN_TAG = "flower/grain"
UNPARTITIONED = "unpartitioned"

# Environment variables through which a run hands its window to dbt (read by the macros in
# dbt_project/macros/flower/window.sql only while executing, so dbt's partial parse survives).
WINDOW_START_ENV = "FLOWER_WINDOW_START"
WINDOW_END_ENV = "FLOWER_WINDOW_END"
WINDOW_FORMAT = "%Y-%m-%d %H:%M:%S"


class Grain(StrEnum):
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"

    @property
    def rank(self) -> int:
        """Finer grains rank lower: a model may only be as fine as its partitioned parents."""
        return _RANK[self]


_RANK = {Grain.HOURLY: 0, Grain.DAILY: 1, Grain.WEEKLY: 2, Grain.MONTHLY: 3}
GRAINS: tuple[Grain, ...] = tuple(Grain)


@cache
def partitions_for(
    grain: Grain, start: date, timezone: str, end: date | None = None
) -> TimeWindowPartitionsDefinition:
    """The Dagster partitions of one grain (cached: every asset of a grain shares one object).

    `end` is the last day with partitions (inclusive: its windows end by the next midnight);
    a week or month that runs past it has no partition."""
    start_date = start.isoformat()
    stop = (end + timedelta(days=1)).isoformat() if end else None
    if grain is Grain.HOURLY:
        return HourlyPartitionsDefinition(
            start_date=f"{start_date}-00:00",
            end_date=f"{stop}-00:00" if stop else None,
            timezone=timezone,
        )
    if grain is Grain.DAILY:
        return DailyPartitionsDefinition(start_date=start_date, end_date=stop, timezone=timezone)
    if grain is Grain.WEEKLY:
        return WeeklyPartitionsDefinition(
            start_date=start_date, end_date=stop, day_offset=1, timezone=timezone
        )
    return MonthlyPartitionsDefinition(start_date=start_date, end_date=stop, timezone=timezone)


def window_env(start: datetime, end: datetime) -> dict[str, str]:
    """The environment that hands the window [start, end) to dbt.

    Dagster's windows carry the partition time zone (+09:00 for Asia/Seoul); dbt receives the
    wall-clock time in that zone with the offset dropped, formatted explicitly, because the
    warehouse's timestamps are wall-clock times of the same zone. A backfill range of many
    partitions is one window from the first start to the last end.
    """
    if (start.tzinfo is None) != (end.tzinfo is None):
        raise ValueError("window bounds must both be naive or both carry a time zone")
    if start.tzinfo is not None:
        end = end.astimezone(start.tzinfo)
    if end <= start:
        raise ValueError(f"window end {end.isoformat()} is not after its start {start.isoformat()}")
    return {
        WINDOW_START_ENV: start.strftime(WINDOW_FORMAT),
        WINDOW_END_ENV: end.strftime(WINDOW_FORMAT),
    }


@dataclass(frozen=True)
class KeyPlacement:
    """Where a text meant as a partition key falls among time-window partitions."""

    valid: bool  # it reads as a time in the partitions' key format
    containing: str | None  # the key of the partition whose window holds that time
    before_first: bool
    after_last: bool  # past the last partition whose window has ended (or none has yet)


def place_key(partitions_def: TimeWindowPartitionsDefinition, key: str) -> KeyPlacement:
    """Read `key` as a wall-clock time in the partitions' format and time zone, and place it.

    Not `start_time_for_partition_key`: it moves a day inside a week to the next week.
    """
    try:
        moment = datetime.strptime(key, partitions_def.fmt).replace(
            tzinfo=ZoneInfo(partitions_def.timezone)
        )
    except ValueError:
        return KeyPlacement(valid=False, containing=None, before_first=False, after_last=False)
    first = partitions_def.get_first_partition_window()
    last = partitions_def.get_last_partition_window()
    return KeyPlacement(
        valid=True,
        containing=partitions_def.get_partition_key_for_timestamp(moment.timestamp()),
        before_first=first is not None and moment < first.start,
        after_last=last is None or moment > last.start,
    )


def key_ranges(keys: Sequence[str], partitions_def: PartitionsDefinition | None) -> list[str]:
    """`2024-01-01..2024-01-09`, `2024-01-11`: neighbouring partitions as one range, the way
    every message names partitions (a year of days is one line, not 365)."""
    runs: list[list[str]] = []
    for key in sorted(set(keys)):
        if runs and next_key(partitions_def, runs[-1][-1]) == key:
            runs[-1].append(key)
        else:
            runs.append([key])
    return [run[0] if len(run) == 1 else f"{run[0]}..{run[-1]}" for run in runs]


def next_key(partitions_def: PartitionsDefinition | None, key: str) -> str | None:
    """The partition after `key`, None for the last one, a key outside the definition (a
    nonexistent upstream partition) or partitions that are not time windows."""
    if not isinstance(partitions_def, TimeWindowPartitionsDefinition):
        return None
    try:
        return partitions_def.get_next_partition_key(key)
    except Exception:  # a key outside the definition
        return None
