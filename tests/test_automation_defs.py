"""What the loaded definitions carry for automation (no dbt run)."""

from __future__ import annotations

import pytest
from dagster import AssetCheckKey, AssetKey, DefaultSensorStatus

from flower_dagster.automation import SENSOR_NAME, pending_levels
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


def _labels(condition) -> list[str]:
    found = [condition.get_label()] if condition.get_label() else []
    for child in condition.children:
        found.extend(_labels(child))
    return found


def test_the_demo_rollups_look_one_level_up_for_a_pending_rerun(defs):
    """The demo has no diamond deeper than a parent's parent: every roll-up keeps the small
    rule, one check of a parent's own inputs, and no deeper level."""
    graph = defs.resolve_asset_graph()
    for name in ROLLUPS:
        labels = _labels(graph.get(AssetKey(name)).automation_condition)
        assert labels.count("an upstream partition has a re-run pending (its own inputs changed)")
        assert "a partition it reads has a re-run pending" not in labels


def test_a_deeper_diamond_makes_the_rule_look_as_far_up_as_it_needs():
    parents = {
        "stg": (),
        "fct": ("stg",),
        "weekly": ("fct",),
        # Reads a staging day and the weekly built from the fact built from that day.
        "report": ("stg", "weekly"),
        # Reads the fact and the weekly built from it: one level is enough.
        "mix": ("fct", "weekly"),
        # A diamond above its only parent: the parent's own rule handles it.
        "quarter": ("report",),
    }
    levels = pending_levels(parents)
    assert levels["report"] == [{"fct"}, {"stg"}]
    assert levels["mix"] == [{"stg", "fct"}]
    assert levels["quarter"] == [{"stg", "weekly"}]
    assert levels["fct"] == [set()]
    assert "stg" not in levels


def test_an_environment_without_automation_starts_the_sensor_stopped():

    from flower_dagster.defs.automation import automation_definitions
    from flower_dagster.settings import load_settings

    settings = load_settings({})
    environment = settings.environment.model_copy(update={"automation": False})
    off = settings.model_copy(update={"environment": environment})
    (sensor,) = automation_definitions(off).sensors or []
    assert sensor.default_status == DefaultSensorStatus.STOPPED
