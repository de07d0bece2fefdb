"""The dbt side of a partition window, run by hand with dbt as a person would."""

from __future__ import annotations

import subprocess

import pytest

from flower_dagster.dbt.project import FlowerDbtProject, dbt_executable
from tests.conftest import Warehouse

pytestmark = pytest.mark.slow


def _dbt(warehouse: Warehouse, args: list[str], window: tuple[str, str] | None):
    project = FlowerDbtProject.from_settings(warehouse.settings)
    env = {**project.dbt_env(), "FLOWER_WINDOW_START": "", "FLOWER_WINDOW_END": ""}
    if window:
        env.update(FLOWER_WINDOW_START=window[0], FLOWER_WINDOW_END=window[1])
    target = warehouse.root / "target-by-hand"
    return subprocess.run(
        [dbt_executable(), "--no-use-colors", *args, "--target-path", str(target)],
        cwd=warehouse.project_dir,
        env={**env, "DBT_LOG_PATH": str(target)},
        capture_output=True,
        text=True,
        check=False,
    )


def _weekly_rows(warehouse: Warehouse) -> list[tuple]:
    return warehouse.query("select * from agg_weekly_revenue order by week_start, country")


def test_a_window_that_splits_a_partition_is_refused_and_writes_nothing(warehouse):
    # Build week 2024-02-12 properly first.
    week = ("2024-02-12 00:00:00", "2024-02-19 00:00:00")
    built = _dbt(warehouse, ["run", "-s", "fct_orders"], week)
    assert built.returncode == 0, built.stdout
    assert _dbt(warehouse, ["run", "-s", "agg_weekly_revenue"], week).returncode == 0
    before = _weekly_rows(warehouse)

    one_day = ("2024-02-13 00:00:00", "2024-02-14 00:00:00")
    refused = _dbt(warehouse, ["run", "-s", "agg_weekly_revenue"], one_day)
    assert refused.returncode != 0
    assert "whose week_start is null or outside the window" in refused.stdout
    assert "Nothing was written" in refused.stdout
    assert _weekly_rows(warehouse) == before


def test_full_refresh_with_a_window_is_refused(warehouse):
    before = warehouse.query("select count(*) from fct_orders")
    window = ("2024-02-12 00:00:00", "2024-02-13 00:00:00")
    refused = _dbt(warehouse, ["run", "-s", "fct_orders", "--full-refresh"], window)
    assert refused.returncode != 0
    assert "was asked for --full-refresh with a partition window" in refused.stdout
    assert warehouse.query("select count(*) from fct_orders") == before


def test_a_malformed_window_names_the_format(warehouse):
    refused = _dbt(warehouse, ["run", "-s", "fct_orders"], ("2024-02-12", "tomorrow"))
    assert refused.returncode != 0
    assert "window end 'tomorrow' is not a date or timestamp" in refused.stdout


def test_vars_work_for_people_who_run_dbt_by_hand(warehouse):
    vars_arg = '{flower_window_start: "2024-02-14", flower_window_end: "2024-02-15"}'
    result = _dbt(warehouse, ["run", "-s", "fct_orders", "--vars", vars_arg], None)
    assert result.returncode == 0, result.stdout
    count = warehouse.query("select count(*) from fct_orders where order_date = '2024-02-14'")
    raw = warehouse.query(
        "select count(*) from raw.orders where ordered_at >= '2024-02-14' "
        "and ordered_at < '2024-02-15'"
    )
    assert count == raw and raw[0][0] > 0
