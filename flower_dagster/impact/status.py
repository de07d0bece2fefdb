"""What the Dagster instance says today of the impacted partitions: the only queries."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from dagster import (
    AssetKey,
    AssetPartitionStatus,
    AssetRecordsFilter,
    DagsterInstance,
    DagsterRunStatus,
)

from flower_dagster.asset_graph import AssetGraph
from flower_dagster.inputs import InputProblem, input_problems


@dataclass(frozen=True)
class PartitionHealth:
    """One impacted asset's partitions as the instance has them now."""

    # Per partition, the upstream partitions it reads that are missing, failed or in progress.
    input_problems: Mapping[str | None, Sequence[InputProblem]]
    # Its own partitions that a run is building now (queued runs included).
    in_progress: frozenset[str]
    # Its own partitions whose latest run ended canceled, after their latest materialization.
    canceled: frozenset[str] = frozenset()


def read_health(
    instance: DagsterInstance,
    asset_graph: AssetGraph,
    impacted: Sequence[tuple[AssetKey, Sequence[str]]],
) -> dict[AssetKey, PartitionHealth]:
    """The health of every impacted asset's impacted partitions."""
    health = {}
    for key, keys in impacted:
        partitions_def = asset_graph.get(key).partitions_def
        assert partitions_def is not None
        statuses = instance.get_status_by_partition(key, list(keys), partitions_def) or {}
        health[key] = PartitionHealth(
            input_problems=input_problems(instance, asset_graph, key, list(keys)),
            in_progress=frozenset(
                p for p, status in statuses.items() if status == AssetPartitionStatus.IN_PROGRESS
            ),
            canceled=canceled_partitions(instance, key, keys),
        )
    return health


def canceled_partitions(
    instance: DagsterInstance, asset_key: AssetKey, partition_keys: Sequence[str]
) -> frozenset[str]:
    """The partitions whose latest planned run was canceled without materializing them.

    Dagster's partition status counts such a partition as neither failed nor in progress (it
    shows its older materialization, or nothing), so it is looked up per partition: the latest
    run planned to build it, and whether a materialization came after that plan.
    """
    found = set()
    for partition in partition_keys:
        planned = instance.get_latest_planned_materialization_info(asset_key, partition)
        if planned is None:
            continue
        run = instance.get_run_by_id(planned.run_id)
        if run is None or run.status == DagsterRunStatus.CANCELED:
            records = instance.fetch_materializations(
                AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition]), limit=1
            ).records
            if not records or records[0].storage_id < planned.storage_id:
                found.add(partition)
    return frozenset(found)


@contextmanager
def instance_from_environment() -> Iterator[tuple[DagsterInstance | None, str | None]]:
    """The Dagster instance of DAGSTER_HOME, or None and why blockers cannot be known."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        yield (
            None,
            (
                "DAGSTER_HOME is not set, so there is no Dagster instance to read partition "
                "statuses from (`make dev` uses DAGSTER_HOME=dagster_home)"
            ),
        )
        return
    try:
        instance = DagsterInstance.get()
    except Exception as error:  # DagsterHomeException, a bad dagster.yaml, ...
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        yield None, f"the Dagster instance of DAGSTER_HOME={home} could not be opened: {first_line}"
        return
    try:
        yield instance, None
    finally:
        instance.dispose()
