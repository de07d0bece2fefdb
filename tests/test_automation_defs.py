"""What the loaded definitions carry for automation (no dbt run)."""

from __future__ import annotations

import pytest
from dagster import AssetCheckKey, AssetKey, DefaultSensorStatus

from flower_dagster.automation import SENSOR_NAME
from flower_dagster.defs import build_definitions
from flower_dagster.inputs import INPUTS_CHECK_NAME

ROLLUPS = {
    "agg_daily_revenue",
    "agg_weekly_revenue",
    "agg_weekly_active_users",
    "agg_monthly_revenue",
    "agg_monthly_active_users",
    "agg_monthly_peak_week",
    # A daily built from the 24 hours of an hourly model.
    "agg_daily_traffic",
}


@pytest.fixture(scope="module")
def defs(warehouse):
    return build_definitions()


def test_the_repair_rule_sensor_starts_running(defs):
    sensor = next(s for s in defs.sensors or [] if s.name == SENSOR_NAME)
    assert sensor.default_status == DefaultSensorStatus.RUNNING


def test_only_rollups_carry_the_rule_and_the_source_check(defs):
    graph = defs.resolve_asset_graph()
    with_condition = {
        key.to_user_string()
        for key in graph.materializable_asset_keys
        if graph.get(key).automation_condition is not None
    }
    assert with_condition == ROLLUPS
    checks = {key for key in graph.asset_check_keys if key.name == INPUTS_CHECK_NAME}
    assert checks == {AssetCheckKey(AssetKey(name), INPUTS_CHECK_NAME) for name in ROLLUPS}
    assert all(graph.get_check_spec(key).blocking for key in checks)


def test_the_rule_explains_itself_with_labels(defs):
    graph = defs.resolve_asset_graph()
    condition = graph.get(AssetKey("agg_weekly_revenue")).automation_condition
    labels = set()

    def collect(node):
        if node.get_label():
            labels.add(node.get_label())
        for child in node.children:
            collect(child)

    collect(condition)
    assert {
        "repair rule: re-run when inputs changed and are complete",
        "an upstream partition was updated since this partition was built",
        "an upstream partition is missing, failed or in progress",
        "this partition is in progress",
        "not failed, or failed and an upstream partition was just updated",
        "no earlier request of it is still unanswered",
    } <= labels


def test_an_environment_without_automation_starts_the_sensor_stopped():

    from flower_dagster.defs.automation import automation_definitions
    from flower_dagster.settings import load_settings

    settings = load_settings({})
    environment = settings.environment.model_copy(update={"automation": False})
    off = settings.model_copy(update={"environment": environment})
    (sensor,) = automation_definitions(off).sensors or []
    assert sensor.default_status == DefaultSensorStatus.STOPPED
