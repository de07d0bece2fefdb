"""The repair rule's sensor: evaluates every asset's automation condition, on by default."""

from __future__ import annotations

from dagster import AssetSelection, Definitions

from flower_dagster.automation import repair_sensor


def automation_definitions() -> Definitions:
    return Definitions(sensors=[repair_sensor(AssetSelection.all())])
