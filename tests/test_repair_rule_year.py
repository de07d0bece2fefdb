"""The repair rule after a year-long backfill of the dailies, on real dbt runs.

Apart from test_repair_rule.py so the two long suites run side by side (`make test` runs test
files on two workers).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest

from tests.automation_support import days, fresh_automation
from tests.conftest import Warehouse, private_warehouse

pytestmark = pytest.mark.slow

DAILIES = ["fct_orders", "fct_sessions"]


@pytest.fixture(scope="module")
def own_warehouse(warehouse: Warehouse, tmp_path_factory) -> Iterator[Warehouse]:
    yield from private_warehouse(warehouse, tmp_path_factory, "repair_rule_year")


def test_a_year_backfill_rolls_up_once_and_an_old_repair_stays_precise(
    own_warehouse, tmp_path_factory
):
    automation = fresh_automation(own_warehouse, tmp_path_factory, "year")
    assert automation.materialize(DAILIES, "2024-01-01", "2024-12-30")
    merged = automation.settle()
    counts = automation.requested_counts
    weeks = {(date(2024, 1, 1) + timedelta(weeks=i)).isoformat() for i in range(52)}
    months = {date(2024, m, 1).isoformat() for m in range(1, 12)}
    assert merged["agg_weekly_revenue"] == weeks  # 2024-12-30 week is incomplete
    assert merged["agg_weekly_active_users"] == weeks
    assert merged["agg_monthly_revenue"] == months  # December lacks its 31st
    assert merged["agg_monthly_active_users"] == months
    assert merged["agg_monthly_peak_week"] == months
    assert merged["agg_daily_revenue"] == days("2024-01-01", "2024-12-30")
    assert set(counts.values()) == {1}
    # As few runs as the single-run backfill policy allows: one per grain per tick.
    assert automation.runs == [3, 1]

    # A repair of a day eleven months before the latest one: its own week and month only.
    assert automation.materialize(["fct_orders"], "2024-01-10")
    assert automation.settle() == {
        "agg_weekly_revenue": {"2024-01-08"},
        "agg_monthly_revenue": {"2024-01-01"},
        "agg_daily_revenue": {"2024-01-10"},
    }
    assert set(automation.requested_counts.values()) == {1}
