"""The dbt project's models, seeds and snapshots as Dagster assets, with the dbt resource and
the schedules of the clock-driven models."""

from __future__ import annotations

from dagster import Definitions

from flower_dagster.dbt.assets import asset_keys_of, build_dbt_assets, dbt_resource
from flower_dagster.dbt.models import read_grains
from flower_dagster.dbt.project import FlowerDbtProject
from flower_dagster.schedules import build_schedules
from flower_dagster.settings import Settings


def dbt_definitions(settings: Settings) -> Definitions:
    project = FlowerDbtProject.from_settings(settings)
    manifest = project.load_manifest()
    grains = read_grains(manifest)
    asset_keys = asset_keys_of(manifest, grains)
    return Definitions(
        assets=build_dbt_assets(settings, project, manifest, grains, asset_keys),
        resources={"dbt": dbt_resource(project)},
        schedules=build_schedules(settings, grains, asset_keys.__getitem__),
    )
