"""Item 5: does the repair rule request exactly the partitions that contain a repaired day?

On a small generated project whose every partition of every partitioned model is materialized
(reported into a Dagster instance, no dbt runs; partitions start HISTORY_DAYS before today),
each trial repairs one random day of one random daily model, then lets the automation settle:
evaluate, report what it requested as materialized, evaluate again, until it requests nothing.

The truth is computed independently of Dagster's partition mappings, from the generator's plan
and calendar arithmetic: every partitioned model downstream of the repaired one (following the
plan's parents) has its partition that contains the day rebuilt — the day itself for a daily
model, the Monday of its week for a weekly one, the first of its month for a monthly one — as
long as that partition exists (it starts on or after the first partition and its window has
ended in the partition time zone). Requested vs truth gives precision and recall; both must be
1.0, and no partition may be requested twice in one trial.

    python -m bench.precision --trials 20
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.common import DEFAULT_WORK_DIR, OUT_DIR, prepare_project, progress, write_json
from bench.generate_project import Kind, ModelSpec, plan_project

MODELS = 20
HISTORY_DAYS = 300
TIMEZONE = "Asia/Seoul"
# A share of the trials repairs a recent day, whose week or month may not have ended yet.
RECENT_SHARE = 0.3
RECENT_DAYS = 45
MAX_TICKS = 10

AssetPartition = tuple[str, str]


@dataclass(frozen=True)
class Repair:
    model: str
    day: date


# --- the truth: calendar arithmetic on the plan --------------------------------------------


def descendants(specs: Sequence[ModelSpec], model: str) -> set[str]:
    """Every model downstream of `model` in the plan (its children, their children, ...)."""
    children: dict[str, list[str]] = {}
    for spec in specs:
        for parent in spec.parents:
            children.setdefault(parent, []).append(spec.name)
    found: set[str] = set()
    todo = list(children.get(model, ()))
    while todo:
        name = todo.pop()
        if name not in found:
            found.add(name)
            todo.extend(children.get(name, ()))
    return found


def containing_partition(kind: Kind, day: date, first: date, today: date) -> str | None:
    """The key of the partition of a `kind` model that contains `day`, if it exists: it starts
    on or after the first partition and has ended by `today` (in the partition time zone)."""
    if kind is Kind.DAILY:
        start, end = day, day + timedelta(days=1)
    elif kind is Kind.WEEKLY:
        start = day - timedelta(days=day.weekday())  # weeks start on Monday
        end = start + timedelta(days=7)
    elif kind is Kind.MONTHLY:
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        return None  # unpartitioned: not the rule's business
    if start < first or end > today:
        return None
    return start.isoformat()


def true_partitions(
    specs: Sequence[ModelSpec], repairs: Iterable[Repair], first: date, today: date
) -> set[AssetPartition]:
    """The partitions that truly contain the repaired days, downstream of the repaired models."""
    by_name = {s.name: s for s in specs}
    truth: set[AssetPartition] = set()
    for repair in repairs:
        for name in descendants(specs, repair.model):
            key = containing_partition(by_name[name].kind, repair.day, first, today)
            if key is not None:
                truth.add((name, key))
    return truth


def precision_recall(
    requested: set[AssetPartition], truth: set[AssetPartition]
) -> tuple[float, float]:
    """Precision (what was requested is true) and recall (what is true was requested); an
    empty side counts as perfect, as in "nothing to request, nothing requested"."""
    hits = len(requested & truth)
    precision = hits / len(requested) if requested else 1.0
    recall = hits / len(truth) if truth else 1.0
    return precision, recall


def pick_repairs(
    specs: Sequence[ModelSpec], n: int, first: date, last: date, seed: int = 7
) -> list[Repair]:
    """`n` random (daily model, day) pairs; a share of them among the most recent days."""
    rng = random.Random(seed)
    dailies = sorted(s.name for s in specs if s.kind is Kind.DAILY)
    span = (last - first).days
    repairs = []
    for i in range(n):
        recent = i < round(n * RECENT_SHARE)
        back = rng.randrange(RECENT_DAYS) if recent else rng.randrange(span + 1)
        repairs.append(Repair(rng.choice(dailies), last - timedelta(days=back)))
    return repairs


# --- the automation: Dagster evaluates the rule ----------------------------------------------


def run_trials(trials: int, models: int, work: Path) -> dict[str, Any]:
    import os

    project = prepare_project(models, work)
    today = datetime.now(ZoneInfo(TIMEZONE)).date()
    first = today - timedelta(days=HISTORY_DAYS)
    os.environ.update(project.flower_env({"FLOWER_PARTITION_START": first.isoformat()}))
    for key in [k for k in os.environ if k.startswith(("DAGSTER_", "DBT_TARGET"))]:
        os.environ.pop(key)

    from dagster import AssetMaterialization, DagsterInstance
    from dagster import evaluate_automation_conditions as evaluate

    from flower_dagster.defs import build_definitions
    from flower_dagster.partitions import GRAIN_TAG, UNPARTITIONED

    specs = plan_project(models, project.seed)
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    order = {k: i for i, k in enumerate(graph.toposorted_asset_keys)}
    assets = [k for k in graph.toposorted_asset_keys if graph.get(k).is_materializable]
    home = tempfile.mkdtemp(prefix="flower-precision-", dir=_tmpfs())
    started = time.perf_counter()
    try:
        instance = DagsterInstance.local_temp(tempdir=home)
        events = 0
        for key in assets:  # parents before children: the history as runs would leave it
            node = graph.get(key)
            if node.tags.get(GRAIN_TAG) == UNPARTITIONED:
                instance.report_runless_asset_event(AssetMaterialization(key))
                events += 1
                continue
            assert node.partitions_def is not None
            for partition in node.partitions_def.get_partition_keys():
                instance.report_runless_asset_event(AssetMaterialization(key, partition=partition))
                events += 1
        seeded = time.perf_counter() - started
        progress(f"  precision: {events} materializations reported in {seeded:.0f}s")
        cursor = evaluate(defs=defs, instance=instance).cursor  # a fresh cursor requests nothing
        last = date.fromisoformat(
            graph.get(
                next(k for k in assets if graph.get(k).tags.get(GRAIN_TAG) == "daily")
            ).partitions_def.get_last_partition_key()  # type: ignore[union-attr]
        )
        results = []
        for repair in pick_repairs(specs, trials, first, last):
            instance.report_runless_asset_event(
                AssetMaterialization(repair.model, partition=repair.day.isoformat())
            )
            counts: Counter[AssetPartition] = Counter()
            ticks = 0
            while True:
                ticks += 1
                if ticks > MAX_TICKS:
                    raise RuntimeError(f"still requesting after {MAX_TICKS} ticks: {repair}")
                result = evaluate(defs=defs, instance=instance, cursor=cursor)
                cursor = result.cursor
                requested = [
                    (key, partition)
                    for key in assets
                    for partition in result.get_requested_partitions(key)
                ]
                if not requested:
                    break
                for key, partition in sorted(requested, key=lambda kp: order[kp[0]]):
                    counts[(key.to_user_string(), str(partition))] += 1
                    instance.report_runless_asset_event(
                        AssetMaterialization(key, partition=partition)
                    )
            truth = true_partitions(specs, [repair], first, today)
            precision, recall = precision_recall(set(counts), truth)
            results.append(
                {
                    "model": repair.model,
                    "day": repair.day.isoformat(),
                    "requested": len(counts),
                    "true": len(truth),
                    "precision": precision,
                    "recall": recall,
                    "requested_twice": sorted(f"{a} {p}" for (a, p), n in counts.items() if n > 1),
                    "false_positives": sorted(f"{a} {p}" for a, p in set(counts) - truth),
                    "missed": sorted(f"{a} {p}" for a, p in truth - set(counts)),
                    "ticks": ticks,
                }
            )
        instance.dispose()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    requested_all = sum(r["requested"] for r in results)
    true_all = sum(r["true"] for r in results)
    hits = sum(r["requested"] - len(r["false_positives"]) for r in results)
    return {
        "models": models,
        "counts": project.counts,
        "first_partition": first.isoformat(),
        "today": today.isoformat(),
        "trials": results,
        "requested": requested_all,
        "true": true_all,
        "precision": hits / requested_all if requested_all else 1.0,
        "recall": hits / true_all if true_all else 1.0,
        "requested_twice": sum(len(r["requested_twice"]) for r in results),
    }


def _tmpfs() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() else None


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--models", type=int, default=MODELS)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--out", type=Path, default=OUT_DIR / "precision.json")
    args = parser.parse_args(argv)
    result = run_trials(args.trials, args.models, args.work)
    write_json(args.out, result)
    summary_line = {k: result[k] for k in ("requested", "true", "precision", "recall")}
    print(json.dumps(summary_line))
    progress(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
