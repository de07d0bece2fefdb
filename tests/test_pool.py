"""The warehouse pool's slots are a per-engine setting, and the instance follows it."""

from __future__ import annotations

import pytest
from dagster import build_sensor_context

from flower_dagster.errors import SettingsError
from flower_dagster.pool import POOL_SENSOR_NAME, ensure_pool_slots, pool_sensor, target_adapter
from flower_dagster.settings import load_settings
from tests.conftest import make_instance


def _settings(tmp_path, text: str):
    path = tmp_path / "flower.yaml"
    path.write_text(text)
    return load_settings({"FLOWER_SETTINGS_FILE": str(path)})


def test_slots_follow_the_adapter_of_the_target(tmp_path):
    default = load_settings({})
    assert target_adapter(default) == "duckdb"
    assert default.slots_for("duckdb") == 1
    spark = _settings(tmp_path, "warehouse: {slots: {duckdb: 1, spark: 4}}\n")
    assert (spark.slots_for("spark"), spark.slots_for("duckdb")) == (4, 1)
    # An engine the settings do not name gets one slot: safe until someone says more.
    assert spark.slots_for("postgres") == 1


def test_a_bad_slot_count_names_the_key_and_what_is_allowed(tmp_path):
    path = tmp_path / "flower.yaml"
    path.write_text("warehouse: {slots: {spark: 0}}\n")
    with pytest.raises(SettingsError) as error:
        load_settings({"FLOWER_SETTINGS_FILE": str(path)})
    assert str(error.value) == (
        "flower.yaml: warehouse.slots.spark is 0; allowed: a mapping of dbt adapter types to "
        "whole numbers of slots from 1 to 64, e.g. {duckdb: 1, spark: 4}"
    )


def _tick(instance, settings) -> str:
    sensor = pool_sensor(settings)
    assert sensor.name == POOL_SENSOR_NAME
    result = sensor.evaluate_tick(build_sensor_context(instance=instance))
    return result.skip_message or ""


def test_the_sensor_sets_the_instance_pool_to_the_setting_and_keeps_it(tmp_path):
    instance = make_instance(tmp_path / "home")
    storage = instance.event_log_storage
    three = _settings(tmp_path, "warehouse: {slots: {duckdb: 3}}\n")
    assert _tick(instance, three) == (
        "set pool 'warehouse' to 3 slot(s) for duckdb (warehouse.slots)"
    )
    assert storage.get_concurrency_info("warehouse").slot_count == 3
    assert _tick(instance, three) == "pool 'warehouse' has 3 slot(s) for duckdb, as set"
    # Someone changes it by hand; the next tick puts the setting back.
    storage.set_concurrency_slots("warehouse", 7)
    assert _tick(instance, three).startswith("set pool 'warehouse' to 3")
    assert storage.get_concurrency_info("warehouse").slot_count == 3
    # Back to one writer.
    one = _settings(tmp_path, "warehouse: {slots: {duckdb: 1}}\n")
    assert _tick(instance, one).startswith("set pool 'warehouse' to 1")
    assert storage.get_concurrency_info("warehouse").slot_count == 1
    assert ensure_pool_slots(instance, "warehouse", 1) is False
    instance.dispose()
