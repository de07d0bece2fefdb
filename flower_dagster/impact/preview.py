"""The preview end to end: the model checked, the graph walked, the blockers read."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from dagster import AssetKey, DagsterInstance, partition_loading_context

from flower_dagster.asset_graph import AssetGraph
from flower_dagster.impact.blockers import find_blockers
from flower_dagster.impact.graph import (
    grain_of,
    impacted_partitions,
    not_rerun_descendants,
    not_yet_partitions,
)
from flower_dagster.impact.model import Impact, ImpactedPartition
from flower_dagster.impact.render import render_json, render_text
from flower_dagster.impact.selection import check_partitions, resolve_model
from flower_dagster.impact.status import instance_from_environment


def preview(
    asset_graph: AssetGraph,
    model: str,
    partition_keys: Sequence[str],
    instance: DagsterInstance | None,
    blockers_unknown: str | None = None,
    current_time: datetime | None = None,
) -> Impact:
    """Resolve the model and partitions, walk the graph, and read blockers from `instance`."""
    with partition_loading_context(effective_dt=current_time) as context:
        asset_key = resolve_model(asset_graph, model)
        keys = check_partitions(asset_graph, asset_key, partition_keys)
        reached = impacted_partitions(asset_graph, asset_key, keys)
        not_yet = not_yet_partitions(asset_graph, asset_key, keys, context.effective_dt)
        skipped = not_rerun_descendants(asset_graph, asset_key, keys)
        if instance is not None:
            impacted = find_blockers(instance, asset_graph, asset_key, keys, reached)
        else:
            impacted = [ImpactedPartition(k, p) for k, ps in reached for p in ps]
            blockers_unknown = blockers_unknown or "no Dagster instance was given"
    mentioned = {asset_key, *(i.asset for i in impacted), *(k for k, _ in not_yet)}
    mentioned |= {
        AssetKey.from_user_string(b.asset) for i in impacted for b in i.blockers or () if b.asset
    }
    return Impact(
        model=asset_key,
        partitions=tuple(keys),
        impacted=tuple(impacted),
        not_rerun=tuple(skipped),
        not_yet=tuple((k, tuple(ps)) for k, ps in not_yet),
        blockers_unknown=None if instance is not None else blockers_unknown,
        grains={k: grain_of(asset_graph, k) for k in mentioned | {k for k, _ in skipped}},
        partitions_defs={k: asset_graph.get(k).partitions_def for k in mentioned},
    )


def run_impact(model: str, partition_keys: Sequence[str], output_format: str = "text") -> str:
    """`flower impact`: the definitions from the settings, the instance from DAGSTER_HOME."""
    from flower_dagster.defs import build_definitions

    asset_graph = build_definitions().resolve_asset_graph()
    with instance_from_environment() as (instance, why_unknown):
        impact = preview(asset_graph, model, partition_keys, instance, why_unknown)
    return render_json(impact) if output_format == "json" else render_text(impact)
