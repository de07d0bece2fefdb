"""The repair rule on real dbt runs: what the automation requests, tick by tick.

A fresh Dagster instance over a DuckDB warehouse of this module's own; ticks are
`evaluate_automation_conditions` with the cursor passed on, and every requested run is executed
for real (dbt on DuckDB) before the next tick, as the daemon would.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetRecordsFilter,
    AssetSelection,
    DagsterEventType,
    DagsterRunStatus,
    RunsFilter,
)
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest

from flower_dagster.dagster_tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from flower_dagster.demo.data import change_day, corrupt_day, repair_day
from tests.automation_support import Automation, Requested, days, fresh_automation
from tests.conftest import Warehouse, private_warehouse

pytestmark = pytest.mark.slow

DAILIES = ["fct_orders", "fct_sessions"]


@pytest.fixture(scope="module")
def own_warehouse(warehouse: Warehouse, tmp_path_factory) -> Iterator[Warehouse]:
    """These tests write many partitions, which the other modules must not see."""
    yield from private_warehouse(warehouse, tmp_path_factory, "repair_rule")


@pytest.fixture(scope="module")
def loaded_january(own_warehouse: Warehouse, tmp_path_factory) -> Iterator[Automation]:
    """Dailies loaded for 2024-01-01 .. 2024-02-06 as one backfill; nothing rolled up yet."""
    automation = fresh_automation(own_warehouse, tmp_path_factory, "january")
    assert automation.materialize(DAILIES, "2024-01-01", "2024-02-06")
    yield automation


@dataclass(frozen=True)
class Tick:
    requested: Requested
    run_outcomes: list[bool]


@pytest.fixture(scope="module")
def first_ticks(loaded_january: Automation) -> list[Tick]:
    """The rule's first three ticks after the load, each followed by its runs, taken before any
    test changes January: whichever test runs first, the load's own requests are on record."""
    ticks = []
    for _ in range(3):
        requested = loaded_january.tick()
        ticks.append(Tick(requested, loaded_january.run_requested()))
    return ticks


@pytest.fixture
def january(loaded_january: Automation, first_ticks: list[Tick]) -> Automation:
    """January with everything the rule asks for built: each test starts from a settled month
    whatever ran before it (one tick when the previous test left it settled), and asserts only
    on the days and weeks it changes."""
    loaded_january.settle()
    return loaded_january


def test_loading_january_requests_exactly_the_complete_weeks_and_months(first_ticks):
    loading, then, last = first_ticks
    complete_weeks = {"2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22", "2024-01-29"}
    assert loading.requested == {
        "agg_weekly_revenue": complete_weeks,
        "agg_weekly_active_users": complete_weeks,
        # February has only 6 of its 29 days: not requested.
        "agg_monthly_revenue": {"2024-01-01"},
        "agg_monthly_active_users": {"2024-01-01"},
        "agg_daily_revenue": days("2024-01-01", "2024-02-06"),
    }
    # Week 2024-02-05 has two of its seven days: not requested.
    # One run per grain: the backfill policy groups the partitions.
    assert len(loading.run_outcomes) == 3
    assert all(loading.run_outcomes)
    # The monthly built from the weekly follows once its weeks exist, then nothing more.
    assert then.requested == {"agg_monthly_peak_week": {"2024-01-01"}}
    assert then.run_outcomes == [True]
    assert last.requested == {}
    assert last.run_outcomes == []


def test_a_repair_requests_exactly_its_week_and_month_once(january):
    assert january.materialize(["fct_orders"], "2024-01-09")
    assert january.settle() == {
        "agg_weekly_revenue": {"2024-01-08"},
        "agg_monthly_revenue": {"2024-01-01"},
        "agg_daily_revenue": {"2024-01-09"},
    }
    assert set(january.requested_counts.values()) == {1}


def test_a_canceled_rollup_run_is_requested_again_by_itself(january):
    """Issue 21 case 1: a canceled run used to hold its week forever."""
    assert january.materialize(["fct_orders"], "2024-01-11")
    requested = january.tick()
    assert requested["agg_weekly_revenue"] == {"2024-01-08"}
    # The daemon queued the weekly's run; an operator cancels it before it starts.
    queued = january.queue("agg_weekly_revenue", "2024-01-08")
    assert january.materialize(["agg_daily_revenue"], "2024-01-11")
    assert january.materialize(["agg_monthly_revenue"], "2024-01-01")
    assert january.tick() == {}
    january.cancel(queued)
    # One evaluation sees it not in progress and waits; the next one requests it again.
    assert january.tick() == {}
    assert january.tick() == {"agg_weekly_revenue": {"2024-01-08"}}
    assert all(january.run_requested())
    assert january.tick() == {}


def test_a_repair_recorded_while_the_rollup_runs_is_read_by_a_second_dbt_run(january):
    """Issue 21 case 3: a repair that landed while the week's dbt ran used to be lost.

    DuckDB takes one writer, so the repair here is the one another engine (`warehouse.slots`
    above 1) would record: a materialization of a day of the week, written to the instance
    from another thread while the week's dbt is running in its own process.
    """
    key, week, day = AssetKey("fct_orders"), "2024-01-15", "2024-01-18"
    done: dict[str, object] = {}
    worker = threading.Thread(
        target=lambda: done.update(
            result=january._run(
                AssetSelection.assets(AssetKey("agg_weekly_revenue")),
                {ASSET_PARTITION_RANGE_START_TAG: week, ASSET_PARTITION_RANGE_END_TAG: week},
            )
        )
    )
    worker.start()
    try:
        deadline = time.monotonic() + 120
        while not _dbt_started(january, week):
            assert time.monotonic() < deadline, "the week's dbt never started"
            time.sleep(0.05)
        january.instance.report_runless_asset_event(AssetMaterialization(key, partition=day))
        repair = january.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=[day]), limit=1
        ).records[0]
    finally:
        worker.join(timeout=300)
    result = done["result"]
    assert result.success
    warnings = [
        entry.user_message
        for entry in january.instance.all_logs(result.run_id)
        if "changed while dbt ran" in entry.user_message
    ]
    assert warnings == ["fct_orders changed while dbt ran; running dbt again"]
    built = january.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("agg_weekly_revenue"), asset_partitions=[week]),
        limit=1,
    ).records[0]
    # The week's last build started after the repair was recorded, and the rule has nothing
    # left to do for it.
    assert built.storage_id > repair.storage_id
    assert "agg_weekly_revenue" not in january.settle()


def _dbt_started(automation: Automation, partition: str) -> bool:
    """Whether a running run has logged the start of its dbt build for `partition`."""
    running = automation.instance.get_run_records(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
    return any(
        entry.user_message.startswith(f"dbt build for partitions {partition}:")
        for record in running
        for entry in automation.instance.all_logs(record.dagster_run.run_id)
    )


def test_a_failed_day_blocks_its_week_and_month_until_it_is_repaired(january, own_warehouse):
    day = date(2024, 1, 24)
    corrupt_day(own_warehouse.duckdb_path, day)
    try:
        assert not january.materialize(["fct_orders"], day.isoformat())
        assert january.tick() == {}
        assert january.tick() == {}
    finally:
        repair_day(own_warehouse.duckdb_path, day)
    assert january.materialize(["fct_orders"], day.isoformat())
    assert january.settle() == {
        "agg_weekly_revenue": {"2024-01-22"},
        "agg_monthly_revenue": {"2024-01-01"},
        "agg_daily_revenue": {"2024-01-24"},
    }


def test_a_repair_between_the_rollups_run_and_the_next_tick_is_not_missed(january):
    assert january.materialize(["fct_orders"], "2024-01-16")
    assert january.tick()["agg_weekly_revenue"] == {"2024-01-15"}
    assert all(january.run_requested())
    # The week has just been rebuilt; another day of it is repaired before the next tick.
    assert january.materialize(["fct_orders"], "2024-01-17")
    assert january.tick()["agg_weekly_revenue"] == {"2024-01-15"}
    assert all(january.run_requested())
    assert january.settle() == {}


def test_a_repair_reaches_every_descendant_whose_window_contains_the_day(january):
    # fct_sessions -> weekly active users -> monthly peak week (a monthly built from a weekly).
    assert january.materialize(["fct_sessions"], "2024-01-10")
    assert january.settle() == {
        "agg_weekly_active_users": {"2024-01-08"},
        "agg_monthly_active_users": {"2024-01-01"},
        "agg_monthly_peak_week": {"2024-01-01"},
    }
    assert set(january.requested_counts.values()) == {1}


def test_a_rollup_that_fails_is_not_requested_again_until_new_upstream_data(january, own_warehouse):
    # Break the weekly's own SQL input: a duplicate row in its window fails its unique test.
    import duckdb

    with duckdb.connect(str(own_warehouse.duckdb_path)) as db:
        db.execute("create or replace table flower_saved as select * from agg_weekly_revenue")
    assert january.materialize(["fct_orders"], "2024-01-03")
    requested = january.tick()
    assert requested["agg_weekly_revenue"] == {"2024-01-01"}
    with duckdb.connect(str(own_warehouse.duckdb_path)) as db:
        # Make the roll-up's run fail: its table loses a column the insert needs.
        db.execute("alter table agg_weekly_revenue rename column revenue to revenue_broken")
    try:
        outcomes = january.run_requested()
        assert not all(outcomes)
        # Failed, and nothing new upstream: no request on the following ticks.
        assert "agg_weekly_revenue" not in january.tick()
        assert "agg_weekly_revenue" not in january.tick()
    finally:
        with duckdb.connect(str(own_warehouse.duckdb_path)) as db:
            db.execute("drop table agg_weekly_revenue")
            db.execute("create table agg_weekly_revenue as select * from flower_saved")
            db.execute("drop table flower_saved")
    # New upstream data re-arms it.
    assert january.materialize(["fct_orders"], "2024-01-04")
    assert january.settle()["agg_weekly_revenue"] == {"2024-01-01"}


def test_a_changed_repair_makes_its_week_stale_and_an_identical_rerun_does_not(
    january, own_warehouse
):
    graph = own_warehouse.defs.resolve_asset_graph()

    def status(asset: str, partition: str) -> StaleStatus:
        # The resolver behind the UI's staleStatusByPartition.
        resolver = CachingStaleStatusResolver(
            january.instance, graph, LoadingContextForTest(january.instance)
        )
        return resolver.get_status(AssetKey(asset), partition)

    assert status("agg_weekly_revenue", "2024-01-29") == StaleStatus.FRESH
    # The same rows again: nothing downstream becomes stale.
    assert january.materialize(["fct_orders"], "2024-01-30")
    assert status("agg_weekly_revenue", "2024-01-29") == StaleStatus.FRESH
    assert status("agg_monthly_revenue", "2024-01-01") == StaleStatus.FRESH
    january.settle()
    # A repair that changes the day's rows: its week and month are stale, other weeks are not.
    change_day(own_warehouse.duckdb_path, date(2024, 1, 30))
    assert january.materialize(["fct_orders"], "2024-01-30")
    assert status("agg_weekly_revenue", "2024-01-29") == StaleStatus.STALE
    assert status("agg_monthly_revenue", "2024-01-01") == StaleStatus.STALE
    assert status("agg_daily_revenue", "2024-01-30") == StaleStatus.STALE
    assert status("agg_weekly_revenue", "2024-01-22") == StaleStatus.FRESH
    assert status("agg_daily_revenue", "2024-01-29") == StaleStatus.FRESH
    # The rule re-runs them, and they are fresh again.
    january.settle()
    assert status("agg_weekly_revenue", "2024-01-29") == StaleStatus.FRESH
    assert status("agg_monthly_revenue", "2024-01-01") == StaleStatus.FRESH


def test_the_source_check_stops_a_manual_run_on_an_incomplete_week(january):
    # Week 2024-02-05 has two of its seven days: a person materializes it by hand anyway.
    result = january._run(
        AssetSelection.assets(AssetKey("agg_weekly_revenue")),
        {
            ASSET_PARTITION_RANGE_START_TAG: "2024-02-05",
            ASSET_PARTITION_RANGE_END_TAG: "2024-02-05",
        },
    )
    assert not result.success
    (evaluation,) = [
        e.event_specific_data
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
        and e.event_specific_data.check_name == "inputs_complete"
    ]
    assert evaluation.passed is False
    problems = evaluation.metadata["upstream problems"].value
    assert problems == [f"fct_orders 2024-02-{d:02d} (missing)" for d in range(7, 12)]
    assert not [
        e for e in result.all_events if e.event_type == DagsterEventType.ASSET_MATERIALIZATION
    ]
    failure = next(e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE)
    assert "inputs incomplete for partitions 2024-02-05; dbt was not run" in str(
        failure.step_failure_data.error
    )


def test_the_source_check_passes_on_a_complete_week(january):
    result = january._run(
        AssetSelection.assets(AssetKey("agg_weekly_revenue")),
        {
            ASSET_PARTITION_RANGE_START_TAG: "2024-01-29",
            ASSET_PARTITION_RANGE_END_TAG: "2024-01-29",
        },
    )
    assert result.success
    checks = {
        e.event_specific_data.check_name: e.event_specific_data.passed
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_CHECK_EVALUATION
    }
    assert checks["inputs_complete"] is True
    january.settle()
