"""The dbt project's models, seeds and snapshots as Dagster assets, with the dbt resource, the
schedules of the clock-driven models, the late-data checks of the daily ones and the sensor that
sizes the warehouse pool."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import Definitions, in_process_executor

from flower_dagster.dbt.assets import asset_keys_of, build_dbt_assets, dbt_resource
from flower_dagster.dbt.models import read_grains
from flower_dagster.dbt.project import FlowerDbtProject
from flower_dagster.late_data import late_data_checks, late_data_sensor
from flower_dagster.pool import pool_sensor
from flower_dagster.schedules import build_schedules
from flower_dagster.settings import Settings


def dbt_definitions(settings: Settings, manifest: Mapping[str, Any] | None = None) -> Definitions:
    """`manifest`: the project's, when the caller has read it already."""
    project = FlowerDbtProject.from_settings(settings)
    if manifest is None:
        manifest = project.load_manifest()
    grains = read_grains(manifest)
    asset_keys = asset_keys_of(manifest, grains)
    late_checks = late_data_checks(settings, grains, asset_keys)
    return Definitions(
        assets=build_dbt_assets(settings, project, manifest, grains, asset_keys),
        asset_checks=late_checks,
        resources={"dbt": dbt_resource(project)},
        # Every step is a dbt invocation in its own subprocess already, and steps that write the
        # warehouse take turns in its pool: a step process per step (Dagster's default executor)
        # would only start Python and load this code location once more before dbt starts.
        executor=in_process_executor,
        schedules=build_schedules(settings, grains, asset_keys.__getitem__),
        sensors=[
            pool_sensor(settings),
            *([late_data_sensor(settings, late_checks)] if late_checks else []),
        ],
    )
