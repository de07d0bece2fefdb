"""Schedules follow the batch hour: names, cron, time zone, and the partition each tick runs."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    DefaultScheduleStatus,
    build_schedule_context,
)
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import ModuleTarget
from dagster._scheduler.scheduler import launch_scheduled_runs

from flower_dagster.dbt.models import NodeGrain, read_grains
from flower_dagster.dbt.project import FlowerDbtProject
from flower_dagster.defs.dbt import dbt_definitions
from flower_dagster.partitions import Grain
from flower_dagster.schedules import clock_driven_models, describe, schedule_name, trigger_of
from flower_dagster.settings import Environment, load_settings
from tests.conftest import make_instance
from tests.test_own_projects import write_project

SEOUL = ZoneInfo("Asia/Seoul")
BERLIN = ZoneInfo("Europe/Berlin")

# The definitions are built on the session's demo project (parsed once by the fixture).
pytestmark = pytest.mark.slow


def _tick(defs, name: str, at: datetime) -> list[tuple[str | None, set[AssetKey]]]:
    """What one tick of the schedule asks for: (partition, models), with the partition checked
    against the selected models' partitions by Dagster (as the scheduler daemon does)."""
    schedule = defs.get_schedule_def(name)
    with DagsterInstance.ephemeral() as instance:
        result = schedule.evaluate_tick(
            build_schedule_context(
                instance=instance,
                scheduled_execution_time=at,
                repository_def=defs.get_repository_def(),
            )
        )
    requests = result.run_requests or []
    for request in requests:
        assert request.tags["dagster/partition"] == request.partition_key
        assert request.run_key == request.partition_key
    return [(r.partition_key, set(r.asset_selection or ())) for r in requests]


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
    at = datetime(2024, 3, 1, 10, tzinfo=SEOUL)
    assert not any(
        AssetKey("agg_daily_traffic") in keys
        for s in defs.schedules or []
        for _, keys in _tick(defs, s.name, at)
    )


def test_schedules_run_only_where_the_environment_says(warehouse):
    dev = load_settings(_env(warehouse))
    prod = dev.model_copy(
        update={
            "environment": Environment.named("prod", schedules=True, automation=True, alerts=True)
        }
    )
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
    assert trigger_of(grains["model.p.weekly"], 7, "Asia/Seoul") == "repair rule, from orders"
    assert trigger_of(grains["model.p.early_orders"], 7, "UTC") == "schedule daily_models_0500_utc"
    assert schedule_name(Grain.HOURLY, None, "Asia/Seoul") == "hourly_models_every_hour_kst"


def test_the_scheduler_daemon_queues_a_run_of_the_closed_day_for_the_clock_driven_models(
    warehouse, tmp_path
):
    """Dagster's scheduler, as `dagster-daemon` runs it, against a real code server process:
    the schedule's tick becomes a queued run of the job Dagster makes of the schedule's asset
    selection, for yesterday (in Seoul) with exactly the clock-driven daily models, and a tick
    that has run is not run twice."""
    instance = make_instance(tmp_path / "home")
    target = ModuleTarget(
        module_name="flower_dagster.definitions",
        attribute=None,
        working_directory=None,
        location_name="flower_dagster",
    )
    # The schedule is started now; the daemon's clock is moved to just after its next tick.
    now = datetime.now(UTC)
    tick = (now.astimezone(SEOUL) + timedelta(days=1)).replace(hour=7, minute=0, second=0)
    if tick - timedelta(days=1) > now:
        tick -= timedelta(days=1)
    with WorkspaceProcessContext(instance, target) as context:
        location = next(iter(context.create_request_context().get_code_location_entries().values()))
        assert location.load_error is None, location.load_error
        repository = location.code_location.get_repository("__repository__")
        schedule = repository.get_schedule("daily_models_0700_kst")
        # Dagster names the job it makes of a schedule's asset selection after the schedule.
        job_name = "__anonymous_asset_job_daily_models_0700_kst"
        assert schedule.job_name == job_name
        instance.start_schedule(schedule)
        for end in (tick + timedelta(minutes=1), tick + timedelta(minutes=2)):
            list(
                launch_scheduled_runs(
                    context, logging.getLogger("scheduler"), end.astimezone(UTC), {}
                )
            )
    (run,) = instance.get_runs()
    assert run.job_name == job_name
    assert run.status == DagsterRunStatus.QUEUED
    assert run.asset_selection == {AssetKey("fct_orders"), AssetKey("fct_sessions")}
    assert run.tags["dagster/partition"] == (tick.date() - timedelta(days=1)).isoformat()
    assert run.tags["dagster/schedule_name"] == "daily_models_0700_kst"
    instance.dispose()


def test_a_schedule_skips_until_its_first_partition_has_closed(warehouse):
    settings = load_settings({**_env(warehouse), "FLOWER_PARTITION_START": "2024-01-01"})
    defs = dbt_definitions(settings)
    schedule = defs.get_schedule_def("daily_models_0700_kst")
    with DagsterInstance.ephemeral() as instance:
        result = schedule.evaluate_tick(
            build_schedule_context(
                instance=instance,
                scheduled_execution_time=datetime(2024, 1, 1, 7, tzinfo=SEOUL),
                repository_def=defs.get_repository_def(),
            )
        )
    assert not result.run_requests
    assert result.skip_message == (
        "No partition has closed yet: partitions start on 2024-01-01 "
        "(partitions.start in flower.yaml)."
    )


def test_a_schedule_evaluated_by_hand_without_a_tick_time_runs_the_day_closed_now(warehouse):
    defs = dbt_definitions(load_settings(_env(warehouse)))
    schedule = defs.get_schedule_def("daily_models_0700_kst")
    with DagsterInstance.ephemeral() as instance:
        before = datetime.now(SEOUL).date()
        result = schedule.evaluate_tick(
            build_schedule_context(instance=instance, repository_def=defs.get_repository_def())
        )
        after = datetime.now(SEOUL).date()
    (request,) = result.run_requests or []
    # Yesterday in Seoul (either side of a midnight the test may straddle).
    assert request.partition_key in {
        (day - timedelta(days=1)).isoformat() for day in (before, after)
    }


def test_a_description_names_five_models_and_counts_the_rest():
    assert describe(Grain.MONTHLY, 8, "Asia/Seoul", ["m"]) == (
        "Runs m for the month that has just closed, at 08:00 on the 1st Asia/Seoul."
    )
    names = [f"m{i}" for i in range(7)]
    assert describe(Grain.DAILY, 7, "Asia/Seoul", names[:2]) == (
        "Runs m0, m1 for the day that has just closed, at 07:00 Asia/Seoul."
    )
    assert describe(Grain.HOURLY, None, "UTC", names) == (
        "Runs m0, m1, m2, m3, m4 and 2 more for the hour that has just closed, every hour UTC."
    )


SOURCE_FED_PROJECT = {
    "models/sources.yml": """
        sources:
          - name: raw
            tables: [{name: visits}]
    """,
    "models/regions.sql": "select 'KR' as region",
    # Weekly, fed only by a source; monthly, fed only by an unpartitioned model.
    "models/weekly_visits.sql": """
        select count(*) as visits, cast(date_trunc('week', visited_at) as date) as week_start
        from {{ source('raw', 'visits') }}
        where {{ flower_in_window('visited_at') }}
        group by 2
    """,
    "models/monthly_regions.sql": """
        select region, cast('2024-01-01' as date) as month_start from {{ ref('regions') }}
    """,
    "models/models.yml": """
        models:
          - name: weekly_visits
            config:
              materialized: incremental
              meta: {flower: {partition: weekly, partition_column: week_start}}
          - name: monthly_regions
            config:
              materialized: incremental
              meta: {flower: {partition: monthly, partition_column: month_start, schedule_hour: 5}}
    """,
    "macros/flower_in_window.sql": """
        {% macro flower_in_window(column) %}(1 = 1){% endmacro %}
    """,
}


def test_weekly_and_monthly_models_fed_only_by_sources_run_when_their_window_closes(
    tmp_path, monkeypatch
):
    """Nothing else would run them (the repair rule follows partitioned parents): a schedule per
    grain at the batch hour asks for the week (on Monday) or month (on the 1st) just closed."""
    project = write_project(tmp_path / "shop", SOURCE_FED_PROJECT, tmp_path / "shop.duckdb")
    monkeypatch.setenv("FLOWER_DBT_PROJECT_DIR", str(project))
    monkeypatch.delenv("FLOWER_DBT_TARGET", raising=False)
    settings = load_settings()
    FlowerDbtProject.from_settings(settings).parse()
    defs = dbt_definitions(settings)

    weekly = defs.get_schedule_def("weekly_models_0700_kst")
    assert (weekly.cron_schedule, weekly.execution_timezone) == ("0 7 * * 1", "Asia/Seoul")
    assert weekly.description == (
        "Runs weekly_visits for the week that has just closed, at 07:00 on Mondays Asia/Seoul."
    )
    # Monday 2024-01-15 07:00 KST (Sunday 22:00 UTC): the week of Monday 2024-01-08 has closed.
    assert _tick(defs, weekly.name, datetime(2024, 1, 15, 7, tzinfo=SEOUL)) == [
        ("2024-01-08", {AssetKey("weekly_visits")})
    ]
    assert _tick(defs, weekly.name, datetime(2025, 1, 6, 7, tzinfo=SEOUL)) == [
        ("2024-12-30", {AssetKey("weekly_visits")})
    ]
    # The model's own hour: 05:00 on the 1st, for the month before (February of a leap year).
    monthly = defs.get_schedule_def("monthly_models_0500_kst")
    assert monthly.cron_schedule == "0 5 1 * *"
    assert _tick(defs, monthly.name, datetime(2024, 3, 1, 5, tzinfo=SEOUL)) == [
        ("2024-02-01", {AssetKey("monthly_regions")})
    ]

    grains = read_grains(FlowerDbtProject.from_settings(settings).load_manifest())
    by_name = {node.name: node for node in grains.values()}
    assert {name: trigger_of(by_name[name], 7, "Asia/Seoul") for name in by_name} == {
        "regions": "by hand (unpartitioned)",
        "weekly_visits": "schedule weekly_models_0700_kst",
        "monthly_regions": "schedule monthly_models_0500_kst",
    }
