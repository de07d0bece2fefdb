"""Grains, partition definitions and the window handed to dbt (pure, no dbt)."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from flower_dagster.partitions import (
    WINDOW_END_ENV,
    WINDOW_START_ENV,
    Grain,
    key_ranges,
    partitions_for,
    window_env,
)

SEOUL = ZoneInfo("Asia/Seoul")
START = date(2024, 1, 1)


def test_grains_rank_from_fine_to_coarse():
    assert [g.value for g in sorted(Grain, key=lambda g: g.rank)] == [
        "hourly",
        "daily",
        "weekly",
        "monthly",
    ]


def test_weeks_start_on_monday_in_seoul():
    weekly = partitions_for(Grain.WEEKLY, START, "Asia/Seoul")
    keys = weekly.get_partition_keys(current_time=datetime(2024, 2, 1, tzinfo=UTC))
    assert keys[:3] == ["2024-01-01", "2024-01-08", "2024-01-15"]
    window = weekly.time_window_for_partition_key("2024-01-08")
    assert window.start == datetime(2024, 1, 8, tzinfo=SEOUL)
    assert window.end == datetime(2024, 1, 15, tzinfo=SEOUL)
    assert all(datetime.fromisoformat(k).weekday() == 0 for k in keys)


def test_one_partitions_object_per_grain():
    assert partitions_for(Grain.DAILY, START, "Asia/Seoul") is partitions_for(
        Grain.DAILY, START, "Asia/Seoul"
    )


def test_hourly_partitions_use_the_same_start_and_zone():
    hourly = partitions_for(Grain.HOURLY, START, "Asia/Seoul")
    first = hourly.time_window_for_partition_key(hourly.get_first_partition_key())
    assert first.start == datetime(2024, 1, 1, 0, tzinfo=SEOUL)
    assert first.end == datetime(2024, 1, 1, 1, tzinfo=SEOUL)


def test_window_env_is_wall_clock_time_in_the_partition_zone():
    daily = partitions_for(Grain.DAILY, START, "Asia/Seoul")
    window = daily.time_window_for_partition_key("2024-01-09")
    assert window_env(window.start, window.end) == {
        WINDOW_START_ENV: "2024-01-09 00:00:00",
        WINDOW_END_ENV: "2024-01-10 00:00:00",
    }


def test_window_env_of_a_range_spans_first_start_to_last_end():
    monthly = partitions_for(Grain.MONTHLY, START, "Asia/Seoul")
    first = monthly.time_window_for_partition_key("2024-01-01")
    last = monthly.time_window_for_partition_key("2024-02-01")
    assert window_env(first.start, last.end) == {
        WINDOW_START_ENV: "2024-01-01 00:00:00",
        WINDOW_END_ENV: "2024-03-01 00:00:00",
    }


def test_window_env_keeps_hours():
    start = datetime(2024, 1, 9, 23, tzinfo=SEOUL)
    end = datetime(2024, 1, 10, 0, tzinfo=SEOUL)
    assert window_env(start, end)[WINDOW_START_ENV] == "2024-01-09 23:00:00"


def test_window_env_converts_an_end_given_in_another_zone():
    start = datetime(2024, 1, 9, tzinfo=SEOUL)
    end_utc = datetime(2024, 1, 9, 15, tzinfo=UTC)  # = 2024-01-10 00:00 in Seoul
    assert window_env(start, end_utc)[WINDOW_END_ENV] == "2024-01-10 00:00:00"


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (datetime(2024, 1, 10, tzinfo=SEOUL), datetime(2024, 1, 9, tzinfo=SEOUL)),
        (datetime(2024, 1, 9, tzinfo=SEOUL), datetime(2024, 1, 9, tzinfo=SEOUL)),
        (datetime(2024, 1, 9), datetime(2024, 1, 10, tzinfo=SEOUL)),
    ],
)
def test_window_env_rejects_bad_windows(start, end):
    with pytest.raises(ValueError):
        window_env(start, end)


def test_neighbouring_partitions_are_named_as_one_range():
    daily = partitions_for(Grain.DAILY, START, "Asia/Seoul")
    days = ["2024-01-03", "2024-01-01", "2024-01-02", "2024-01-05", "2024-01-02"]
    assert key_ranges(days, daily) == ["2024-01-01..2024-01-03", "2024-01-05"]
    weekly = partitions_for(Grain.WEEKLY, START, "Asia/Seoul")
    assert key_ranges(["2024-01-08", "2024-01-01", "2024-01-22"], weekly) == [
        "2024-01-01..2024-01-08",
        "2024-01-22",
    ]
    # Days before the calendar starts (an input's nonexistent partitions) are ranged too.
    assert key_ranges(["2023-12-30", "2023-12-31"], daily) == ["2023-12-30..2023-12-31"]
    assert key_ranges(["a", "b"], None) == ["a", "b"]
