"""Late data: yesterday's daily partition missing N hours after the batch hour fails a check."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from dagster import AssetCheckKey, AssetKey, AssetSelection, DefaultSensorStatus, materialize
from dagster._core.test_utils import freeze_time

from flower_dagster.dbt.models import NodeGrain
from flower_dagster.defs.dbt import dbt_definitions
from flower_dagster.errors import SettingsError
from flower_dagster.late_data import (
    CHECKS_PER_DEFINITION,
    LATE_CHECK_NAME,
    LATE_DATA_SENSOR_NAME,
    deadlines,
    late_data_checks,
)
from flower_dagster.partitions import Grain
from flower_dagster.settings import Environment, load_settings
from tests.conftest import Warehouse, make_instance

SEOUL = ZoneInfo("Asia/Seoul")


def _node(name: str, grain: Grain | None, parents=(), hour: int | None = None) -> NodeGrain:
    return NodeGrain(
        unique_id=f"model.p.{name}",
        name=name,
        resource_type="model",
        grain=grain,
        partition_column="d" if grain else None,
        partitioned_parents=tuple(f"model.p.{p}" for p in parents),
        schedule_hour=hour,
    )


def _grains(*nodes: NodeGrain) -> dict[str, NodeGrain]:
    return {node.unique_id: node for node in nodes}


def test_each_daily_model_is_due_its_batch_hour_plus_the_allowance():
    grains = _grains(
        _node("orders", Grain.DAILY),
        _node("payments", Grain.DAILY, hour=5),
        _node("late_feed", Grain.DAILY, hour=9),
        # A roll-up is due when the latest of the scheduled dailies it reads is.
        _node("revenue", Grain.DAILY, parents=("orders", "late_feed")),
        _node("early_revenue", Grain.DAILY, parents=("payments",)),
        # Built from hours only: due at the batch hour.
        _node("clicks", Grain.HOURLY),
        _node("daily_clicks", Grain.DAILY, parents=("clicks",)),
        # Weekly and monthly partitions are not due at an hour of every day.
        _node("weekly", Grain.WEEKLY, parents=("orders",)),
        _node("dim", None),
    )
    assert deadlines(grains, 7, 3) == {
        8: ["model.p.early_revenue", "model.p.payments"],
        10: ["model.p.daily_clicks", "model.p.orders"],
        12: ["model.p.late_feed", "model.p.revenue"],
    }


def test_a_deadline_past_midnight_is_refused_with_the_models_it_concerns():
    grains = _grains(_node("orders", Grain.DAILY), _node("night", Grain.DAILY, hour=22))
    with pytest.raises(SettingsError) as error:
        deadlines(grains, 7, 3)
    assert str(error.value) == (
        "schedule.late_after_hours is 3: the late-data deadline of night (batch hour 22:00) "
        "would pass midnight; allowed: a batch hour plus late_after_hours of at most 23"
    )


def test_the_settings_refuse_a_batch_hour_whose_deadline_passes_midnight():
    with pytest.raises(SettingsError) as error:
        load_settings({"FLOWER_SCHEDULE_HOUR": "22", "FLOWER_LATE_AFTER_HOURS": "3"})
    assert str(error.value) == (
        "FLOWER_SCHEDULE_HOUR is 22 and FLOWER_LATE_AFTER_HOURS is 3: the late-data deadline "
        "would pass midnight; allowed: hour + late_after_hours of at most 23"
    )


def test_many_daily_models_get_their_checks_in_definitions_of_bounded_size():
    # 250 models due at 10:00 and 30 due at 12:00 (batch hour 9), with the default allowance.
    nodes = [_node(f"m{i:03d}", Grain.DAILY) for i in range(250)]
    nodes += [_node(f"n{i:02d}", Grain.DAILY, hour=9) for i in range(30)]
    grains = _grains(*nodes)
    keys = {uid: AssetKey(node.name) for uid, node in grains.items()}
    settings = load_settings({"FLOWER_SCHEDULE_HOUR": "7", "FLOWER_LATE_AFTER_HOURS": "3"})
    definitions = late_data_checks(settings, grains, keys)
    sizes = sorted(len(d.check_keys) for d in definitions)
    assert sizes == [30, 50, CHECKS_PER_DEFINITION, CHECKS_PER_DEFINITION]
    checked = [key for d in definitions for key in d.check_keys]
    assert len(checked) == len(set(checked)) == 280
    assert {key.name for key in checked} == {LATE_CHECK_NAME}
    assert {key.asset_key for key in checked} == set(keys.values())
    # Each definition keeps to one deadline: only m-models (10:00) or only n-models (12:00).
    for definition in definitions:
        assert len({key.asset_key.path[0][0] for key in definition.check_keys}) == 1
    assert len({d.node_def.name for d in definitions}) == len(definitions)


def _settings(warehouse: Warehouse, **environment):
    settings = load_settings(
        {
            "FLOWER_DBT_PROJECT_DIR": str(warehouse.project_dir),
            "FLOWER_LATE_AFTER_HOURS": "3",
        }
    )
    chosen = settings.environment.model_copy(update=environment)
    return settings.model_copy(update={"environment": chosen})


@pytest.mark.slow
def test_every_daily_model_has_a_late_check_and_its_sensor_runs_only_with_schedules(warehouse):
    defs = dbt_definitions(_settings(warehouse, schedules=False))
    graph = defs.resolve_asset_graph()
    late = {
        key.asset_key.to_user_string()
        for key in graph.asset_check_keys
        if key.name == LATE_CHECK_NAME
    }
    daily = {
        key.to_user_string()
        for key in graph.materializable_asset_keys
        if type(graph.get(key).partitions_def).__name__ == "DailyPartitionsDefinition"
    }
    assert late == daily and {"fct_orders", "agg_daily_revenue", "agg_daily_traffic"} <= late
    sensor = defs.get_sensor_def(LATE_DATA_SENSOR_NAME)
    assert sensor.default_status == DefaultSensorStatus.STOPPED
    prod = dbt_definitions(
        warehouse.settings.model_copy(
            update={
                "environment": Environment.named(
                    "prod", schedules=True, automation=True, alerts=True
                )
            }
        )
    )
    assert prod.get_sensor_def(LATE_DATA_SENSOR_NAME).default_status == (
        DefaultSensorStatus.RUNNING
    )


def _late_checks(instance, defs, at: datetime) -> dict[str, tuple[bool, str]]:
    """Run the late checks of fct_orders and fct_sessions as the sensor's run does, at `at`."""
    keys = [AssetCheckKey(AssetKey(n), LATE_CHECK_NAME) for n in ("fct_orders", "fct_sessions")]
    with freeze_time(at):
        result = materialize(
            [*defs.assets, *defs.asset_checks],
            selection=AssetSelection.checks(*keys),
            instance=instance,
            resources=defs.resources,
        )
    return {
        e.asset_key.to_user_string(): (e.passed, e.description)
        for e in result.get_asset_check_evaluations()
    }


@pytest.mark.slow
def test_the_late_check_fails_past_the_limit_and_passes_once_the_partition_is_in(
    warehouse: Warehouse, tmp_path
):
    # An instance of its own: which partitions exist is this test's business alone.
    instance = make_instance(tmp_path / "dagster_home")
    defs = dbt_definitions(_settings(warehouse))

    def build(model: str, day: str) -> None:
        result = materialize(
            list(defs.assets),
            selection=AssetSelection.assets(AssetKey(model)),
            partition_key=day,
            instance=instance,
            resources=defs.resources,
        )
        assert result.success

    build("fct_orders", "2024-02-20")
    # Batch at 07:00 KST plus 3 hours: by 10:00 on the 21st, the 20th must be in.
    after = datetime(2024, 2, 21, 10, 30, tzinfo=SEOUL)
    checks = _late_checks(instance, defs, after)
    assert checks["fct_orders"][0] is True
    assert checks["fct_sessions"] == (
        False,
        "The asset has never been observed/materialized. "
        "We currently expect partition 2024-02-20 to have arrived.",
    )
    # Before the deadline the check still asks for the day before: not yet late.
    before = _late_checks(instance, defs, datetime(2024, 2, 21, 9, 30, tzinfo=SEOUL))
    assert "partition 2024-02-19" in before["fct_orders"][1]

    build("fct_sessions", "2024-02-20")
    assert _late_checks(instance, defs, after)["fct_sessions"] == (
        True,
        "Asset is currently fresh, since partition 2024-02-20 has been observed/materialized.",
    )
    instance.dispose()
