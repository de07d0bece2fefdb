"""The dbt project as Dagster assets: one `@dbt_assets` per grain, plus the unpartitioned rest.

Each grain's models are chosen by a dbt selector on their own config
(`config.meta.flower.partition:daily`), so adding a model never means editing Python. Dagster
wires dependencies across the groups from the manifest, and its default time-window mapping
relates the grains (a weekly partition reads its seven daily partitions).
"""

# No `from __future__ import annotations` here: Dagster inspects the `context` annotation.
from collections.abc import Mapping
from typing import Any

from dagster import AssetExecutionContext, AssetsDefinition, BackfillPolicy
from dagster_dbt import DbtCliResource, dbt_assets

from flower_dagster.dbt.models import NodeGrain, grain_selector
from flower_dagster.dbt.project import FlowerDbtProject, dbt_executable
from flower_dagster.dbt.run import run_dbt_build
from flower_dagster.dbt.translator import UNPARTITIONED, FlowerTranslator
from flower_dagster.partitions import GRAINS, partitions_for
from flower_dagster.settings import Settings


def build_dbt_assets(
    settings: Settings,
    project: FlowerDbtProject,
    manifest: Mapping[str, Any],
    grains: Mapping[str, NodeGrain],
) -> list[AssetsDefinition]:
    """One AssetsDefinition per grain present in the project, and one for the unpartitioned."""
    translator = FlowerTranslator()
    present = [g for g in GRAINS if any(n.grain is g for n in grains.values())]
    definitions: list[AssetsDefinition] = []

    for grain in present:

        @dbt_assets(
            manifest=manifest,
            select=grain_selector(grain),
            name=f"dbt_{grain.value}_models",
            partitions_def=partitions_for(grain, settings.partition_start, settings.timezone),
            # A backfill of N partitions is one run and one dbt invocation over the whole range.
            backfill_policy=BackfillPolicy.single_run(),
            dagster_dbt_translator=translator,
            project=project.dagster_project,
            pool=settings.warehouse_pool,
        )
        def _grain_assets(context: AssetExecutionContext, dbt: DbtCliResource):
            yield from run_dbt_build(context, dbt)

        definitions.append(_grain_assets)

    if any(n.grain is None for n in grains.values()):

        @dbt_assets(
            manifest=manifest,
            exclude=" ".join(grain_selector(g) for g in present) or None,
            name=f"dbt_{UNPARTITIONED}_models",
            dagster_dbt_translator=translator,
            project=project.dagster_project,
            pool=settings.warehouse_pool,
        )
        def _unpartitioned_assets(context: AssetExecutionContext, dbt: DbtCliResource):
            yield from run_dbt_build(context, dbt)

        definitions.append(_unpartitioned_assets)
    return definitions


def dbt_resource(project: FlowerDbtProject) -> DbtCliResource:
    return DbtCliResource(
        project_dir=project.dagster_project,
        profiles_dir=str(project.profiles_dir) if project.profiles_dir else None,
        target=project.target,
        # The dbt beside this Python, so it works without the venv on PATH.
        dbt_executable=dbt_executable(),
    )
