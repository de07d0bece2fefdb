"""The walk over partitions: pure, on the asset graph only (and the partitions' clock)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from dagster import AssetKey, TimeWindowPartitionsDefinition, partition_loading_context

from flower_dagster.asset_graph import AssetGraph
from flower_dagster.partitions import GRAIN_TAG, UNPARTITIONED

# How far ahead to look for downstream partitions whose window has not ended yet: further than
# the coarsest grain (a month), and a week overlapping two months.
_LOOKAHEAD = timedelta(days=400)


def impacted_partitions(
    asset_graph: AssetGraph,
    asset_key: AssetKey,
    partition_keys: Sequence[str],
    current_time: datetime | None = None,
) -> list[tuple[AssetKey, list[str]]]:
    """Every downstream asset partition the repair rule re-runs after a repair of `partition_keys`.

    Follows each edge to a partitioned asset with an automation condition through the edge's
    partition mapping, transitively; the repaired partitions themselves are not included. In
    topological order (finer grains first within a level), partitions sorted. Partitions whose
    window has not ended at `current_time` (default: now) do not exist yet and are left out.
    """
    with partition_loading_context(effective_dt=current_time):
        reached, _ = _walk(asset_graph, asset_key, partition_keys)
    return reached


def not_rerun_descendants(
    asset_graph: AssetGraph, asset_key: AssetKey, partition_keys: Sequence[str]
) -> list[tuple[AssetKey, str]]:
    """Children of the repaired or re-run assets that the repair rule does not re-run, with why."""
    _, skipped = _walk(asset_graph, asset_key, partition_keys, include_empty=True)
    return skipped


def not_yet_partitions(
    asset_graph: AssetGraph,
    asset_key: AssetKey,
    partition_keys: Sequence[str],
    current_time: datetime | None = None,
) -> list[tuple[AssetKey, list[str]]]:
    """Downstream partitions the repair reaches once their window has ended (none exist yet)."""
    with partition_loading_context(effective_dt=current_time) as context:
        now = context.effective_dt
        reached_now, _ = _walk(asset_graph, asset_key, partition_keys)
    with partition_loading_context(effective_dt=now + _LOOKAHEAD):
        reached_later, _ = _walk(asset_graph, asset_key, partition_keys)
    existing = {(key, p) for key, keys in reached_now for p in keys}
    found = [(key, [p for p in keys if (key, p) not in existing]) for key, keys in reached_later]
    return [(key, keys) for key, keys in found if keys]


def _walk(
    asset_graph: AssetGraph,
    root: AssetKey,
    partition_keys: Sequence[str],
    include_empty: bool = False,
) -> tuple[list[tuple[AssetKey, list[str]]], list[tuple[AssetKey, str]]]:
    """The partitions reached from `root`, and the children the rule skips, with why.

    `include_empty` also walks on from assets reached with no partition that exists yet, to
    find every child the rule skips.
    """
    root_def = asset_graph.get(root).partitions_def
    assert root_def is not None, f"{root.to_user_string()} is not partitioned"
    # Each asset's partitions reached so far, as Dagster's partitions subsets.
    subsets = {root: root_def.subset_with_partition_keys(list(dict.fromkeys(partition_keys)))}
    skipped: dict[AssetKey, str] = {}
    order: list[AssetKey] = []
    for level in asset_graph.toposorted_asset_keys_by_level:
        for key in sorted(level, key=lambda k: (_grain_length(asset_graph, k), k.to_user_string())):
            subset = subsets.get(key)
            if subset is None or (subset.is_empty and not include_empty):
                continue
            order.append(key)
            parent_def = asset_graph.get(key).partitions_def
            for child in sorted(asset_graph.get(key).child_keys):
                node = asset_graph.get(child)
                if not node.is_materializable:
                    continue
                if node.partitions_def is None:
                    skipped.setdefault(child, UNPARTITIONED)
                    continue
                if node.automation_condition is None:
                    skipped.setdefault(child, "no automation condition")
                    continue
                mapping = asset_graph.get_partition_mapping(child, key)
                below = mapping.get_downstream_partitions_for_partitions(
                    subset, parent_def, node.partitions_def
                )
                subsets[child] = subsets[child] | below if child in subsets else below
    reached = [
        (key, sorted(subsets[key].get_partition_keys()))
        for key in order
        if key != root and not subsets[key].is_empty
    ]
    return reached, sorted(skipped.items())


def _grain_length(asset_graph: AssetGraph, key: AssetKey) -> float:
    """Seconds in one partition of the asset (finer first when sorting a level); 0 if unknown."""
    partitions_def = asset_graph.get(key).partitions_def
    if isinstance(partitions_def, TimeWindowPartitionsDefinition):
        window = partitions_def.get_first_partition_window()
        if window is not None:
            return (window.end - window.start).total_seconds()
    return 0.0


def grain_of(asset_graph: AssetGraph, key: AssetKey) -> str:
    """The asset's grain as flower tags it; else its partitions' kind (`unpartitioned`, ...)."""
    node = asset_graph.get(key)
    tagged = node.tags.get(GRAIN_TAG)
    if tagged:
        return tagged
    if node.partitions_def is None:
        return UNPARTITIONED
    return type(node.partitions_def).__name__.removesuffix("PartitionsDefinition").lower()
