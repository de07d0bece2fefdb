"""What flower-dagster reads of Dagster's asset graph, as a typing Protocol.

Dagster hands out its asset graph (`Definitions.resolve_asset_graph()`, a repository's
`asset_graph`, an automation context's) but exports no type for it. These Protocols name the
few methods and node attributes the source check and `flower impact` use, so an upgrade that
changes one of them shows here, and no annotation needs Dagster's private classes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

from dagster import AssetKey, AutomationCondition, PartitionMapping, PartitionsDefinition


class AssetPartition(Protocol):
    """One partition of one asset (Dagster's `AssetKeyPartitionKey`)."""

    @property
    def asset_key(self) -> AssetKey: ...
    @property
    def partition_key(self) -> str | None: ...


class ParentPartitions(Protocol):
    """The partitions one asset partition reads (Dagster's `ParentsPartitionsResult`)."""

    @property
    def parent_partitions(self) -> Iterable[AssetPartition]: ...
    @property
    def required_but_nonexistent_parents_partitions(self) -> Iterable[AssetPartition]: ...


@runtime_checkable
class AssetNode(Protocol):
    """One asset of the graph."""

    @property
    def partitions_def(self) -> PartitionsDefinition | None: ...
    @property
    def child_keys(self) -> Iterable[AssetKey]: ...
    @property
    def is_materializable(self) -> bool: ...
    @property
    def automation_condition(self) -> AutomationCondition | None: ...
    @property
    def tags(self) -> Mapping[str, str]: ...


@runtime_checkable
class AssetGraph(Protocol):
    """The asset graph of a code location."""

    def has(self, key: AssetKey) -> bool: ...
    def get(self, key: AssetKey) -> AssetNode: ...
    def get_all_asset_keys(self) -> Iterable[AssetKey]: ...
    @property
    def toposorted_asset_keys_by_level(self) -> Sequence[Iterable[AssetKey]]: ...
    def get_partition_mapping(
        self, key: AssetKey, parent_asset_key: AssetKey
    ) -> PartitionMapping: ...
    def get_parents_partitions(
        self, asset_key: AssetKey, partition_key: str | None = None
    ) -> ParentPartitions: ...
