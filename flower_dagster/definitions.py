"""The code location: gathers flower-dagster's definitions; all logic lives in `defs/`."""

from dagster import Definitions

from flower_dagster.defs.automation import automation_definitions
from flower_dagster.defs.dbt import dbt_definitions
from flower_dagster.settings import load_settings


def build_definitions() -> Definitions:
    settings = load_settings()
    return Definitions.merge(dbt_definitions(settings), automation_definitions(settings))


defs = build_definitions()
