"""Random sequences of everyday operations on the demo project, with real dbt and real processes.

A plain seeded loop drives the demo project (real dbt on a DuckDB warehouse of this module's
own, a real Dagster instance) through operations chosen at random:

- repair: a day of a daily model (fct_orders or fct_sessions) is run again;
- raw change: a raw order of a day is added (the demo's `change_day`) or removed, then the
  day's fct_orders partition is run;
- fail / fix: the demo's `corrupt_day` duplicates an order, the day's run fails its blocking
  `unique` test; later `repair_day` and a run fix it;
- cancel: a tick's run request is queued and canceled before any worker starts it, the tick's
  other requests run;
- re-execute: a roll-up partition's latest run is executed again, whole (same assets, same
  partitions, the parent run's id in its tags);
- concurrent: a day is repaired, the automation ticks, and its run requests are launched side by
  side as `dagster asset materialize` processes together with the repair of another day of the
  same week: they take turns on the one-slot `warehouse` pool and the warehouse lock.

After each operation no pool slot is held by a finished run and no roll-up partition is shown
FRESH while an input it was built on has other rows now. After the sequence the failing days are
fixed and the automation settles (tick, run what it requested, until two ticks request nothing);
then every roll-up partition is newer than every input partition it reads, the revenue roll-ups'
rows equal a recomputation from fct_orders (and fct_orders matches the raw orders), no partition
was requested twice or in the same tick as one it reads, and no run is left queued or started.

`make test` runs SEED_LIST with STEPS operations; `make test-operations` runs
FLOWER_OPERATIONS_DEMO_SEEDS more seeds of FLOWER_OPERATIONS_DEMO_STEPS operations. A failure
names its seed and the operations it ran.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AssetSelection,
    DagsterRunStatus,
    RunRequest,
    RunsFilter,
)
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._core.loader import LoadingContextForTest

from flower_dagster.dagster_tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    DATA_VERSION_TAG,
)
from flower_dagster.demo.data import change_day, corrupt_day, repair_day
from flower_dagster.warehouse_lock import warehouse_lock
from tests.automation_support import Automation, fresh_automation, half_updated
from tests.conftest import Warehouse, private_warehouse

pytestmark = pytest.mark.slow

SEED_LIST = [
    int(s) for s in os.environ.get("FLOWER_OPERATIONS_DEMO_SEED_LIST", "5").split(",") if s
]
EXTRA = int(os.environ.get("FLOWER_OPERATIONS_DEMO_SEEDS", "0"))
STEPS = int(os.environ.get("FLOWER_OPERATIONS_DEMO_STEPS", "4"))

# January and the week that ends it: five complete weeks (so January's peak week is built), one
# complete month; February stays incomplete.
FIRST, LAST = date(2024, 1, 1), date(2024, 2, 4)
DAILIES = ["fct_orders", "fct_sessions"]
# The roll-ups the repair rule keeps (agg_daily_traffic reads hours nobody loads here).
ROLLUPS = [
    "agg_daily_revenue",
    "agg_weekly_revenue",
    "agg_monthly_revenue",
    "agg_weekly_active_users",
    "agg_monthly_active_users",
    "agg_monthly_peak_week",
]
IN_PROGRESS = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]
# Ids of the orders `change_day` adds (flower_dagster/demo/data.py): far above generated ids.
CHANGE_ID_BASE = 1_000_000_000


@dataclass
class Demo:
    """The demo on its own warehouse and instance, and what the operations have done to it."""

    warehouse: Warehouse
    automation: Automation
    failing: set[str] = field(default_factory=set)
    operations: int = 0
    sequences: int = 0

    @property
    def instance(self):
        return self.automation.instance

    @property
    def graph(self):
        return self.automation.defs.resolve_asset_graph()


@pytest.fixture(scope="module")
def own_warehouse(warehouse: Warehouse, tmp_path_factory) -> Iterator[Warehouse]:
    """The operations write many partitions and raw rows, which other modules must not see."""
    yield from private_warehouse(warehouse, tmp_path_factory, "operations_demo")


@pytest.fixture(scope="module")
def demo(own_warehouse: Warehouse, tmp_path_factory) -> Iterator[Demo]:
    """January's dailies loaded as one backfill and rolled up by the automation."""
    automation = fresh_automation(own_warehouse, tmp_path_factory, "operations_demo_home")
    assert automation.materialize(DAILIES, FIRST.isoformat(), LAST.isoformat())
    built = Demo(own_warehouse, automation)
    counts, half, _ = settle(built)
    assert not half and set(counts.values()) == {1}, (counts, half)
    yield built
    print(f"\noperations on the demo: {built.sequences} sequences, {built.operations} operations")
    automation.instance.dispose()


# --- the operations ---------------------------------------------------------------------------


def _day(rng: random.Random, avoid: set[str] = frozenset()) -> str:
    while True:
        day = (FIRST + timedelta(days=rng.randrange((LAST - FIRST).days + 1))).isoformat()
        if day not in avoid:
            return day


def _same_week(rng: random.Random, day: str, avoid: set[str]) -> str:
    monday = date.fromisoformat(day) - timedelta(days=date.fromisoformat(day).weekday())
    for _ in range(20):
        other = monday + timedelta(days=rng.randrange(7))
        if FIRST <= other <= LAST and other.isoformat() not in avoid | {day}:
            return other.isoformat()
    return _day(rng, avoid | {day})


def _range(request: RunRequest) -> tuple[list[str], str, str]:
    """A run request as (asset names, first partition, last partition)."""
    names = sorted(key.to_user_string() for key in request.asset_selection or [])
    first = request.tags.get(ASSET_PARTITION_RANGE_START_TAG, request.partition_key)
    last = request.tags.get(ASSET_PARTITION_RANGE_END_TAG, request.partition_key)
    return names, first, last


def _run_requests(demo: Demo, requests: Sequence[RunRequest]) -> list[bool]:
    return [demo.automation.materialize(*_range(request)) for request in requests]


def remove_order(duckdb_path: Path, day: str) -> int | None:
    """Delete one raw order of `day` and its payments (the late one `change_day` added, if any,
    else the day's last order), as an upstream system that retracts a row; its id, if any."""
    start = date.fromisoformat(day)
    with warehouse_lock(duckdb_path), duckdb.connect(str(duckdb_path)) as db:
        found = db.execute(
            "select order_id from raw.orders where ordered_at >= ? and ordered_at < ? "
            "order by order_id >= ? desc, ordered_at desc limit 1",
            [start, start + timedelta(days=1), CHANGE_ID_BASE],
        ).fetchone()
        if found is None:
            return None
        db.execute("delete from raw.payments where order_id = ?", [found[0]])
        db.execute("delete from raw.orders where order_id = ?", [found[0]])
        return found[0]


def launch(demo: Demo, names: Sequence[str], first: str, last: str) -> subprocess.Popen:
    """`dagster asset materialize` in a process of its own, on the demo's instance."""
    dagster = Path(sys.executable).with_name("dagster")
    partitions = (
        ["--partition", first] if first == last else ["--partition-range", f"{first}...{last}"]
    )
    return subprocess.Popen(
        [
            *(str(dagster), "asset", "materialize", "-m", "flower_dagster.definitions"),
            *("--select", ",".join(names), *partitions),
        ],
        env={**os.environ, "DAGSTER_HOME": str(demo.instance.root_directory)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def operate(demo: Demo, rng: random.Random, log: list[str]) -> None:
    """One random operation, as a platform team does them."""
    path = demo.warehouse.duckdb_path
    operation = rng.choice(
        ["repair", "raw change", "fail", "fix", "cancel", "re-execute", "concurrent", "concurrent"]
    )
    if operation == "fix" and not demo.failing:
        operation = "fail"
    if operation == "repair":
        name, day = rng.choice(DAILIES), _day(rng)
        ok = demo.automation.materialize([name], day)
        log.append(f"repair {name} {day} -> {'ok' if ok else 'failed'}")
        failing = name == "fct_orders" and day in demo.failing
        assert ok != failing, f"repair {name} {day}: success {ok}, a failing day {failing}"
    elif operation == "raw change":
        day = _day(rng, demo.failing)
        if rng.random() < 0.5:
            change_day(path, date.fromisoformat(day))
            what = "add a late order"
        else:
            what = f"remove order {remove_order(path, day)}"
        ok = demo.automation.materialize(["fct_orders"], day)
        log.append(f"raw change {day}: {what}, fct_orders -> {'ok' if ok else 'failed'}")
        assert ok, f"fct_orders {day} failed after a valid raw change"
    elif operation == "fail":
        day = _day(rng, demo.failing)
        corrupt_day(path, date.fromisoformat(day))
        ok = demo.automation.materialize(["fct_orders"], day)
        log.append(f"fail fct_orders {day} (corrupt_day) -> {'ok' if ok else 'failed'}")
        assert not ok, f"fct_orders {day} succeeded on a duplicated order"
        demo.failing.add(day)
    elif operation == "fix":
        day = rng.choice(sorted(demo.failing))
        fix(demo, day, log)
    elif operation == "cancel":
        requested = demo.automation.tick()
        requests = list(demo.automation._requests)
        log.append(f"tick -> {_short(requested)}")
        if requests:
            canceled = requests.pop(rng.randrange(len(requests)))
            names, first, last = _range(canceled)
            demo.automation.cancel(queue(demo, names, first, last))
            outcomes = _run_requests(demo, requests)
            log.append(f"cancel queued {names} {first}..{last}; ran the other {len(requests)}")
            assert all(outcomes), f"a requested run failed: {outcomes}"
    elif operation == "re-execute":
        reexecute(demo, rng, log)
    else:
        concurrent(demo, rng, log)


def fix(demo: Demo, day: str, log: list[str]) -> None:
    repair_day(demo.warehouse.duckdb_path, date.fromisoformat(day))
    ok = demo.automation.materialize(["fct_orders"], day)
    log.append(f"fix fct_orders {day} (repair_day) -> {'ok' if ok else 'failed'}")
    assert ok, f"fct_orders {day} still fails after repair_day"
    demo.failing.discard(day)


def queue(demo: Demo, names: Sequence[str], first: str, last: str):
    """A run created but not started, as the daemon leaves it before a run worker picks it up."""
    keys = frozenset(AssetKey(n) for n in names)
    job = demo.automation.defs.get_implicit_global_asset_job_def().get_subset(asset_selection=keys)
    return demo.instance.create_run_for_job(
        job,
        asset_selection=keys,
        tags={ASSET_PARTITION_RANGE_START_TAG: first, ASSET_PARTITION_RANGE_END_TAG: last},
    )


def reexecute(demo: Demo, rng: random.Random, log: list[str]) -> None:
    """Re-execute, whole, the latest run of a built roll-up partition: a new run of the same
    assets and partitions, with the parent run's id in its tags, as the UI's "Re-execute all"."""
    name = rng.choice(ROLLUPS)
    built = latest_records(demo, name)
    if not built:
        log.append(f"re-execute {name}: nothing built")
        return
    partition = rng.choice(sorted(built))
    parent = demo.instance.get_run_by_id(built[partition][0].run_id)
    assert parent is not None
    tags = {
        key: value
        for key, value in parent.tags.items()
        if key in (ASSET_PARTITION_RANGE_START_TAG, ASSET_PARTITION_RANGE_END_TAG)
    }
    tags["dagster/parent_run_id"] = parent.run_id
    tags["dagster/root_run_id"] = parent.root_run_id or parent.run_id
    keys = parent.asset_selection or {AssetKey(name)}
    ok = demo.automation._run(AssetSelection.assets(*keys), tags).success
    assets = sorted(k.to_user_string() for k in keys)
    log.append(
        f"re-execute run of {assets} {tags.get(ASSET_PARTITION_RANGE_START_TAG)}.."
        f"{tags.get(ASSET_PARTITION_RANGE_END_TAG)} -> {'ok' if ok else 'failed'}"
    )
    assert ok, "the re-execution failed"


def concurrent(demo: Demo, rng: random.Random, log: list[str]) -> None:
    """A repair, a tick, then the tick's runs and another repair launched at the same moment."""
    first_day = _day(rng, demo.failing)
    assert demo.automation.materialize(["fct_orders"], first_day)
    requested = demo.automation.tick()
    runs = [_range(request) for request in demo.automation._requests]
    second_day = _same_week(rng, first_day, demo.failing)
    runs.append((["fct_orders"], second_day, second_day))
    log.append(
        f"concurrent: repair fct_orders {first_day}, tick -> {_short(requested)}; "
        f"launched {len(runs)} runs side by side, with a repair of fct_orders {second_day}"
    )
    processes = [launch(demo, *run) for run in runs]
    outputs = [process.communicate(timeout=900)[0] for process in processes]
    for run, process, output in zip(runs, processes, outputs, strict=True):
        assert "Could not set lock" not in output, f"{run}: two writers on DuckDB"
        # A roll-up that starts while the repair of one of its days is running is refused by
        # its source check (the day is in progress); the rule requests it again afterwards.
        refused = "inputs incomplete" in output and "(in progress)" in output
        if process.returncode != 0 and refused and run[0][0] != "fct_orders":
            log.append(f"  {run[0]} {run[1]}: refused, an input in progress (source check)")
            continue
        assert process.returncode == 0, f"launched run {run} failed:\n{output[-3000:]}"


def _short(requested: dict[str, set[str]]) -> str:
    def span(partitions: set[str]) -> str:
        keys = sorted(partitions)
        return keys[0] if len(keys) == 1 else f"{keys[0]}..{keys[-1]} ({len(keys)})"

    return ", ".join(f"{n} {span(ps)}" for n, ps in sorted(requested.items())) or "nothing"


# --- settling and the invariants --------------------------------------------------------------


def settle(demo: Demo, max_ticks: int = 10):
    """Tick and run what was requested until two ticks in a row request nothing.

    A request whose run was canceled is made again one evaluation after the first that sees it
    settled, so one quiet tick is not yet settled. Returns how often each partition was
    requested, the partitions requested in the same tick as one they read, and the ticks.
    """
    counts: dict[tuple[str, str], int] = defaultdict(int)
    half: list[str] = []
    ticks: list[dict[str, set[str]]] = []
    quiet = 0
    for _ in range(max_ticks):
        requested = demo.automation.tick()
        ticks.append(requested)
        quiet = 0 if requested else quiet + 1
        if quiet == 2:
            return dict(counts), half, ticks
        half += half_updated(demo.graph, requested)
        for name, partitions in requested.items():
            for partition in partitions:
                counts[(name, partition)] += 1
        outcomes = demo.automation.run_requested()
        assert all(outcomes), f"a requested run failed while settling: {_short(requested)}"
    raise AssertionError(f"still requesting after {max_ticks} ticks: {_short(ticks[-1])}")


def latest_records(demo: Demo, name: str) -> dict[str, list]:
    """Each materialized partition of `name`: its materialization records, newest first."""
    found: dict[str, list] = defaultdict(list)
    records = demo.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(name)), limit=10_000, ascending=False
    ).records
    for record in records:
        found[record.partition_key].append(record)
    return dict(found)


def _parents(demo: Demo, name: str, partition: str) -> list[tuple[str, str]]:
    parents = demo.graph.get_parents_partitions(AssetKey(name), partition).parent_partitions
    return sorted((p.asset_key.to_user_string(), p.partition_key) for p in parents)


def provenance_errors(demo: Demo) -> list[str]:
    """Roll-up partitions not materialized after every input partition they read."""
    names = DAILIES + ROLLUPS
    records = {name: latest_records(demo, name) for name in names}
    errors = []
    for name in ROLLUPS:
        for partition, history in records[name].items():
            for parent, parent_partition in _parents(demo, name, partition):
                parent_history = records.get(parent, {}).get(parent_partition)
                if parent_history and parent_history[0].storage_id > history[0].storage_id:
                    errors.append(
                        f"{name} {partition} (event {history[0].storage_id}) is older than "
                        f"{parent} {parent_partition} (event {parent_history[0].storage_id})"
                    )
    return errors


def _version(record) -> str | None:
    return (record.asset_materialization.tags or {}).get(DATA_VERSION_TAG)


def stale_but_fresh(demo: Demo) -> list[str]:
    """Roll-up partitions shown FRESH by Dagster's staleness (the UI's "Unsynced") although an
    input partition's rows (its data version) changed since the roll-up's latest build."""
    resolver = CachingStaleStatusResolver(
        demo.instance, demo.graph, LoadingContextForTest(demo.instance)
    )
    records = {name: latest_records(demo, name) for name in DAILIES + ROLLUPS}
    found = []
    for name in ROLLUPS:
        for partition, history in records[name].items():
            built_at = history[0].storage_id
            changed = []
            for parent, parent_partition in _parents(demo, name, partition):
                parent_history = records.get(parent, {}).get(parent_partition, [])
                before = [r for r in parent_history if r.storage_id < built_at]
                if parent_history and before and _version(parent_history[0]) != _version(before[0]):
                    changed.append(f"{parent} {parent_partition}")
            if changed and resolver.get_status(AssetKey(name), partition) == StaleStatus.FRESH:
                found.append(f"{name} {partition} (changed: {', '.join(changed)})")
    return found


def held_slots(demo: Demo) -> list[str]:
    """Slots (or slot claims waiting) of the warehouse pool that belong to a finished run."""
    pool = demo.warehouse.settings.warehouse_pool
    info = demo.instance.event_log_storage.get_concurrency_info(pool)
    found = []
    for what, items in (("claims", info.claimed_slots), ("waits for", info.pending_steps)):
        for item in items:
            run = demo.instance.get_run_by_id(item.run_id)
            if run is None or run.is_finished:
                status = run.status.value if run else "deleted"
                found.append(f"{status} run {item.run_id} {what} a slot ({item.step_key})")
    return found


def row_errors(demo: Demo) -> list[str]:
    """Revenue roll-up rows that differ from a recomputation over fct_orders, and fct_orders
    days whose order count differs from the raw orders."""
    errors = []
    built = {name: sorted(latest_records(demo, name)) for name in ROLLUPS[:3]}
    grains = {
        "agg_daily_revenue": ("order_date", "order_date"),
        "agg_weekly_revenue": ("week_start", "cast(date_trunc('week', order_date) as date)"),
        "agg_monthly_revenue": ("month_start", "cast(date_trunc('month', order_date) as date)"),
    }
    with duckdb.connect(str(demo.warehouse.duckdb_path), read_only=True) as db:
        for name, (column, start) in grains.items():
            customers = "" if name == "agg_daily_revenue" else ", customer_count"
            distinct = "" if name == "agg_daily_revenue" else ", count(distinct user_id)"
            partitions = [date.fromisoformat(p) for p in built[name]]
            if not partitions:
                continue
            stored = db.execute(
                f"select {column}, country, order_count, cancelled_order_count{customers}, "
                f"revenue from {name} where {column} in (select unnest(?))",
                [partitions],
            ).fetchall()
            expected = db.execute(
                f"select {start} as partition_start, country, count(order_id), "
                f"count(case when is_cancelled then 1 end){distinct}, "
                "cast(sum(amount_paid) as decimal(14, 2)) from fct_orders "
                "where partition_start in (select unnest(?)) group by all",
                [partitions],
            ).fetchall()
            if sorted(stored) != sorted(expected):
                differ = sorted(set(stored) ^ set(expected))[:6]
                errors.append(f"{name} differs from fct_orders: {differ}")
        raw = db.execute(
            "select cast(ordered_at as date) as day, count(distinct order_id) from raw.orders "
            "where day between ? and ? group by all",
            [FIRST, LAST],
        ).fetchall()
        fact = db.execute(
            "select order_date, count(*) from fct_orders where order_date between ? and ? "
            "group by all",
            [FIRST, LAST],
        ).fetchall()
        if sorted(raw) != sorted(fact):
            errors.append(f"fct_orders differs from raw.orders: {sorted(set(raw) ^ set(fact))}")
    return errors


def check_sequence(demo: Demo, seed: int, steps: int) -> list[str]:
    rng = random.Random(seed)
    log: list[str] = []
    try:
        for _ in range(steps):
            operate(demo, rng, log)
            demo.operations += 1
            held = held_slots(demo)
            assert not held, f"pool slots held by finished runs: {held}"
            shown_fresh = stale_but_fresh(demo)
            assert not shown_fresh, f"shown FRESH while an input changed: {shown_fresh}"
        # The team fixes every failing day; then nobody touches anything.
        for day in sorted(demo.failing):
            fix(demo, day, log)
        counts, half, ticks = settle(demo)
        log.append("settle -> " + " | ".join(_short(t) for t in ticks))
        twice = sorted(k for k, n in counts.items() if n > 1)
        assert not twice, f"requested more than once while settling: {twice}"
        assert not half, f"requested with an input in the same tick: {half}"
        errors = provenance_errors(demo)
        assert not errors, f"built before an input it reads changed: {errors}"
        errors = row_errors(demo)
        assert not errors, f"roll-up rows are not their inputs': {errors}"
        alive = demo.instance.get_run_records(RunsFilter(statuses=IN_PROGRESS))
        assert not alive, f"runs left in progress: {[r.dagster_run.run_id for r in alive]}"
        held = held_slots(demo)
        assert not held, f"pool slots held by finished runs: {held}"
        shown_fresh = stale_but_fresh(demo)
        assert not shown_fresh, f"shown FRESH while an input changed: {shown_fresh}"
    except AssertionError as error:
        raise AssertionError(
            f"seed {seed} ({steps} operations): {error}\n  " + "\n  ".join(log)
        ) from None
    demo.sequences += 1
    return log


@pytest.mark.parametrize("seed", SEED_LIST + [2000 + i for i in range(EXTRA)])
def test_random_operations_on_the_demo_settle_to_the_truth(demo, seed):
    log = check_sequence(demo, seed, STEPS)
    print(f"seed {seed}: {STEPS} operations, then the settle\n  " + "\n  ".join(log))
