"""Driving the repair rule tick by tick: evaluate, then run what it requested, for real."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from dagster import (
    AssetKey,
    AssetSelection,
    DagsterInstance,
    DagsterRun,
    Definitions,
    evaluate_automation_conditions,
    materialize,
)
from dagster._core.definitions.asset_daemon_cursor import AssetDaemonCursor
from dagster._core.definitions.automation_tick_evaluation_context import (
    build_run_requests_with_backfill_policies,
)
from dagster._core.definitions.events import AssetKeyPartitionKey

from flower_dagster.dagster_tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from tests.conftest import make_instance

Requested = dict[str, set[str]]


@dataclass
class Automation:
    """A fresh Dagster instance over the shared warehouse, with the automation's cursor."""

    defs: Definitions
    instance: DagsterInstance
    cursor: AssetDaemonCursor | None = None
    history: list[Requested] = field(default_factory=list)
    runs: list[int] = field(default_factory=list)

    def materialize(self, names: Iterable[str], first: str, last: str | None = None) -> bool:
        """Materialize partitions first..last of the named assets, as one single-run backfill."""
        tags = {
            ASSET_PARTITION_RANGE_START_TAG: first,
            ASSET_PARTITION_RANGE_END_TAG: last or first,
        }
        return self._run(AssetSelection.assets(*[AssetKey(n) for n in names]), tags).success

    def materialize_unpartitioned(self) -> bool:
        return self._run(AssetSelection.tag("flower/grain", "unpartitioned"), {}).success

    def queue(self, name: str, first: str, last: str | None = None) -> DagsterRun:
        """A run of partitions first..last of `name` created but not started, as the daemon
        leaves it before a run worker picks it up (its partitions are in progress)."""
        key = AssetKey(name)
        job = self.defs.get_implicit_global_asset_job_def().get_subset(asset_selection={key})
        return self.instance.create_run_for_job(
            job,
            asset_selection=frozenset({key}),
            tags={
                ASSET_PARTITION_RANGE_START_TAG: first,
                ASSET_PARTITION_RANGE_END_TAG: last or first,
            },
        )

    def cancel(self, run: DagsterRun) -> None:
        """What the UI's Terminate does to a run no worker has started."""
        self.instance.report_run_canceled(run, "canceled by an operator")

    def tick(self) -> Requested:
        """One evaluation of every automation condition; returns what it requested."""
        result = evaluate_automation_conditions(
            defs=self.defs, instance=self.instance, cursor=self.cursor
        )
        self.cursor = result.cursor
        graph = self.defs.resolve_asset_graph()
        asset_partitions = [
            AssetKeyPartitionKey(key, partition)
            for key in graph.materializable_asset_keys
            for partition in result.get_requested_partitions(key)
        ]
        # Group them into runs the way the daemon does, by each asset's backfill policy.
        self._requests = build_run_requests_with_backfill_policies(
            asset_partitions, graph, self.instance
        )
        requested: Requested = defaultdict(set)
        for item in asset_partitions:
            requested[item.asset_key.to_user_string()].add(item.partition_key or "-")
        self.history.append(dict(requested))
        return dict(requested)

    def run_requested(self) -> list[bool]:
        """Execute the run requests of the last tick, as the daemon would launch them."""
        outcomes = []
        for request in self._requests:
            selection = AssetSelection.assets(*(request.asset_selection or []))
            tags = dict(request.tags)
            if request.partition_key and ASSET_PARTITION_RANGE_START_TAG not in tags:
                tags[ASSET_PARTITION_RANGE_START_TAG] = request.partition_key
                tags[ASSET_PARTITION_RANGE_END_TAG] = request.partition_key
            outcomes.append(self._run(selection, tags).success)
        self.runs.append(len(self._requests))
        return outcomes

    def settle(self, max_ticks: int = 6) -> Requested:
        """Tick and run until nothing is requested; everything requested on the way, merged."""
        merged: Requested = defaultdict(set)
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for _ in range(max_ticks):
            requested = self.tick()
            if not requested:
                self.requested_counts = dict(counts)
                return dict(merged)
            for asset, partitions in requested.items():
                merged[asset].update(partitions)
                for partition in partitions:
                    counts[(asset, partition)] += 1
            assert all(self.run_requested()), "a requested run failed"
        raise AssertionError(f"still requesting after {max_ticks} ticks: {self.history[-1]}")

    def _run(self, selection: AssetSelection, tags: dict[str, str]):
        return materialize(
            list(self.defs.assets or []),
            selection=selection,
            instance=self.instance,
            resources=self.defs.resources,
            tags=tags,
            raise_on_error=False,
        )


def days(first: str, last: str) -> set[str]:
    """The ISO dates from first to last, inclusive."""
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return {(start + timedelta(days=i)).isoformat() for i in range((end - start).days + 1)}


def fresh_automation(warehouse, tmp_path_factory, name: str) -> Automation:
    """A new Dagster instance over `warehouse`, its unpartitioned models built.

    The first evaluation with a fresh cursor requests nothing; it is taken before any data.
    """
    automation = Automation(warehouse.defs, make_instance(tmp_path_factory.mktemp(name)))
    assert automation.tick() == {}
    assert automation.materialize_unpartitioned()
    return automation


def half_updated(asset_graph: Any, requested: Mapping[str, Iterable[str]]) -> list[str]:
    """Requested partitions that read a partition requested in the same tick (a build on a
    half-updated input, which is then built again)."""
    found = []
    for name, partitions in requested.items():
        for partition in partitions:
            parents = asset_graph.get_parents_partitions(AssetKey(name), partition)
            for parent in parents.parent_partitions:
                if parent.partition_key in requested.get(parent.asset_key.to_user_string(), ()):
                    found.append(f"{name} {partition} with {parent.asset_key.to_user_string()}")
    return found
