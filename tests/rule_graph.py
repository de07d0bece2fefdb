"""The repair rule on a small Python-asset graph: real Dagster, no dbt, fast enough to fuzz.

The graph has the demo's shapes (a daily fed to its weekly, monthly and daily roll-ups, a weekly
fed to a monthly) plus two diamonds the demo lacks: a monthly that reads a daily and the weekly
built from that daily, and a monthly that reads a staging day and the weekly built from the fact
built from that day (a diamond of depth 3). Every asset carries flower-dagster's own
`repair_condition` over its partitioned parents and the project's grains, and records, in its
materialization, the storage id of the latest materialization of every input partition as it
was when the asset read them, so a test can check provenance from the event log alone.

Runs are real `materialize` runs on a real instance (stock SQLite storage in a temp folder);
queued, canceled and failed runs are made through the instance's public run API.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    AssetsDefinition,
    AssetSelection,
    BackfillPolicy,
    DagsterInstance,
    Definitions,
    asset,
    evaluate_automation_conditions,
    materialize,
)
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest

from flower_dagster.automation import pending_levels, repair_condition
from flower_dagster.partitions import GRAIN_TAG, Grain, partitions_for

START = date(2024, 1, 1)
TIMEZONE = "UTC"
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"

# name -> (grain, parents)
GRAPH: dict[str, tuple[Grain, tuple[str, ...]]] = {
    "orders": (Grain.DAILY, ()),
    "sessions": (Grain.DAILY, ()),
    "daily_revenue": (Grain.DAILY, ("orders",)),
    "weekly_revenue": (Grain.WEEKLY, ("orders",)),
    "monthly_revenue": (Grain.MONTHLY, ("orders",)),
    "weekly_users": (Grain.WEEKLY, ("sessions",)),
    "monthly_peak_week": (Grain.MONTHLY, ("weekly_users",)),
    # The diamond: reads sessions and weekly_users, which is built from sessions.
    "monthly_mix": (Grain.MONTHLY, ("sessions", "weekly_users")),
    # The deeper diamond: events -> daily_events -> weekly_events, and monthly_events reads
    # events and weekly_events.
    "events": (Grain.DAILY, ()),
    "daily_events": (Grain.DAILY, ("events",)),
    "weekly_events": (Grain.WEEKLY, ("daily_events",)),
    "monthly_events": (Grain.MONTHLY, ("events", "weekly_events")),
}
ROOTS = [name for name, (_, parents) in GRAPH.items() if not parents]
ROLLUPS = [name for name, (_, parents) in GRAPH.items() if parents]


@dataclass
class Faults:
    """Partitions whose next materialization raises (the demo's `corrupt_day`, in Python)."""

    failing: set[tuple[str, str]] = field(default_factory=set)
    # The resolved asset graph, for the assets to find the partitions they read.
    graph: Any = None
    # (run id, asset, partition) -> the latest storage id of each input partition, as read.
    reads: dict[tuple[str, str, str], dict[str, int]] = field(default_factory=dict)


def latest_storage_ids(
    instance: DagsterInstance, items: Iterable[tuple[str, str]]
) -> dict[str, int]:
    """`{"asset|partition": storage id}` of the latest materialization of each, 0 if none."""
    found = {}
    for name, partition in items:
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey(name), asset_partitions=[partition]), limit=1
        ).records
        found[f"{name}|{partition}"] = records[0].storage_id if records else 0
    return found


def _make_asset(name: str, grain: Grain, parents: tuple[str, ...], faults: Faults):
    partitions_def = partitions_for(grain, START, TIMEZONE)

    def keys(names: Iterable[str]) -> AssetSelection:
        return AssetSelection.assets(*(AssetKey(n) for n in sorted(names)))

    levels = pending_levels({n: p for n, (_, p) in GRAPH.items()}).get(name, [])
    condition = (
        repair_condition(keys(parents), keys(levels[0]), [keys(level) for level in levels[1:]])
        if parents
        else None
    )

    # One run over a range of partitions, as flower-dagster's dbt assets do.
    @asset(
        name=name,
        partitions_def=partitions_def,
        deps=[AssetKey(p) for p in parents],
        automation_condition=condition,
        backfill_policy=BackfillPolicy.single_run(),
        tags={GRAIN_TAG: grain.value},
    )
    def _asset(context: AssetExecutionContext) -> None:
        keys = context.partition_keys
        bad = [key for key in keys if (name, key) in faults.failing]
        if bad:
            raise RuntimeError(f"{name} {', '.join(bad)} corrupt")
        for key in keys:
            inputs = faults.graph.get_parents_partitions(AssetKey(name), key).parent_partitions
            faults.reads[(context.run_id, name, key)] = latest_storage_ids(
                context.instance,
                [(p.asset_key.to_user_string(), p.partition_key) for p in inputs],
            )

    return _asset


def build_graph(faults: Faults) -> list[AssetsDefinition]:
    return [_make_asset(name, g, parents, faults) for name, (g, parents) in GRAPH.items()]


@dataclass
class RuleGraph:
    """The graph on a real instance, with the automation's cursor carried from tick to tick."""

    home: Path
    faults: Faults = field(default_factory=Faults)
    cursor: object = None
    requested: list[dict[str, set[str]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        self.instance = DagsterInstance.local_temp(str(self.home))
        self.assets = build_graph(self.faults)
        self.defs = Definitions(assets=self.assets)
        self.job = self.defs.get_implicit_global_asset_job_def()
        self.faults.graph = self.defs.resolve_asset_graph()

    def run(self, name: str, first: str, last: str | None = None) -> bool:
        """One real run of partitions first..last of one asset; True if it succeeded."""
        result = materialize(
            self.assets,
            selection=[AssetKey(name)],
            instance=self.instance,
            tags={RANGE_START: first, RANGE_END: last or first},
            raise_on_error=False,
        )
        return result.success

    def queue(self, name: str, partition: str):
        """A QUEUED run of one partition, as the daemon leaves it before a run worker starts."""
        plan_job = self.job.get_subset(asset_selection={AssetKey(name)})
        return self.instance.create_run_for_job(
            plan_job,
            asset_selection=frozenset({AssetKey(name)}),
            tags={"dagster/partition": partition},
        )

    def cancel(self, run) -> None:
        self.instance.report_run_canceled(run, "canceled by an operator")

    def tick(self) -> dict[str, set[str]]:
        result = evaluate_automation_conditions(
            defs=self.defs, instance=self.instance, cursor=self.cursor
        )
        self.cursor = result.cursor
        found: dict[str, set[str]] = defaultdict(set)
        for name in ROLLUPS:
            for partition in result.get_requested_partitions(AssetKey(name)):
                found[name].add(partition)
        self.requested.append(dict(found))
        return dict(found)

    def run_requested(
        self, requested: Mapping[str, set[str]], downstream_first: bool = False
    ) -> dict[tuple[str, str, str], bool]:
        """Run what a tick requested, one run per asset and range of consecutive partitions.

        The daemon launches a tick's runs side by side, so their order is not known: upstream
        first by default, `downstream_first` for the worst order.
        """
        order = {name: i for i, name in enumerate(GRAPH)}
        outcomes = {}
        for name in sorted(requested, key=order.__getitem__, reverse=downstream_first):
            for first, last in self.ranges(name, requested[name]):
                outcomes[(name, first, last)] = self.run(name, first, last)
        return outcomes

    def ranges(self, name: str, partitions: Iterable[str]) -> list[tuple[str, str]]:
        """The partitions as runs of consecutive keys, the way a single-run policy groups them."""
        keys = self.faults.graph.get(AssetKey(name)).partitions_def.get_partition_keys()
        index = {key: i for i, key in enumerate(keys)}
        found: list[list[str]] = []
        for key in sorted(partitions, key=index.__getitem__):
            if found and index[found[-1][-1]] == index[key] - 1:
                found[-1].append(key)
            else:
                found.append([key])
        return [(group[0], group[-1]) for group in found]

    def settle(self, max_ticks: int = 8) -> dict[tuple[str, str], int]:
        """Tick and run until two ticks request nothing: how often each partition was requested."""
        counts: dict[tuple[str, str], int] = defaultdict(int)
        quiet = 0
        for _ in range(max_ticks):
            requested = self.tick()
            # A request whose run was canceled, deleted or never launched is made again one
            # evaluation after the first that sees it settled: two quiet ticks are settled.
            quiet = 0 if requested else quiet + 1
            if quiet == 2:
                return dict(counts)
            for name, partitions in requested.items():
                for partition in partitions:
                    counts[(name, partition)] += 1
            self.run_requested(requested)
        raise AssertionError(f"still requesting after {max_ticks} ticks: {self.requested[-1]}")

    def latest(self, name: str) -> dict[str, tuple[int, str]]:
        """Each materialized partition of `name`: (storage id, run id) of its latest one."""
        found: dict[str, tuple[int, str]] = {}
        records = self.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey(name)), limit=10_000, ascending=True
        ).records
        for record in records:
            found[record.partition_key] = (record.storage_id, record.run_id)
        return found

    def stale_but_fresh(self) -> list[str]:
        """Built roll-up partitions an input of which changed since they read it, that
        Dagster's staleness (the UI's "Unsynced") shows as fresh."""
        resolver = CachingStaleStatusResolver(
            self.instance, self.faults.graph, LoadingContextForTest(self.instance)
        )
        latest = {name: self.latest(name) for name in GRAPH}
        found = []
        for name in ROLLUPS:
            for partition, (_, run_id) in latest[name].items():
                read = self.faults.reads[(run_id, name, partition)]
                changed = any(
                    latest[item.split("|")[0]].get(item.split("|")[1], (0, ""))[0] != storage_id
                    for item, storage_id in read.items()
                )
                if changed and resolver.get_status(AssetKey(name), partition) == StaleStatus.FRESH:
                    found.append(f"{name} {partition}")
        return found

    def provenance_errors(self, blocked: Iterable[tuple[str, str]] = ()) -> list[str]:
        """Roll-up partitions whose latest build did not read the latest of every input.

        Partitions in `blocked` (an input failed or missing, so the rule rightly waits) and
        partitions never built are skipped.
        """
        skip = set(blocked)
        latest = {name: self.latest(name) for name in GRAPH}
        errors = []
        for name in ROLLUPS:
            for partition, (_, run_id) in latest[name].items():
                if (name, partition) in skip:
                    continue
                read = self.faults.reads[(run_id, name, partition)]
                for item, storage_id in read.items():
                    parent, parent_partition = item.split("|")
                    now = latest[parent].get(parent_partition, (0, ""))[0]
                    if now != storage_id:
                        errors.append(
                            f"{name} {partition} read {item} at {storage_id}, latest is {now}"
                        )
        return errors
