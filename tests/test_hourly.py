"""The hourly grain end to end: an hourly demo model, its hour window, and a daily built on it.

`agg_hourly_traffic` is partitioned by hour (Asia/Seoul) and built from the tracked events;
`agg_daily_traffic` is a daily roll-up of its 24 hours. Real dbt, real DuckDB, real Dagster runs.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterEventType, TimeWindowPartitionMapping

from flower_dagster.dagster_tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from flower_dagster.partitions import Grain, partitions_for
from tests.conftest import Warehouse

HOURLY = AssetKey("agg_hourly_traffic")
DAILY = AssetKey("agg_daily_traffic")


def _hours(day: str, first: int = 0, last: int = 23) -> list[str]:
    return [f"{day}-{hour:02d}:00" for hour in range(first, last + 1)]


def _upstream_hours(partition_mapping, daily, hourly, day: str) -> list[str]:
    subset = daily.empty_subset().with_partition_keys([day])
    result = partition_mapping.get_upstream_mapped_partitions_result_for_partitions(
        subset, daily, hourly
    )
    return sorted(result.partitions_subset.get_partition_keys())


def test_a_daily_partition_depends_on_exactly_its_24_hours(warehouse: Warehouse):
    graph = warehouse.defs.resolve_asset_graph()
    node = graph.get(DAILY)
    assert node.parent_keys == {HOURLY}
    hourly = graph.get(HOURLY).partitions_def
    assert type(hourly).__name__ == "HourlyPartitionsDefinition"
    mapping = graph.get_partition_mapping(DAILY, HOURLY)
    assert _upstream_hours(mapping, node.partitions_def, hourly, "2024-01-10") == _hours(
        "2024-01-10"
    )
    # Hours are read in KST: the day's first hour starts at 00:00 +09:00 (15:00 UTC before).
    first = hourly.time_window_for_partition_key("2024-01-10-00:00").start
    assert first.isoformat() == "2024-01-10T00:00:00+09:00"


@pytest.mark.parametrize(("day", "hours"), [("2024-03-31", 23), ("2024-10-27", 25)])
def test_days_with_a_clock_change_map_to_their_real_hours(day, hours):
    # Asia/Seoul keeps 24 hours every day; a zone with daylight saving does not.
    daily = partitions_for(Grain.DAILY, date(2024, 1, 1), "Europe/Berlin")
    hourly = partitions_for(Grain.HOURLY, date(2024, 1, 1), "Europe/Berlin")
    keys = _upstream_hours(TimeWindowPartitionMapping(), daily, hourly, day)
    assert len(keys) == hours
    assert keys[0] == f"{day}-00:00" and keys[-1] == f"{day}-23:00"


def _events_in(warehouse: Warehouse, start: str, end: str) -> int:
    return warehouse.query(
        "select count(*) from raw.events where event_at >= ? and event_at < ?",
        [datetime.fromisoformat(start), datetime.fromisoformat(end)],
    )[0][0]


def _daily_rows(warehouse: Warehouse, day: str) -> int:
    """agg_daily_traffic's rows of `day` (none while no run has created the table)."""
    exists = warehouse.query(
        "select count(*) from information_schema.tables where table_name = 'agg_daily_traffic'"
    )[0][0]
    if not exists:
        return 0
    return warehouse.query(
        "select count(*) from agg_daily_traffic where traffic_date = ?", [date.fromisoformat(day)]
    )[0][0]


def _failure(result) -> str:
    return str(
        next(
            e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE
        ).step_failure_data.error
    )


@pytest.mark.slow
def test_an_hourly_partition_materializes_exactly_its_hour(warehouse: Warehouse):
    # The busiest hour of the day in the raw events (the generator spreads sessions over it).
    ((hour, expected),) = warehouse.query(
        "select date_trunc('hour', event_at) as hour, count(*) from raw.events "
        "where cast(event_at as date) = '2024-01-10' group by 1 order by 2 desc, 1 limit 1"
    )
    key = hour.strftime("%Y-%m-%d-%H:00")
    result = warehouse.materialize(["agg_hourly_traffic"], partition_key=key)
    assert result.success, _failure(result)
    log = (warehouse.target_dirs(result.run_id)[0] / "dbt.log").read_text()
    next_hour = hour + timedelta(hours=1)
    assert f"{hour:%Y-%m-%d %H}:00:00" in log and f"{next_hour:%Y-%m-%d %H}:00:00" in log
    records = warehouse.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=HOURLY), limit=100
    ).records
    assert [r.partition_key for r in records if r.run_id == result.run_id] == [key]
    # Only that hour was written: the other hours of the day stay empty.
    rows = warehouse.query(
        "select event_hour, event_count from agg_hourly_traffic "
        "where event_hour >= '2024-01-10 00:00' and event_hour < '2024-01-11 00:00'"
    )
    assert rows == [(hour, expected)]
    assert expected == _events_in(
        warehouse, f"{hour:%Y-%m-%d %H}:00", f"{next_hour:%Y-%m-%d %H}:00"
    )


@pytest.mark.slow
def test_a_daily_rollup_of_24_hours_and_its_input_check(warehouse: Warehouse):
    day = "2024-01-11"
    hours = warehouse.materialize(
        ["agg_hourly_traffic"],
        tags={
            ASSET_PARTITION_RANGE_START_TAG: f"{day}-00:00",
            ASSET_PARTITION_RANGE_END_TAG: f"{day}-22:00",
        },
    )
    assert hours.success, _failure(hours)

    # 23 of 24 hours: the roll-up refuses to run and names the missing hour.
    early = warehouse.materialize(["agg_daily_traffic"], partition_key=day)
    assert not early.success
    assert f"agg_hourly_traffic {day}-23:00 (missing)" in _failure(early)
    assert _daily_rows(warehouse, day) == 0

    last = warehouse.materialize(["agg_hourly_traffic"], partition_key=f"{day}-23:00")
    assert last.success, _failure(last)
    daily = warehouse.materialize(["agg_daily_traffic"], partition_key=day)
    assert daily.success, _failure(daily)
    assert _daily_rows(warehouse, day) == 1
    ((events, active_hours, busiest),) = warehouse.query(
        "select event_count, active_hour_count, busiest_hour from agg_daily_traffic "
        f"where traffic_date = '{day}'"
    )
    assert events == _events_in(warehouse, f"{day} 00:00", "2024-01-12 00:00") > 0
    by_hour = warehouse.query(
        "select date_trunc('hour', event_at) as hour, count(*) from raw.events "
        f"where cast(event_at as date) = '{day}' group by 1 order by 2 desc, 1"
    )
    assert active_hours == len(by_hour)
    assert busiest == by_hour[0][0]
