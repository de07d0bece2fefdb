"""A backfill request checked against the model's partitions, the size limit and permissions."""

from __future__ import annotations

import pytest

from flower_dagster.admin.backfill import Refused, plan_backfill
from flower_dagster.admin.selection import models_from_manifest
from flower_dagster.dbt.project import FlowerDbtProject
from flower_dagster.partitions import Grain, partitions_for
from flower_dagster.settings import AdminSettings
from tests.conftest import Warehouse


@pytest.fixture(scope="module")
def models(warehouse: Warehouse):
    return models_from_manifest(FlowerDbtProject.from_settings(warehouse.settings).load_manifest())


@pytest.fixture(scope="module")
def settings(warehouse: Warehouse):
    return warehouse.settings.model_copy(update={"admin": AdminSettings(max_partitions=31)})


@pytest.fixture(scope="module")
def mine(models):
    return {n: m for n, m in models.items() if m.owner == "commerce" and m.grain is not None}


def _plan(body, mine, models, settings):
    return plan_backfill({"reason": "a reason", **body}, mine, models, settings)


def _refusal(body, mine, models, settings) -> Refused:
    with pytest.raises(Refused) as caught:
        _plan(body, mine, models, settings)
    return caught.value


def test_a_daily_range_is_every_day_from_first_to_last(mine, models, settings):
    plan = _plan(
        {"model": "fct_orders", "from": "2024-01-30", "to": "2024-02-02"}, mine, models, settings
    )
    assert plan.partition_keys == ("2024-01-30", "2024-01-31", "2024-02-01", "2024-02-02")
    assert (plan.model, plan.grain, plan.reason) == ("fct_orders", Grain.DAILY, "a reason")


def test_a_weekly_range_is_its_mondays_and_a_monthly_range_its_months(mine, models, settings):
    weeks = _plan(
        {"model": "agg_weekly_revenue", "from": "2024-01-01", "to": "2024-01-29"},
        mine,
        models,
        settings,
    )
    assert weeks.partition_keys == (
        "2024-01-01",
        "2024-01-08",
        "2024-01-15",
        "2024-01-22",
        "2024-01-29",
    )
    months = _plan(
        {"model": "agg_monthly_revenue", "from": "2024-01-01", "to": "2024-03-01"},
        mine,
        models,
        settings,
    )
    assert months.partition_keys == ("2024-01-01", "2024-02-01", "2024-03-01")


def test_an_hourly_model_takes_whole_days(models, settings):
    hourly = {"agg_hourly_traffic": models["agg_hourly_traffic"]}
    plan = _plan(
        {"model": "agg_hourly_traffic", "from": "2024-01-10", "to": "2024-01-10"},
        hourly,
        models,
        settings,
    )
    assert len(plan.partition_keys) == 24
    assert (plan.first, plan.last) == ("2024-01-10-00:00", "2024-01-10-23:00")


def test_the_limit_counts_partitions_not_days(mine, models, settings):
    # 31 days is at the limit; 32 is above it; 32 weeks of a weekly model are too.
    assert (
        len(
            _plan(
                {"model": "fct_orders", "from": "2024-01-01", "to": "2024-01-31"},
                mine,
                models,
                settings,
            ).partition_keys
        )
        == 31
    )
    above = _refusal(
        {"model": "fct_orders", "from": "2024-01-01", "to": "2024-02-01"}, mine, models, settings
    )
    assert (above.status, above.field) == (422, "to")
    assert "32 partitions of fct_orders" in above.message and "limit of 31" in above.message
    weeks = _refusal(
        {"model": "agg_weekly_revenue", "from": "2024-01-01", "to": "2024-08-12"},
        mine,
        models,
        settings,
    )
    assert "33 partitions" in weeks.message


def test_the_last_partition_is_the_last_whose_window_has_ended(mine, models, settings):
    partitions = partitions_for(Grain.DAILY, settings.partition_start, settings.timezone)
    last = partitions.get_last_partition_key()
    plan = _plan({"model": "fct_orders", "from": last, "to": last}, mine, models, settings)
    assert plan.partition_keys == (last,)
    nxt = partitions.get_next_partition_key(last)
    refused = _refusal(
        {"model": "fct_orders", "from": last, "to": nxt or "2999-01-01"}, mine, models, settings
    )
    assert refused.field == "to" and f"after the last partition of fct_orders ({last}" in (
        refused.message
    )


@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        ({"model": "fct_sessions"}, 403, "model", "you may not backfill 'fct_sessions'"),
        ({"model": "fct_order"}, 404, "model", "unknown model 'fct_order'"),
        ({"model": ""}, 422, "model", "model is missing"),
        (
            {"model": "fct_orders", "from": "2023-12-31", "to": "2024-01-02"},
            422,
            "from",
            "before the first partition of fct_orders (2024-01-01)",
        ),
        (
            {"model": "fct_orders", "from": "01/02/2024", "to": "2024-01-02"},
            422,
            "from",
            "not a valid date",
        ),
        (
            {"model": "fct_orders", "from": "2024-01-03", "to": "2024-01-02"},
            422,
            "to",
            "to (2024-01-02) is before from (2024-01-03)",
        ),
        ({"model": "fct_orders", "from": "2024-01-03"}, 422, "to", "to is missing"),
        (
            {"model": "fct_orders", "from": "2024-01-01", "to": "2024-01-01", "reason": ""},
            422,
            "reason",
            "reason is missing",
        ),
        (
            {"model": "fct_orders", "from": "2024-01-01", "to": "2024-01-01", "reason": "x" * 501},
            422,
            "reason",
            "501 characters",
        ),
        (
            {"model": "agg_monthly_revenue", "from": "2024-01-15", "to": "2024-02-01"},
            422,
            "from",
            "the partition that contains it is 2024-01-01",
        ),
        (
            {"model": "fct_orders", "from": "2024-01-01", "to": "2024-01-01", "extra": 1},
            422,
            "extra",
            "unknown field 'extra'",
        ),
    ],
)
def test_refusals_name_the_field_and_what_is_allowed(
    mine, models, settings, body, status, field, words
):
    refused = _refusal(body, mine, models, settings)
    assert (refused.status, refused.field) == (status, field)
    assert words in refused.message
    assert refused.as_json()["allowed"]


def test_a_body_that_is_not_an_object_is_refused(mine, models, settings):
    with pytest.raises(Refused) as caught:
        plan_backfill(["fct_orders"], mine, models, settings)
    assert (caught.value.status, caught.value.field) == (400, "body")


def test_a_backfill_whose_runs_failed_counts_them_failed_not_in_progress():
    from flower_dagster.admin.service import settled_counts

    # The models table already says 7 failed; Dagster's backfill still says 7 in progress.
    dagster = {"targeted": 7, "done": 0, "failed": 0, "in_progress": 7}
    assert settled_counts(dagster, failed_by_runs=7, active_runs=0) == {
        "targeted": 7,
        "done": 0,
        "failed": 7,
        "in_progress": 0,
    }
    # A run of it still active (a retry), or no way to know: Dagster's counts stay.
    assert settled_counts(dagster, failed_by_runs=7, active_runs=1) == dagster
    assert settled_counts(dagster, failed_by_runs=7, active_runs=None) == dagster
    # Never more moved than Dagster has in progress.
    some = {"targeted": 7, "done": 4, "failed": 1, "in_progress": 2}
    assert settled_counts(some, failed_by_runs=5, active_runs=0)["failed"] == 3
