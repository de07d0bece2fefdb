"""The repair rule's sensor: evaluates every asset's automation condition, on by default."""

from __future__ import annotations

from dagster import AssetSelection, Definitions

from flower_dagster.automation import repair_sensor
from flower_dagster.settings import Settings


def automation_definitions(settings: Settings) -> Definitions:
    return Definitions(
        sensors=[
            repair_sensor(
                AssetSelection.all(),
                settings.automation_interval_seconds,
                running=settings.environment.automation,
            )
        ]
    )
