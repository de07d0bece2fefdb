"""Random sequences of everyday operations, then the automation settles and must tell the truth.

A plain seeded loop drives a real Dagster instance and the repair rule over tests/rule_graph.py
(the demo's shapes plus a diamond) through repairs of any day, failing days (the demo's
`corrupt_day`, as a partition that raises) and their fixes, requests whose runs are canceled
while queued, deleted, or never launched (a daemon restarted between evaluation and launch),
manual re-executions of roll-ups, and a tick's runs executed in either order (the daemon runs
them side by side). After each sequence the failing days are repaired and the automation
settles (tick, run what was requested, until nothing is); then:

- provenance: every roll-up partition's latest build read the latest materialization of every
  input partition (the storage ids the asset saw when it read its inputs);
- built once per change: during the settle no partition is requested twice, and none is
  requested in the same tick as one of the partitions it reads (a half-updated build);
- nothing is left in progress: no run is queued or running;
- after every operation, no partition whose input changed since it read it is shown fresh by
  Dagster's staleness (the UI's "Unsynced").

`make test` runs SEEDS; `make test-operations` runs FLOWER_OPERATIONS_SEEDS sequences of
FLOWER_OPERATIONS_STEPS operations each. A failure names its seed and the operations it ran.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from datetime import date, timedelta

import pytest
from dagster import AssetKey, DagsterRunStatus, RunsFilter

from tests.automation_support import half_updated
from tests.rule_graph import GRAPH, ROOTS, RuleGraph

SEEDS = [int(s) for s in os.environ.get("FLOWER_OPERATIONS_SEED_LIST", "7,21").split(",")]
EXTRA = int(os.environ.get("FLOWER_OPERATIONS_SEEDS", "0"))
STEPS = int(os.environ.get("FLOWER_OPERATIONS_STEPS", "4"))
FIRST, LAST = date(2024, 1, 1), date(2024, 2, 6)


@pytest.fixture(scope="module")
def graph(tmp_path_factory) -> Iterator[RuleGraph]:
    built = RuleGraph(tmp_path_factory.mktemp("operations") / "home")
    assert built.tick() == {}
    for root in ROOTS:
        assert built.run(root, FIRST.isoformat(), LAST.isoformat())
    built.settle()
    yield built
    built.instance.dispose()


def _day(rng: random.Random) -> str:
    return (FIRST + timedelta(days=rng.randrange((LAST - FIRST).days + 1))).isoformat()


def _operate(graph: RuleGraph, rng: random.Random, log: list[str]) -> None:
    """One random operation, as a platform team does them."""
    operation = rng.choice(
        ["repair", "repair", "fail", "cancel", "delete", "not launched", "re-execute", "tick"]
    )
    if operation == "repair":
        root, day = rng.choice(ROOTS), _day(rng)
        graph.faults.failing.discard((root, day))
        graph.run(root, day)
        log.append(f"repair {root} {day}")
    elif operation == "fail":
        root, day = rng.choice(ROOTS), _day(rng)
        graph.faults.failing.add((root, day))
        assert not graph.run(root, day)
        log.append(f"fail {root} {day}")
    elif operation == "re-execute":
        name = rng.choice([n for n, (_, parents) in GRAPH.items() if parents])
        keys = graph.faults.graph.get(AssetKey(name)).partitions_def.get_partition_keys()
        built = [k for k in keys if k <= LAST.isoformat() and k in graph.latest(name)]
        if built:
            partition = rng.choice(built)
            graph.run(name, partition)
            log.append(f"re-execute {name} {partition}")
    else:
        requested = graph.tick()
        log.append(f"tick -> {_short(requested)}")
        if not requested:
            return
        if operation in ("cancel", "delete"):
            # One request's run is queued and then canceled or deleted; the others run.
            name = rng.choice(sorted(requested))
            partition = rng.choice(sorted(requested[name]))
            requested[name].discard(partition)
            run = graph.queue(name, partition)
            if operation == "cancel":
                graph.cancel(run)
            else:
                graph.instance.delete_run(run.run_id)
            log.append(f"{operation} {name} {partition}")
        if operation != "not launched":
            graph.run_requested(requested, downstream_first=rng.random() < 0.5)
        else:
            log.append("runs not launched")


def _short(requested: dict[str, set[str]]) -> str:
    return ", ".join(f"{n} {sorted(ps)}" for n, ps in sorted(requested.items())) or "nothing"


def check_sequence(graph: RuleGraph, seed: int, steps: int) -> list[str]:
    rng = random.Random(seed)
    log: list[str] = []
    try:
        for _ in range(steps):
            _operate(graph, rng, log)
            # Whatever the state, the UI never calls a partition fresh whose input changed.
            shown_fresh = graph.stale_but_fresh()
            assert not shown_fresh, f"shown fresh while an input it read changed: {shown_fresh}"
        # The team repairs every failing day; then nobody touches anything.
        for root, day in sorted(graph.faults.failing):
            graph.faults.failing.discard((root, day))
            assert graph.run(root, day)
            log.append(f"repair {root} {day}")
        ticks = len(graph.requested)
        counts = graph.settle(max_ticks=10)
        settle_ticks = graph.requested[ticks:]
        log.append("settle -> " + " | ".join(_short(r) for r in settle_ticks))
        twice = sorted(k for k, n in counts.items() if n > 1)
        assert not twice, f"requested more than once while settling: {twice}"
        half = [h for r in settle_ticks for h in half_updated(graph.faults.graph, r)]
        assert not half, f"built on a half-updated input: {half}"
        errors = graph.provenance_errors()
        assert not errors, f"built before an input it reads changed: {errors}"
        alive = graph.instance.get_run_records(
            RunsFilter(
                statuses=[
                    DagsterRunStatus.QUEUED,
                    DagsterRunStatus.NOT_STARTED,
                    DagsterRunStatus.STARTING,
                    DagsterRunStatus.STARTED,
                ]
            )
        )
        assert not alive, f"runs left in progress: {[r.dagster_run.run_id for r in alive]}"
    except AssertionError as error:
        raise AssertionError(
            f"seed {seed} ({steps} operations): {error}\n  " + "\n  ".join(log)
        ) from None
    return log


@pytest.mark.parametrize("seed", SEEDS + [1000 + i for i in range(EXTRA)])
def test_random_operations_settle_to_the_truth(graph, seed):
    log = check_sequence(graph, seed, STEPS)
    print(f"seed {seed}: {len(log)} operations and settles\n  " + "\n  ".join(log))
