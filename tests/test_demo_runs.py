"""The demo warehouse through real Dagster runs of real dbt on a real DuckDB file."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AssetSelection,
    DagsterEventType,
)
from dagster._core.definitions.automation_tick_evaluation_context import (
    build_run_requests_with_backfill_policies,
)
from dagster._core.definitions.events import AssetKeyPartitionKey

from flower_dagster.dagster_tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    DATA_VERSION_TAG,
)
from flower_dagster.dbt.project import FlowerDbtProject
from flower_dagster.demo.data import corrupt_day, repair_day
from tests.conftest import Warehouse

pytestmark = pytest.mark.slow

ORDERS = AssetKey("fct_orders")


def _materialized_partitions(warehouse: Warehouse, key: AssetKey, run_id: str) -> list[str]:
    records = warehouse.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key), limit=1000
    ).records
    return sorted(r.partition_key for r in records if r.run_id == run_id and r.partition_key)


def _orders_of_day(warehouse: Warehouse, day: str) -> list[tuple]:
    return warehouse.query(
        "select order_id, user_id, status, amount_paid, ordered_at, order_date "
        "from fct_orders where order_date = ? order by order_id",
        [date.fromisoformat(day)],
    )


def test_every_demo_model_is_an_asset_named_after_it_with_its_grains_partitions(warehouse):
    import json

    manifest = json.loads((warehouse.project_dir / "target" / "manifest.json").read_text())
    models = {
        node["name"]: ((node["config"].get("meta") or {}).get("flower") or {}).get("partition")
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model"
    }
    graph = warehouse.defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert set(models) <= keys
    expected_classes = {
        None: None,
        "hourly": "HourlyPartitionsDefinition",
        "daily": "DailyPartitionsDefinition",
        "weekly": "WeeklyPartitionsDefinition",
        "monthly": "MonthlyPartitionsDefinition",
    }
    for name, grain in models.items():
        partitions = graph.get(AssetKey(name)).partitions_def
        actual = type(partitions).__name__ if partitions is not None else None
        assert actual == expected_classes[grain], name
    # The demo covers every grain it promises, and an unpartitioned dimension.
    assert {"hourly", "daily", "weekly", "monthly", None} <= set(models.values())


def test_weekly_partition_reads_its_seven_days(warehouse):
    graph = warehouse.defs.resolve_asset_graph()
    parents = graph.get_parents_partitions(AssetKey("agg_weekly_revenue"), "2024-01-08")
    days = sorted(p.partition_key for p in parents.parent_partitions if p.asset_key == ORDERS)
    assert days == [f"2024-01-{d:02d}" for d in range(8, 15)]


def test_monthly_partition_reads_the_29_days_of_february_2024(warehouse):
    graph = warehouse.defs.resolve_asset_graph()
    parents = graph.get_parents_partitions(AssetKey("agg_monthly_revenue"), "2024-02-01")
    days = sorted(p.partition_key for p in parents.parent_partitions if p.asset_key == ORDERS)
    assert len(days) == 29
    assert (days[0], days[-1]) == ("2024-02-01", "2024-02-29")


def _neighbours(warehouse: Warehouse) -> list[tuple]:
    """fct_orders rows of the days around 2024-01-09 (none if the table does not exist yet)."""
    exists = warehouse.query(
        "select count(*) from information_schema.tables where table_name = 'fct_orders'"
    )
    if exists == [(0,)]:
        return []
    return warehouse.query(
        "select * from fct_orders where order_date in ('2024-01-08', '2024-01-10') "
        "order by order_id"
    )


def test_a_daily_partition_materializes_exactly_that_days_rows(warehouse):
    before = _neighbours(warehouse)
    result = warehouse.materialize(["fct_orders"], partition_key="2024-01-09")
    assert result.success
    assert _materialized_partitions(warehouse, ORDERS, result.run_id) == ["2024-01-09"]

    # The day's orders, straight from the raw data (wall-clock Seoul time, end exclusive).
    expected = warehouse.query(
        "select order_id from raw.orders where ordered_at >= timestamp '2024-01-09 00:00:00' "
        "and ordered_at < timestamp '2024-01-10 00:00:00' order by order_id"
    )
    rows = _orders_of_day(warehouse, "2024-01-09")
    assert expected and [(r[0],) for r in rows] == expected
    # Nothing outside the window was written by this run.
    assert _neighbours(warehouse) == before


def test_running_a_partition_twice_leaves_identical_rows(warehouse):
    first = warehouse.materialize(["fct_orders"], partition_key="2024-01-16")
    assert first.success
    rows_first = _orders_of_day(warehouse, "2024-01-16")
    total_first = warehouse.query("select count(*) from fct_orders")
    second = warehouse.materialize(["fct_orders"], partition_key="2024-01-16")
    assert second.success
    assert _orders_of_day(warehouse, "2024-01-16") == rows_first
    assert warehouse.query("select count(*) from fct_orders") == total_first


def test_a_31_day_backfill_is_one_run_and_one_dbt_invocation(warehouse):
    graph = warehouse.defs.resolve_asset_graph()
    days = [f"2024-03-{d:02d}" for d in range(1, 32)]
    # Plan it the way Dagster's backfill daemon does, from the assets' backfill policies.
    requests = build_run_requests_with_backfill_policies(
        [AssetKeyPartitionKey(ORDERS, day) for day in days], graph, warehouse.instance
    )
    assert len(requests) == 1
    tags = requests[0].tags
    assert (tags[ASSET_PARTITION_RANGE_START_TAG], tags[ASSET_PARTITION_RANGE_END_TAG]) == (
        "2024-03-01",
        "2024-03-31",
    )

    # A row of another day, which a run of March must leave alone (a run without the window
    # would rebuild the whole table and drop it).
    assert warehouse.materialize(["fct_orders"], partition_key="2024-02-29").success
    sentinel = ("2024-02-29", -1)
    with duckdb.connect(str(warehouse.duckdb_path)) as db:
        db.execute(
            "insert into fct_orders (order_id, order_date) values (?, ?)",
            [sentinel[1], sentinel[0]],
        )
    result = warehouse.materialize(["fct_orders"], tags=dict(tags))
    assert result.success
    assert warehouse.query("select order_date, order_id from fct_orders where order_id = -1") == [
        (date.fromisoformat(sentinel[0]), -1)
    ]
    with duckdb.connect(str(warehouse.duckdb_path)) as db:
        db.execute("delete from fct_orders where order_id = -1")
    log = (warehouse.target_dirs(result.run_id)[0] / "dbt.log").read_text()
    assert "2024-03-01 00:00:00" in log and "2024-04-01 00:00:00" in log
    assert _materialized_partitions(warehouse, ORDERS, result.run_id) == days
    invocations = [d for d in warehouse.target_dirs(result.run_id) if (d / "dbt.log").exists()]
    assert len(invocations) == 1
    per_day = dict(
        warehouse.query(
            "select order_date, count(*) from fct_orders "
            "where order_date between '2024-03-01' and '2024-03-31' group by order_date"
        )
    )
    assert len(per_day) == 31 and all(count > 0 for count in per_day.values())


def test_a_range_run_gives_each_partition_its_own_data_version(warehouse):
    """A range is one dbt invocation, yet each day is recorded as its own materialization,
    with the version of that day's content."""
    days = ["2024-01-24", "2024-01-25", "2024-01-26"]
    result = warehouse.materialize(
        ["fct_orders"],
        tags={ASSET_PARTITION_RANGE_START_TAG: days[0], ASSET_PARTITION_RANGE_END_TAG: days[-1]},
    )
    assert result.success
    materialized = [
        event.step_materialization_data.materialization
        for event in result.all_events
        if event.event_type == DagsterEventType.ASSET_MATERIALIZATION and event.asset_key == ORDERS
    ]
    assert [m.partition for m in materialized] == days
    versions = {m.tags[DATA_VERSION_TAG] for m in materialized}
    assert len(versions) == 3  # each day's content has its own version
    assert _materialized_partitions(warehouse, ORDERS, result.run_id) == days


def test_partial_parse_stays_valid_across_partition_runs(warehouse):
    # Every run copies the project's partial-parse file (dagster-dbt's way) and parses again if
    # the profile differs from the one of the project's last parse. The DuckDB path is in the
    # profile, and a module with a warehouse file of its own (`private_warehouse`, the admin
    # service's `dagster dev`, which parses at load) may have parsed this project with its
    # path: parse it again with this session's, as `dagster dev` does at load. Then a
    # partition's vars must not cost a parse.
    FlowerDbtProject.from_settings(warehouse.settings).parse()
    logs = []
    for day in ("2024-01-22", "2024-01-23"):
        result = warehouse.materialize(["fct_orders"], partition_key=day)
        assert result.success
        (target,) = warehouse.target_dirs(result.run_id)
        logs.append((target / "dbt.log").read_text())
    for log in logs:
        assert "Unable to do partial parsing" not in log
        assert "Partial parsing enabled" in log or "skipping parsing" in log


def test_a_failing_dbt_test_fails_the_partition(warehouse):
    day = "2024-02-20"
    corrupt_day(warehouse.duckdb_path, date.fromisoformat(day))
    try:
        failed = warehouse.materialize(["fct_orders"], partition_key=day)
        assert not failed.success
        # No materialization was recorded for the partition...
        assert _materialized_partitions(warehouse, ORDERS, failed.run_id) == []
        # ...the failed check was, and the step's error names the test.
        checks = warehouse.instance.get_records_for_run(
            failed.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
        outcomes = {
            r.event_log_entry.dagster_event.event_specific_data.check_name: (
                r.event_log_entry.dagster_event.event_specific_data.passed
            )
            for r in checks
        }
        assert outcomes["unique_fct_orders_order_id"] is False
        failures = [e for e in failed.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
        assert "test unique_fct_orders_order_id failed" in str(failures[0].step_failure_data.error)
        partitions_def = warehouse.defs.resolve_asset_graph().get(ORDERS).partitions_def
        status = warehouse.instance.get_status_by_partition(ORDERS, [day], partitions_def)
        assert status is not None and status[day].value == "FAILED"
    finally:
        repair_day(warehouse.duckdb_path, date.fromisoformat(day))

    repaired = warehouse.materialize(["fct_orders"], partition_key=day)
    assert repaired.success
    assert _materialized_partitions(warehouse, ORDERS, repaired.run_id) == [day]


def test_weekly_and_monthly_rollups_read_their_whole_window(warehouse):
    week_days = [f"2024-01-{d:02d}" for d in range(1, 8)]
    backfill = warehouse.materialize(
        ["fct_orders"],
        tags={
            ASSET_PARTITION_RANGE_START_TAG: week_days[0],
            ASSET_PARTITION_RANGE_END_TAG: week_days[-1],
        },
    )
    assert backfill.success
    weekly = warehouse.materialize(["agg_weekly_revenue"], partition_key="2024-01-01")
    assert weekly.success
    from_dailies = warehouse.query(
        "select count(*) from fct_orders where order_date between '2024-01-01' and '2024-01-07'"
    )[0][0]
    rolled_up = warehouse.query(
        "select sum(order_count) from agg_weekly_revenue where week_start = '2024-01-01'"
    )[0][0]
    assert rolled_up == from_dailies > 0


def test_grain_tag_selects_exactly_each_grains_models(warehouse):
    graph = warehouse.defs.resolve_asset_graph()
    for grain in ("hourly", "daily", "weekly", "monthly", "unpartitioned"):
        selected = AssetSelection.tag("flower/grain", grain).resolve(graph)
        expected = {
            key
            for key in graph.materializable_asset_keys
            if (graph.get(key).partitions_def is None) == (grain == "unpartitioned")
            and (
                grain == "unpartitioned"
                or grain in type(graph.get(key).partitions_def).__name__.lower()
            )
        }
        assert selected == expected and selected, grain
