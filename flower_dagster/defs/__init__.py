"""Dagster definitions, one module per concern; `build_definitions` gathers them."""

from dagster import Definitions

from flower_dagster.dbt.project import FlowerDbtProject
from flower_dagster.defs.alerts import alert_definitions
from flower_dagster.defs.automation import automation_definitions
from flower_dagster.defs.dbt import dbt_definitions
from flower_dagster.settings import load_settings


def build_definitions() -> Definitions:
    """Everything flower-dagster defines, for the settings in the environment."""
    settings = load_settings()
    # Read (and under `dagster dev`, parsed) once for every part that needs it.
    manifest = FlowerDbtProject.from_settings(settings).load_manifest()
    return Definitions.merge(
        dbt_definitions(settings, manifest),
        automation_definitions(settings),
        alert_definitions(settings, manifest),
    )
