"""Write, audit, publish on DuckDB: a partition's new rows are visible only once its tests pass.

Real Dagster runs (and one dbt run by hand, killed half-way) of real dbt on the session's demo
warehouse. Each test edits raw rows of March days no other test edits, and puts them back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta

import duckdb
import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterEventType

from flower_dagster.alerts.facts import run_facts
from flower_dagster.dagster_tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from flower_dagster.dbt.project import FlowerDbtProject, dbt_executable
from flower_dagster.dbt.target_dirs import KEEP_ENV, KEPT_FILES
from flower_dagster.demo.data import corrupt_day, repair_day
from tests.conftest import Warehouse

pytestmark = pytest.mark.slow

ORDERS = AssetKey("fct_orders")
ROWS_OF_DAY = "select * from fct_orders where order_date = ? order by order_id"


def _rows(warehouse: Warehouse, day: str) -> list[tuple]:
    return warehouse.query(ROWS_OF_DAY, [date.fromisoformat(day)])


def _materialized(warehouse: Warehouse, run_id: str) -> list[str]:
    records = warehouse.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=ORDERS), limit=1000
    ).records
    return sorted(r.partition_key for r in records if r.run_id == run_id and r.partition_key)


def _status(warehouse: Warehouse, days: list[str]) -> dict[str, str]:
    partitions_def = warehouse.defs.resolve_asset_graph().get(ORDERS).partitions_def
    status = warehouse.instance.get_status_by_partition(ORDERS, days, partitions_def)
    assert status is not None
    return {day: status[day].value for day in days}


def _step_error(result) -> str:
    failures = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    return str(failures[0].step_failure_data.error)


def _range(first: str, last: str) -> dict[str, str]:
    return {ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last}


@contextmanager
def _orders_removed(warehouse: Warehouse, day: str, count: int | None) -> Iterator[None]:
    """Remove the first `count` raw orders of `day` (all of them for None), then put them back."""
    start = datetime.fromisoformat(day)
    bounds = [start, start + timedelta(days=1)]
    with duckdb.connect(str(warehouse.duckdb_path)) as db:
        removed = db.execute(
            "select * from raw.orders where ordered_at >= ? and ordered_at < ? order by order_id"
            + (f" limit {count}" if count is not None else ""),
            bounds,
        ).fetchall()
        db.execute(
            "delete from raw.orders where order_id in (select unnest(?))",
            [[row[0] for row in removed]],
        )
    try:
        yield
    finally:
        with duckdb.connect(str(warehouse.duckdb_path)) as db:
            marks = ", ".join("?" * len(removed[0]))
            db.executemany(f"insert into raw.orders values ({marks})", removed)


def _audit_rows(warehouse: Warehouse) -> int:
    return warehouse.query("select count(*) from main_flower_audit.fct_orders")[0][0]


def test_a_failed_test_leaves_the_previous_rows_and_reruns_are_identical(warehouse, monkeypatch):
    # Keep 3 target folders, to see them pruned and the failed run's results kept.
    monkeypatch.setenv(KEEP_ENV, "3")
    day = "2024-03-12"
    first = warehouse.materialize(["fct_orders"], partition_key=day)
    assert first.success
    published = _rows(warehouse, day)
    assert len(published) > 1
    # Re-running with unchanged inputs: the same rows, none duplicated, none lost.
    assert warehouse.materialize(["fct_orders"], partition_key=day).success
    assert _rows(warehouse, day) == published

    corrupt_day(warehouse.duckdb_path, date.fromisoformat(day))
    try:
        failed = warehouse.materialize(["fct_orders"], partition_key=day)
        assert not failed.success
        # Readers still see exactly the rows of the last good run...
        assert _rows(warehouse, day) == published
        # ...the rejected rows (with the duplicate) wait in the audit relation...
        assert _audit_rows(warehouse) == len(published) + 1
        # ...and Dagster records the partition as failed, naming the test.
        assert "test unique_fct_orders_order_id failed" in _step_error(failed)
        assert _materialized(warehouse, failed.run_id) == []
        assert _status(warehouse, [day]) == {day: "FAILED"}
    finally:
        repair_day(warehouse.duckdb_path, date.fromisoformat(day))

    repaired = warehouse.materialize(["fct_orders"], partition_key=day)
    assert repaired.success
    assert _rows(warehouse, day) == published
    assert warehouse.query(
        "select count(*) from information_schema.tables where table_schema = 'main_flower_audit'"
    ) == [(0,)]

    # dbt's target folders: the newest 3, each with what is read after a step...
    folders = [p for p in (warehouse.project_dir / "target").iterdir() if p.name.count("-") >= 2]
    assert len(folders) == 3
    assert all({f.name for f in folder.iterdir()} <= KEPT_FILES for folder in folders)
    (failed_folder,) = warehouse.target_dirs(failed.run_id)
    assert (failed_folder / "run_results.json").is_file()
    # ...so the alert of the failed run still names its test.
    facts = run_facts(warehouse.instance, failed.run_id, warehouse.project_dir / "target")
    assert [r.unique_id.split(".")[2] for r in facts.dbt_results] == ["unique_fct_orders_order_id"]


def test_a_range_with_one_bad_day_publishes_none_of_its_days(warehouse):
    days = ["2024-03-13", "2024-03-14", "2024-03-15"]
    assert warehouse.materialize(["fct_orders"], tags=_range(days[0], days[-1])).success
    before = {day: _rows(warehouse, day) for day in days}

    # A good change on the first day, a duplicate order on the last.
    with _orders_removed(warehouse, days[0], 1):
        corrupt_day(warehouse.duckdb_path, date.fromisoformat(days[-1]))
        try:
            failed = warehouse.materialize(["fct_orders"], tags=_range(days[0], days[-1]))
            assert not failed.success
            assert {day: _rows(warehouse, day) for day in days} == before
            assert _status(warehouse, days) == dict.fromkeys(days, "FAILED")
            assert "test unique_fct_orders_order_id failed" in _step_error(failed)
        finally:
            repair_day(warehouse.duckdb_path, date.fromisoformat(days[-1]))
        fixed = warehouse.materialize(["fct_orders"], tags=_range(days[0], days[-1]))
        assert fixed.success
        assert len(_rows(warehouse, days[0])) == len(before[days[0]]) - 1
        assert _status(warehouse, days) == dict.fromkeys(days, "MATERIALIZED")
    assert warehouse.materialize(["fct_orders"], partition_key=days[0]).success
    assert {day: _rows(warehouse, day) for day in days} == before


def test_an_emptied_day_is_empty_after_its_rerun(warehouse):
    day = "2024-03-19"
    assert warehouse.materialize(["fct_orders"], partition_key=day).success
    before = _rows(warehouse, day)
    assert before
    with _orders_removed(warehouse, day, None):
        assert warehouse.materialize(["fct_orders"], partition_key=day).success
        assert _rows(warehouse, day) == []
    assert warehouse.materialize(["fct_orders"], partition_key=day).success
    assert _rows(warehouse, day) == before


def test_a_killed_dbt_leaves_the_previous_rows(warehouse):
    """dbt killed (SIGKILL) right after it wrote the model, while its tests run."""
    day = "2024-03-16"
    assert warehouse.materialize(["fct_orders"], partition_key=day).success
    before = _rows(warehouse, day)
    project = FlowerDbtProject.from_settings(warehouse.settings)
    target = warehouse.root / "target-killed"
    env = {
        **project.dbt_env(),
        "FLOWER_WINDOW_START": f"{day} 00:00:00",
        "FLOWER_WINDOW_END": f"{date.fromisoformat(day) + timedelta(days=1)} 00:00:00",
        "DBT_LOG_PATH": str(target),
    }
    args = [dbt_executable(), "--log-format", "json", "build", "-s", "fct_orders"]
    with _orders_removed(warehouse, day, 1):
        process = subprocess.Popen(
            [*args, "--target-path", str(target)],
            cwd=warehouse.project_dir,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert process.stdout is not None
        killed = False
        for line in process.stdout:
            event = json.loads(line)
            node = event.get("data", {}).get("node_info", {})
            if (
                event["info"]["name"] == "LogModelResult"
                and node.get("unique_id") == "model.flower_demo.fct_orders"
            ):
                assert node.get("node_status") == "success"
                os.killpg(process.pid, signal.SIGKILL)
                killed = True
                break
        process.wait()
        assert killed and process.returncode == -signal.SIGKILL
        assert _rows(warehouse, day) == before
        assert _audit_rows(warehouse) == len(before) - 1
        # The next run publishes its own rows, not the killed run's leftovers.
        assert warehouse.materialize(["fct_orders"], partition_key=day).success
        assert len(_rows(warehouse, day)) == len(before) - 1
    assert warehouse.materialize(["fct_orders"], partition_key=day).success
    assert _rows(warehouse, day) == before


def test_a_run_does_not_reparse_because_another_environment_parsed(warehouse, tmp_path):
    # Another environment (its own DuckDB file, so another profile) parses the same project and
    # leaves its partial-parse file in target/, as `flower prepare` of a second deployment does.
    other = FlowerDbtProject.from_settings(warehouse.settings)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLOWER_DUCKDB_PATH", str(tmp_path / "other.duckdb"))
        other.parse()
    result = warehouse.materialize(["fct_orders"], partition_key="2024-03-20")
    assert result.success
    (folder,) = warehouse.target_dirs(result.run_id)
    log = (folder / "dbt.log").read_text()
    assert "Unable to do partial parsing" not in log
    assert "Partial parsing enabled" in log or "skipping parsing" in log


@contextmanager
def _publish_fails(warehouse: Warehouse) -> Iterator[None]:
    """An on-run-end hook that fails before the publish (the warehouse went away), for one run:
    dbt then skips the hooks after it."""
    project_file = warehouse.project_dir / "dbt_project.yml"
    original = project_file.read_text()
    failing = "on-run-end:\n  - select * from the_warehouse_went_away\n"
    assert "on-run-end:\n" in original
    project_file.write_text(original.replace("on-run-end:\n", failing, 1))
    try:
        yield
    finally:
        project_file.write_text(original)


def test_rows_that_were_never_published_are_never_recorded_as_built(warehouse):
    day = "2024-03-21"
    assert warehouse.materialize(["fct_orders"], partition_key=day).success
    published = _rows(warehouse, day)
    with _orders_removed(warehouse, day, 1), _publish_fails(warehouse):
        failed = warehouse.materialize(["fct_orders"], partition_key=day)
    assert not failed.success
    # The tests passed on the audit relation, but the publish never ran: readers see the
    # previous rows, and Dagster does not claim the partition was built by this run.
    assert _rows(warehouse, day) == published
    assert _materialized(warehouse, failed.run_id) == []
    error = _step_error(failed)
    assert "the_warehouse_went_away" in error
    assert "no partition of this step is recorded as built" in error
