"""Data versions from content: a partition is stale only when what it was built on changed.

dbt reports, per partition of a partitioned model, the row count and an order-independent hash
of the rows it wrote (the `flower_report_partitions` post-hook logs `flower-partitions {json}`).
Each partition's materialization then carries `dagster/data_version` derived from that content,
plus the provenance tags Dagster's staleness uses (the code version, and for every parent the
data version and the event-log pointer it was built against). So re-running a daily partition
that writes identical rows leaves its week FRESH, and a repair that changes rows makes exactly
the weeks and months that contain it STALE in the UI.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dagster import AssetKey, AssetMaterialization, DagsterInstance, DataVersion

from flower_dagster.dagster_tags import (
    CODE_VERSION_TAG,
    DATA_VERSION_IS_USER_PROVIDED_TAG,
    DATA_VERSION_TAG,
    NULL_EVENT_POINTER,
    input_data_version_tag,
    input_event_pointer_tag,
)

REPORT_PREFIX = "flower-partitions "
# The version Dagster gives a parent that has never been materialized.
DEFAULT_DATA_VERSION = DataVersion("INITIAL")
EMPTY_PARTITION = (0, "0")


@dataclass(frozen=True)
class PartitionReport:
    """What one dbt model run wrote: {partition value: (row count, content hash)}."""

    unique_id: str
    partitions: Mapping[str, tuple[int, str]]


def parse_report(message: str) -> PartitionReport | None:
    """The report in a dbt log message, or None when the message is something else."""
    if not message.startswith(REPORT_PREFIX):
        return None
    payload = json.loads(message[len(REPORT_PREFIX) :])
    partitions = {
        str(value): (int(counts[0]), str(counts[1]))
        for value, counts in (payload.get("partitions") or {}).items()
    }
    return PartitionReport(unique_id=payload["unique_id"], partitions=partitions)


def content_version(row_count: int, content_hash: str) -> str:
    """A short, stable data version for a partition's content."""
    digest = hashlib.sha256(f"{row_count}:{content_hash}".encode()).hexdigest()
    return f"{row_count}r-{digest[:16]}"


def partition_value_key(value: str) -> datetime:
    """A partition column value as the naive wall-clock instant it starts at."""
    return datetime.fromisoformat(value.strip().replace("T", " "))


@dataclass(frozen=True)
class PartitionVersion:
    data_version: str
    row_count: int | None


def versions_by_partition(
    report: PartitionReport | None, window_starts: Mapping[str, datetime], run_id: str
) -> dict[str, PartitionVersion]:
    """The data version of each Dagster partition of a run, from dbt's report.

    `window_starts` maps each partition key of the run to its window start (naive wall-clock
    time). A partition the report does not mention wrote no rows. Without any report (a project
    whose models lack the `flower_report_partitions` post-hook) every partition gets a version of
    its own run: each re-run then counts as a change, which is never wrong, only cautious.
    """
    if report is None:
        return {key: PartitionVersion(f"run-{run_id}", None) for key in window_starts}
    counts_by_start = {
        partition_value_key(value): counts for value, counts in report.partitions.items()
    }
    versions = {}
    for key, start in window_starts.items():
        rows, content_hash = counts_by_start.get(start, EMPTY_PARTITION)
        versions[key] = PartitionVersion(content_version(rows, content_hash), rows)
    return versions


def input_provenance(
    instance: DagsterInstance, parents: Iterable[AssetKey]
) -> dict[AssetKey, tuple[DataVersion, int | None]]:
    """For each parent: the data version and storage id of its latest materialization now."""
    parents = list(parents)
    records = {r.asset_entry.asset_key: r for r in instance.get_asset_records(parents)}
    provenance: dict[AssetKey, tuple[DataVersion, int | None]] = {}
    for key in parents:
        record = records.get(key)
        event = record.asset_entry.last_materialization_record if record else None
        if event is None:
            provenance[key] = (DEFAULT_DATA_VERSION, None)
            continue
        value = (event.event_log_entry.tags or {}).get(DATA_VERSION_TAG)
        version = DEFAULT_DATA_VERSION if value is None else DataVersion(value)
        provenance[key] = (version, event.storage_id)
    return provenance


def provenance_tags(
    code_version: str,
    data_version: str,
    provenance: Mapping[AssetKey, tuple[DataVersion, int | None]],
) -> dict[str, str]:
    """The tags Dagster reads to tell whether a materialization is stale (as Dagster writes)."""
    tags = {CODE_VERSION_TAG: code_version}
    for key, (version, storage_id) in provenance.items():
        tags[input_data_version_tag(key)] = version.value
        pointer = str(storage_id) if storage_id else NULL_EVENT_POINTER
        tags[input_event_pointer_tag(key)] = pointer
    tags[DATA_VERSION_TAG] = data_version
    tags[DATA_VERSION_IS_USER_PROVIDED_TAG] = "true"
    return tags


def partition_materializations(
    asset_key: AssetKey,
    versions: Mapping[str, PartitionVersion],
    code_version: str,
    provenance: Mapping[AssetKey, tuple[DataVersion, int | None]],
    metadata: Mapping[str, Any],
    extra_tags: Mapping[str, str],
) -> Sequence[AssetMaterialization]:
    """One materialization per partition, each with its own content version."""
    events = []
    for partition_key, version in versions.items():
        rows = {} if version.row_count is None else {"dagster/row_count": version.row_count}
        events.append(
            AssetMaterialization(
                asset_key=asset_key,
                partition=partition_key,
                metadata={**metadata, **rows},
                tags={
                    **provenance_tags(code_version, version.data_version, provenance),
                    **extra_tags,
                },
            )
        )
    return events
