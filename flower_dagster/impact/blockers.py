"""What blocks each impacted partition, from the instance's health: pure, the repair as done."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dagster import AssetKey, DagsterInstance

from flower_dagster.asset_graph import AssetGraph
from flower_dagster.impact.model import BLOCKED, CANCELED, Blocker, ImpactedPartition
from flower_dagster.impact.status import PartitionHealth, read_health
from flower_dagster.inputs import Problem


def find_blockers(
    instance: DagsterInstance,
    asset_graph: AssetGraph,
    asset_key: AssetKey,
    partition_keys: Sequence[str],
    impacted: Sequence[tuple[AssetKey, Sequence[str]]],
) -> list[ImpactedPartition]:
    """Each impacted partition with what blocks it now, as the instance has it."""
    health = read_health(instance, asset_graph, impacted)
    return blockers_from_health(asset_graph, asset_key, partition_keys, impacted, health)


def blockers_from_health(
    asset_graph: AssetGraph,
    asset_key: AssetKey,
    partition_keys: Sequence[str],
    impacted: Sequence[tuple[AssetKey, Sequence[str]]],
    health: Mapping[AssetKey, PartitionHealth],
) -> list[ImpactedPartition]:
    """Each impacted partition with what blocks it, the repair itself counting as done.

    The repaired partitions, and impacted partitions that nothing blocks, count as updated: they
    are not reported as missing or failed. Impacted partitions must come in topological order.
    """
    root = asset_key.to_user_string()
    repaired = {(root, key) for key in partition_keys}
    updated = set(repaired)
    reached = set(repaired) | {(k.to_user_string(), p) for k, keys in impacted for p in keys}
    found: list[ImpactedPartition] = []
    for key, keys in impacted:
        name = key.to_user_string()
        state = health[key]
        for partition in keys:
            blockers = {
                Blocker(item.asset, item.partition, str(item.problem))
                for item in state.input_problems.get(partition, [])
                if (item.asset, item.partition) not in updated
            }
            if partition in state.in_progress:
                blockers.add(Blocker(name, partition, str(Problem.IN_PROGRESS)))
            canceled = Blocker(name, partition, CANCELED)
            if partition in state.canceled:
                blockers.add(canceled)
            # The upstream partitions whose update triggers this one: if none of them is
            # updated (all blocked), it waits for them even when their old data is healthy.
            parents = asset_graph.get_parents_partitions(key, partition).parent_partitions
            triggers = {
                (p.asset_key.to_user_string(), p.partition_key)
                for p in parents
                if (p.asset_key.to_user_string(), p.partition_key) in reached
            }
            if not triggers & updated:
                listed = {(b.asset, b.partition) for b in blockers}
                blockers |= {Blocker(a, p, BLOCKED) for a, p in triggers if (a, p) not in listed}
            # A canceled request is made again by the rule: it does not hold its descendants.
            if not blockers - {canceled}:
                updated.add((name, partition))
            found.append(ImpactedPartition(key, partition, tuple(sorted(blockers))))
    return found
