"""The dbt project as Dagster assets: one multi-asset per grain, plus two for the unpartitioned
rest (what partitioned models read, and what is built from them).

Each grain's models are chosen by a dbt selector on their own config
(`config.meta.flower.partition:daily`), so adding a model never means editing Python. Dagster
wires dependencies across the groups from the manifest, and its default time-window mapping
relates the grains (a weekly partition reads its seven daily partitions).

The specs are dagster-dbt's, from one `@dbt_assets` over the project; each group is a
`multi_asset` of them plus one thing `@dbt_assets` cannot take: every roll-up also gets the
blocking asset check `inputs_complete` (the source check), evaluated before dbt runs.
"""

# No `from __future__ import annotations` here: Dagster inspects the `context` annotation.
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any

from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    AssetSpec,
    AutomationCondition,
    BackfillPolicy,
    PartitionsDefinition,
    multi_asset,
)
from dagster_dbt import DbtCliResource, dbt_assets

from flower_dagster._compat import (
    DAGSTER_DBT_EXCLUDE_METADATA_KEY,
    DAGSTER_DBT_SELECT_METADATA_KEY,
    DAGSTER_DBT_UNIQUE_ID_METADATA_KEY,
)
from flower_dagster.automation import pending_levels, repair_condition
from flower_dagster.dbt.guard import guarded_dbt_executable
from flower_dagster.dbt.models import NodeGrain, grain_selector
from flower_dagster.dbt.project import FlowerDbtProject
from flower_dagster.dbt.run import run_dbt_build
from flower_dagster.dbt.translator import FlowerTranslator
from flower_dagster.inputs import INPUTS_CHECK_NAME
from flower_dagster.partitions import GRAINS, UNPARTITIONED, Grain, partitions_for
from flower_dagster.settings import Settings


def build_dbt_assets(
    settings: Settings,
    project: FlowerDbtProject,
    manifest: Mapping[str, Any],
    grains: Mapping[str, NodeGrain],
    asset_keys: Mapping[str, AssetKey],
) -> list[AssetsDefinition]:
    """One AssetsDefinition per grain present in the project, and one for the unpartitioned.

    `asset_keys` maps each node of `grains` to its asset key (see `asset_keys_of`)."""
    translator = FlowerTranslator(grains, rollup_conditions(grains, asset_keys))
    managed = frozenset(asset_keys.values())
    present = [g for g in GRAINS if any(n.grain is g for n in grains.values())]
    specs, check_specs = _specs_by_grain(translator, manifest, grains, project)
    build = partial(
        _dbt_multi_asset,
        settings=settings,
        grains=grains,
        managed=managed,
    )
    definitions = [
        build(
            name=f"dbt_{grain.value}_models",
            select=grain_selector(grain),
            exclude="",
            partitions_def=partitions_for(
                grain, settings.partition_start, settings.timezone, settings.partition_end
            ),
            specs=specs[grain],
            dbt_check_specs=check_specs[grain],
        )
        for grain in present
    ]
    # The unpartitioned models in two multi-assets: those partitioned models read (staging
    # views, dimensions) and the rest (tables built from roll-ups). In one multi-asset, it would
    # sit both upstream and downstream of the partitioned ones, and Dagster would have to break
    # that cycle every time it builds a job over the graph (at every load of the code location).
    ancestors = " ".join(f"+{grain_selector(g)}" for g in present)
    partitioned = " ".join(grain_selector(g) for g in present)
    upstream = _ancestors_of_partitioned(manifest, grains)
    groups = (
        [
            # (name, dbt select, dbt exclude, is the node an ancestor of a partitioned one)
            (f"dbt_{UNPARTITIONED}_models", ancestors, partitioned, True),
            (f"dbt_{UNPARTITIONED}_downstream_models", "fqn:*", ancestors, False),
        ]
        if present
        else [(f"dbt_{UNPARTITIONED}_models", "fqn:*", "", False)]
    )
    for name, select, exclude, reads_into_partitioned in groups:
        part = [s for s in specs[None] if (_unique_id(s) in upstream) is reads_into_partitioned]
        if not part:
            continue
        keys = {spec.key for spec in part}
        definitions.append(
            build(
                name=name,
                select=select,
                exclude=exclude,
                partitions_def=None,
                specs=part,
                dbt_check_specs=[c for c in check_specs[None] if c.asset_key in keys],
            )
        )
    return definitions


def _ancestors_of_partitioned(
    manifest: Mapping[str, Any], grains: Mapping[str, NodeGrain]
) -> set[str]:
    """Every node that a partitioned model reads, directly or not: what dbt selects with
    `+<grain selector>` for every grain (the partitioned models themselves included)."""
    parents = manifest["parent_map"]
    seen: set[str] = set()
    todo = [uid for uid, node in grains.items() if node.partitioned]
    while todo:
        uid = todo.pop()
        if uid not in seen:
            seen.add(uid)
            todo.extend(parents.get(uid, ()))
    return seen


def rollup_conditions(
    grains: Mapping[str, NodeGrain], asset_keys: Mapping[str, AssetKey]
) -> dict[str, AutomationCondition]:
    """The repair rule of every roll-up, over its own partitioned parents (see
    `repair_condition`: the parents whose updates count, as keys Dagster looks up directly),
    looking for pending re-runs as many levels up as its diamonds need (`pending_levels`)."""

    def keys(uids: Iterable[str]) -> AssetSelection:
        return AssetSelection.assets(*(asset_keys[uid] for uid in sorted(set(uids))))

    levels = pending_levels({uid: node.partitioned_parents for uid, node in grains.items()})
    return {
        uid: repair_condition(
            keys(node.partitioned_parents),
            keys(levels[uid][0]),
            [keys(level) for level in levels[uid][1:]],
        )
        for uid, node in grains.items()
        if node.is_rollup
    }


def _specs_by_grain(
    translator: FlowerTranslator,
    manifest: Mapping[str, Any],
    grains: Mapping[str, NodeGrain],
    project: FlowerDbtProject,
) -> tuple[dict[Grain | None, list[AssetSpec]], dict[Grain | None, list[AssetCheckSpec]]]:
    """dagster-dbt's asset and check specs of every node, grouped by grain (None: unpartitioned).

    One `@dbt_assets` over the whole project, its specs split here by each node's grain, gives
    the specs that one dbt selection per grain (`grain_selector`) gives, for a fraction of the
    load time: each selection walks dbt's graph and translates every selected node and its
    parents again. A check belongs to the group of the asset it checks.
    """

    @dbt_assets(
        manifest=manifest,
        select="fqn:*",
        dagster_dbt_translator=translator,
        project=project.dagster_project,
    )
    def _whole_project(): ...

    all_specs, all_checks = _whole_project.specs, _whole_project.check_specs
    specs: dict[Grain | None, list[AssetSpec]] = defaultdict(list)
    group_of: dict[AssetKey, Grain | None] = {}
    for spec in all_specs:
        node = grains.get(_unique_id(spec))
        group = node.grain if node is not None else None
        specs[group].append(spec)
        group_of[spec.key] = group
    checks: dict[Grain | None, list[AssetCheckSpec]] = defaultdict(list)
    for check in all_checks:
        checks[group_of.get(check.asset_key)].append(check)
    return specs, checks


def _dbt_multi_asset(
    *,
    name: str,
    select: str,
    exclude: str,
    partitions_def: PartitionsDefinition | None,
    specs: Sequence[AssetSpec],
    dbt_check_specs: Sequence[AssetCheckSpec],
    settings: Settings,
    grains: Mapping[str, NodeGrain],
    managed: frozenset[AssetKey],
) -> AssetsDefinition:
    inputs_checks = [
        AssetCheckSpec(
            INPUTS_CHECK_NAME,
            asset=spec.key,
            blocking=True,
            description=(
                "Source check: every upstream partition this partition reads is materialized, "
                "its latest run did not fail, and none is in progress."
            ),
            # dagster-dbt maps every check to a dbt node when it builds a subset selection;
            # this one belongs to the model itself.
            metadata={DAGSTER_DBT_UNIQUE_ID_METADATA_KEY: _unique_id(spec)},
        )
        for spec in specs
        if (node := grains.get(_unique_id(spec))) is not None and node.is_rollup
    ]

    @multi_asset(
        name=name,
        specs=specs,
        check_specs=[*dbt_check_specs, *inputs_checks],
        can_subset=True,
        partitions_def=partitions_def,
        op_tags={
            DAGSTER_DBT_SELECT_METADATA_KEY: select,
            **({DAGSTER_DBT_EXCLUDE_METADATA_KEY: exclude} if exclude else {}),
        },
        # A backfill of N partitions is one run and one dbt invocation over the whole range.
        backfill_policy=BackfillPolicy.single_run() if partitions_def else None,
        pool=settings.warehouse_pool,
        allow_arbitrary_check_specs=True,
    )
    def _dbt_assets(context: AssetExecutionContext, dbt: DbtCliResource):
        yield from run_dbt_build(context, dbt, managed)

    return _dbt_assets


def asset_keys_of(
    manifest: Mapping[str, Any], grains: Mapping[str, NodeGrain]
) -> dict[str, AssetKey]:
    """The asset key of every dbt node flower-dagster runs, by unique id."""
    translator = FlowerTranslator()
    return {uid: translator.get_asset_key(manifest["nodes"][uid]) for uid in grains}


def _unique_id(spec: AssetSpec) -> str:
    return spec.metadata[DAGSTER_DBT_UNIQUE_ID_METADATA_KEY]


def dbt_resource(project: FlowerDbtProject) -> DbtCliResource:
    return DbtCliResource(
        project_dir=project.dagster_project,
        profiles_dir=str(project.profiles_dir) if project.profiles_dir else None,
        target=project.target,
        # dbt through `flower-dbt` (beside this Python, so it works without the venv on PATH):
        # a dbt that dies with its run worker, never writing for a run Dagster ended.
        dbt_executable=guarded_dbt_executable(),
    )
