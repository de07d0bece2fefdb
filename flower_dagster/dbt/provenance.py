"""Inputs that changed while dbt ran: the step runs dbt again before it is done.

The repair rule re-runs a roll-up partition when an input partition has a materialization newer
than the roll-up's own. A repair that lands while the roll-up's dbt runs (possible when
`warehouse.slots` lets two dbt invocations write at once) is recorded before the roll-up's
materialization, so the rule would count it as read although dbt read the old rows.

So the step takes, when dbt starts, the newest materialization storage id among the input
partitions each selected model reads, and compares again after its materializations are
recorded. A change in between may not have been read: dbt runs again. A change after the
comparison is recorded after the roll-up's materialization, and the rule re-runs the roll-up
for it. Parents built in the same step are not inputs here: their rows are this run's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from dagster import AssetExecutionContext, AssetKey, AssetRecordsFilter, DagsterInstance

from flower_dagster.asset_graph import AssetGraph

# How many times a step runs dbt again for inputs that keep changing before it fails.
MAX_RERUNS = 3

Snapshot = dict[AssetKey, int]


def input_partitions(
    graph: AssetGraph,
    asset_keys: Sequence[AssetKey],
    partition_keys: Sequence[str],
    is_input: Callable[[AssetKey], bool],
) -> dict[AssetKey, set[str]]:
    """Every partition of a parent (outside the step) that the selected partitions read."""
    wanted: dict[AssetKey, set[str]] = {}
    for key in asset_keys:
        for partition in partition_keys:
            parents = graph.get_parents_partitions(key, partition).parent_partitions
            for parent in parents:
                if parent.partition_key is not None and is_input(parent.asset_key):
                    wanted.setdefault(parent.asset_key, set()).add(parent.partition_key)
    return wanted


def snapshot(instance: DagsterInstance, inputs: Mapping[AssetKey, set[str]]) -> Snapshot:
    """Per parent, the storage id of the newest materialization of the partitions read."""
    found = {}
    for parent, partitions in inputs.items():
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=parent, asset_partitions=sorted(partitions)), limit=1
        ).records
        found[parent] = records[0].storage_id if records else 0
    return found


def changed_since(instance: DagsterInstance, inputs: Mapping[AssetKey, set[str]], before: Snapshot):
    """The parents with a materialization of a partition read newer than `before`."""
    now = snapshot(instance, inputs)
    return sorted(
        (key for key, storage_id in now.items() if storage_id > before.get(key, 0)),
        key=AssetKey.to_user_string,
    )


def step_inputs(
    context: AssetExecutionContext, managed: frozenset[AssetKey]
) -> dict[AssetKey, set[str]]:
    """The input partitions of a partitioned dbt step, outside the step's own models."""
    if not (context.has_partition_key or context.has_partition_key_range):
        return {}
    selected = set(context.selected_asset_keys)
    return input_partitions(
        context.job_def.asset_layer.asset_graph,
        sorted(selected, key=AssetKey.to_user_string),
        list(context.partition_keys),
        lambda key: key in managed and key not in selected,
    )
