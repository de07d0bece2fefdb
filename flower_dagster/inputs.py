"""The source check: are all the partitions a roll-up partition reads present and healthy?

A weekly partition reads seven daily partitions; before it runs (and when the automation decides
whether to request it), each of those must be materialized, its latest run must not have failed,
and none may be in progress. `input_problems` lists what is not, per partition, naming the
upstream asset partitions and why: the words analysts see in the check result and the alerts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from dagster import AssetKey, AssetPartitionStatus, DagsterInstance

from flower_dagster.asset_graph import AssetGraph

INPUTS_CHECK_NAME = "inputs_complete"


class Problem(StrEnum):
    MISSING = "missing"
    FAILED = "failed"
    IN_PROGRESS = "in progress"


@dataclass(frozen=True, order=True)
class InputProblem:
    asset: str
    partition: str | None
    problem: Problem

    def __str__(self) -> str:
        where = f"{self.asset} {self.partition}" if self.partition else self.asset
        return f"{where} ({self.problem})"


def input_problems(
    instance: DagsterInstance,
    asset_graph: AssetGraph,
    asset_key: AssetKey,
    partition_keys: Sequence[str | None],
    built_alongside: Iterable[AssetKey] = (),
    checked: Callable[[AssetKey], bool] | None = None,
) -> dict[str | None, list[InputProblem]]:
    """For each partition of `asset_key`, the upstream partitions that are not healthy.

    Parents in `built_alongside` (built earlier in the same dbt invocation) are not checked.
    Only parents for which `checked` is true are checked (default: the ones the graph can
    materialize; a run's own asset graph marks assets outside the run as external, so a run
    passes the set of assets flower-dagster manages instead). Sources are never checked.
    """
    skip = set(built_alongside)
    if checked is None:

        def checked(key: AssetKey) -> bool:
            return asset_graph.has(key) and asset_graph.get(key).is_materializable

    wanted: dict[AssetKey, set[str]] = defaultdict(set)
    needs: dict[str | None, list[tuple[AssetKey, str | None]]] = {}
    for partition_key in partition_keys:
        parents = asset_graph.get_parents_partitions(asset_key, partition_key)
        pairs = []
        nonexistent = parents.required_but_nonexistent_parents_partitions
        for parent in [*parents.parent_partitions, *nonexistent]:
            if parent.asset_key in skip or not checked(parent.asset_key):
                continue
            pairs.append((parent.asset_key, parent.partition_key))
            if parent.partition_key is not None:
                wanted[parent.asset_key].add(parent.partition_key)
        needs[partition_key] = pairs

    status: dict[tuple[AssetKey, str | None], Problem | None] = {}
    for parent_key, keys in wanted.items():
        partitions_def = asset_graph.get(parent_key).partitions_def
        assert partitions_def is not None
        known = instance.get_status_by_partition(parent_key, sorted(keys), partitions_def) or {}
        for key in keys:
            status[(parent_key, key)] = _problem(known.get(key))
    unpartitioned = {p for pairs in needs.values() for p, k in pairs if k is None}
    for parent_key in unpartitioned:
        materialized = instance.get_latest_materialization_event(parent_key) is not None
        status[(parent_key, None)] = None if materialized else Problem.MISSING

    return {
        partition_key: sorted(
            InputProblem(parent.to_user_string(), key, problem)
            for parent, key in pairs
            if (problem := status.get((parent, key))) is not None
        )
        for partition_key, pairs in needs.items()
    }


def _problem(status: AssetPartitionStatus | None) -> Problem | None:
    if status is None:
        return Problem.MISSING
    if status == AssetPartitionStatus.FAILED:
        return Problem.FAILED
    if status == AssetPartitionStatus.IN_PROGRESS:
        return Problem.IN_PROGRESS
    return None


def describe_problems(problems: Mapping[str | None, list[InputProblem]]) -> str:
    """`2024-01-08: fct_orders 2024-01-10 (failed), fct_orders 2024-01-11 (missing)` per line."""
    lines = []
    for partition_key, items in sorted(problems.items(), key=lambda kv: str(kv[0])):
        if items:
            label = partition_key or "(unpartitioned)"
            lines.append(f"{label}: {', '.join(str(i) for i in items)}")
    return "\n".join(lines)
