"""DuckDB has one writer: two runs launched at once both succeed, one waiting for the other."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterRunStatus, RunsFilter

from tests.conftest import Warehouse

pytestmark = pytest.mark.slow


def test_two_runs_launched_at_once_take_turns_on_the_warehouse(warehouse: Warehouse):
    dagster = Path(sys.executable).with_name("dagster")
    env = {**os.environ, "DAGSTER_HOME": str(warehouse.dagster_home)}
    days = ["2024-02-05", "2024-02-06"]
    processes = [
        subprocess.Popen(
            [
                *(str(dagster), "asset", "materialize", "-m", "flower_dagster.definitions"),
                *("--select", "fct_orders", "--partition", day),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for day in days
    ]
    outputs = [process.communicate(timeout=300)[0] for process in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
        assert "Could not set lock" not in output
    # One of them waited rather than failed: for the pool's slot, or, when Dagster's SQLite
    # storage gave the slot to both, for the warehouse lock (flower_dagster/warehouse_lock.py).
    assert any(
        "blocked by limit for pool warehouse" in output
        or "waiting for the warehouse lock" in output
        for output in outputs
    )

    runs = warehouse.instance.get_runs(
        RunsFilter(statuses=[DagsterRunStatus.SUCCESS], tags={"dagster/partition": days[0]})
    )
    assert runs
    for day in days:
        records = warehouse.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey("fct_orders"), asset_partitions=[day]), limit=1
        ).records
        assert records, day
