"""Schedules follow the batch hour: names, cron, time zone, and the partition each tick runs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from dagster import AssetKey, DagsterInstance, DefaultScheduleStatus, build_schedule_context

from flower_dagster.dbt.models import NodeGrain
from flower_dagster.defs.dbt import dbt_definitions
from flower_dagster.partitions import Grain
from flower_dagster.schedules import clock_driven_models, schedule_name
from flower_dagster.settings import Environment, load_settings

SEOUL = ZoneInfo("Asia/Seoul")
BERLIN = ZoneInfo("Europe/Berlin")

# The definitions are built on the session's demo project (parsed once by the fixture).
pytestmark = pytest.mark.slow


def _tick(defs, name: str, at: datetime) -> list[tuple[str | None, set[AssetKey]]]:
    schedule = defs.get_schedule_def(name)
    with DagsterInstance.ephemeral() as instance:
        result = schedule.evaluate_tick(
            build_schedule_context(instance=instance, scheduled_execution_time=at)
        )
    job = defs.resolve_job_def(f"{name}_job")
    keys = set(job.asset_layer.executable_asset_keys)
    return [(request.partition_key, keys) for request in result.run_requests or []]


@pytest.mark.parametrize("hour", [5, 7, 8])
@pytest.mark.parametrize("how", ["override", "file"])
def test_the_daily_schedule_runs_yesterday_at_the_batch_hour(warehouse, tmp_path, hour, how):
    if how == "override":
        settings = load_settings({**_env(warehouse), "FLOWER_SCHEDULE_HOUR": str(hour)})
    else:
        path = tmp_path / "flower.yaml"
        path.write_text(
            f"schedule: {{hour: {hour}}}\ndbt: {{project_dir: {warehouse.project_dir}}}\n"
        )
        settings = load_settings({"FLOWER_SETTINGS_FILE": str(path)})
    assert settings.schedule_hour == hour
    defs = dbt_definitions(settings)
    name = f"daily_models_{hour:02d}00_kst"
    schedule = defs.get_schedule_def(name)
    assert (schedule.cron_schedule, schedule.execution_timezone) == (
        f"0 {hour} * * *",
        "Asia/Seoul",
    )
    expected_keys = {AssetKey("fct_orders"), AssetKey("fct_sessions")}
    # Just after midnight UTC (morning in Seoul) and across a month end in a leap year.
    # The tick at 07:00 KST on the 10th is 22:00 UTC on the 9th: yesterday is the 9th in Seoul,
    # not the 8th (the day before the UTC date).
    utc_tick = datetime(2024, 1, 10, hour, tzinfo=SEOUL).astimezone(UTC)
    assert utc_tick.day == 9
    for at, partition in [
        (utc_tick, "2024-01-09"),
        (datetime(2024, 1, 10, hour, tzinfo=SEOUL), "2024-01-09"),
        (datetime(2024, 3, 1, hour, tzinfo=SEOUL), "2024-02-29"),
        (datetime(2025, 1, 1, hour, tzinfo=SEOUL), "2024-12-31"),
    ]:
        assert _tick(defs, name, at) == [(partition, expected_keys)]


def _env(warehouse) -> dict[str, str]:
    return {"FLOWER_DBT_PROJECT_DIR": str(warehouse.project_dir)}


def test_the_schedule_keeps_its_hour_across_daylight_saving_time(warehouse):
    settings = load_settings({**_env(warehouse), "FLOWER_TIMEZONE": "Europe/Berlin"})
    defs = dbt_definitions(settings)
    name = "daily_models_0700_europe_berlin"
    assert defs.get_schedule_def(name).execution_timezone == "Europe/Berlin"
    # The night clocks go forward (2024-03-31) and back (2024-10-27).
    assert _tick(defs, name, datetime(2024, 3, 31, 7, tzinfo=BERLIN))[0][0] == "2024-03-30"
    assert _tick(defs, name, datetime(2024, 4, 1, 7, tzinfo=BERLIN))[0][0] == "2024-03-31"
    assert _tick(defs, name, datetime(2024, 10, 28, 7, tzinfo=BERLIN))[0][0] == "2024-10-27"


def test_the_hourly_schedule_runs_the_hour_that_has_just_closed(warehouse):
    defs = dbt_definitions(load_settings(_env(warehouse)))
    name = "hourly_models_every_hour_kst"
    schedule = defs.get_schedule_def(name)
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 * * * *", "Asia/Seoul")
    hourly = {AssetKey("agg_hourly_traffic")}
    # Midnight in Seoul is 15:00 UTC the day before: the hour that closed is 23:00 KST.
    assert _tick(defs, name, datetime(2024, 1, 10, 0, tzinfo=SEOUL)) == [
        ("2024-01-09-23:00", hourly)
    ]
    assert _tick(defs, name, datetime(2024, 3, 1, 10, tzinfo=SEOUL)) == [
        ("2024-03-01-09:00", hourly)
    ]
    # The daily roll-up of those hours is not clock-driven: the repair rule builds it.
    assert not any(
        AssetKey("agg_daily_traffic") in job_keys
        for s in defs.schedules or []
        for job_keys in [
            set(defs.resolve_job_def(f"{s.name}_job").asset_layer.executable_asset_keys)
        ]
    )


def test_schedules_run_only_where_the_environment_says(warehouse):
    dev = load_settings(_env(warehouse))
    prod = replace(dev, environment=Environment("prod", None, True, True, True))
    assert dbt_definitions(dev).get_schedule_def("daily_models_0700_kst").default_status == (
        DefaultScheduleStatus.STOPPED
    )
    assert dbt_definitions(prod).get_schedule_def("daily_models_0700_kst").default_status == (
        DefaultScheduleStatus.RUNNING
    )


def _node(name: str, grain: Grain, parents: tuple[str, ...] = (), hour: int | None = None):
    return NodeGrain(f"model.p.{name}", name, "model", grain, "d", parents, hour)


def test_only_models_fed_by_sources_are_clock_driven_and_a_model_can_take_its_own_hour():
    grains = {
        n.unique_id: n
        for n in [
            _node("orders", Grain.DAILY),
            _node("early_orders", Grain.DAILY, hour=5),
            _node("midnight", Grain.DAILY, hour=0),
            _node("clicks", Grain.HOURLY),
            _node("daily_revenue", Grain.DAILY, parents=("model.p.orders",)),
            _node("weekly", Grain.WEEKLY, parents=("model.p.orders",)),
        ]
    }
    assert clock_driven_models(grains, default_hour=7) == {
        (Grain.DAILY, 0): ["model.p.midnight"],
        (Grain.DAILY, 5): ["model.p.early_orders"],
        (Grain.DAILY, 7): ["model.p.orders"],
        (Grain.HOURLY, None): ["model.p.clicks"],
    }
    assert schedule_name(Grain.DAILY, 5, "Asia/Seoul") == "daily_models_0500_kst"
    assert schedule_name(Grain.HOURLY, None, "Asia/Seoul") == "hourly_models_every_hour_kst"
