"""`make bench`: every benchmark of docs/benchmarks.md, one after another, then the document.

Steps (a progress line each; a fresh process per measurement) and the goals of issue 22
(lint: issue 26) that docs/benchmarks.md judges them by (bench/report.py `goal_rows`):

  1 load           code location load: <= 1.2x stock `@dbt_assets` at 1,000 and 3,000 models,
                   `dagster definitions validate` under 15 s at 3,000 (bench/load.py)
  2 tick           automation tick on PostgreSQL as deployed, 1,000 models: the repair rule on
                   the pooled storage faster than stock `eager()` on dagster-postgres and than
                   `eager()` on the pooled storage; make dev's SQLite for information
                   (bench/tick.py)
  3 partition_run  one daily partition run: no re-parse, faster than stock `--vars`
                   (bench/partition_run.py)
  4 backfill       365-day backfill: one Dagster run faster than one run per day; plain dbt
                   for information (bench/backfill.py)
  5 precision      repair precision and recall 1.0 (bench/precision.py)
  6 lint           `flower lint` at least 20x faster than sqlfluff (bench/lint.py)

Writes bench/out/<step>.json and bench/out/bench.json, docs/benchmarks.md and
docs/images/bench_*.png. Generated projects are parsed once and kept in FLOWER_BENCH_WORK
(default /tmp/flower-bench) for the next run.

    python -m bench.run_all                   # what `make bench` runs (~15 minutes)
    python -m bench.run_all --quick           # 200 models, one repeat: a smoke run
    python -m bench.run_all --steps load,tick # some steps; the others are kept from bench.json
    python -m bench.run_all --render-only     # the document again from bench/out/bench.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import backfill, load, tick
from bench.common import (
    DEFAULT_WORK_DIR,
    OUT_DIR,
    REPO_ROOT,
    load_average,
    machine,
    progress,
    reference_seconds,
    run_child,
    write_json,
)
from bench.report import draw_figures, render_markdown

STEPS = ("load", "tick", "partition_run", "backfill", "precision", "lint")
DOC = REPO_ROOT / "docs" / "benchmarks.md"
# Before/after figures of the product optimisations of this benchmark's issue, measured once
# (bench/out/ is not kept in git; this file is).
OPTIMISATION = REPO_ROOT / "bench" / "optimisation.json"
IMAGES = REPO_ROOT / "docs" / "images"


@dataclass(frozen=True)
class Plan:
    """Sizes and repeats, chosen to keep `make bench` under 15 minutes on 2 cores."""

    load_repeats: dict[int, int] = field(default_factory=lambda: {200: 1, 1000: 3, 3000: 5})
    # At 1,000 models two repeats of each: the two conditions can be close.
    tick_repeats: dict[int, int] = field(default_factory=lambda: {1000: 2, 3000: 1})
    # At 1,000 models both conditions (bench/tick.py VARIANTS); at 3,000 only the repair rule
    # as it ships (its goal).
    tick_variants: dict[int, tuple[str, ...]] = field(
        default_factory=lambda: {1000: tuple(tick.VARIANTS), 3000: ("rule",)}
    )
    # PostgreSQL as deployed (bench/tick.py POSTGRES_VARIANTS: stock `eager()` on
    # dagster-postgres, `eager()` and the repair rule on the pooled storage), one repeat each.
    tick_postgres_models: tuple[int, ...] = (1000,)
    tick_postgres_repeats: int = 1
    partition_run_models: int = 1000
    partition_run_repeats: int = 2
    partition_run_repeats_vars: int = 2
    backfill_models: int = 200
    backfill_repeats: int = 3
    precision_trials: int = 16
    lint_models: int = 1000
    lint_runs: int = 3
    sqlfluff_runs: int = 1

    def describe(self) -> str:
        def sizes(repeats: dict[int, int]) -> str:
            return ", ".join(f"{n} at {m:,} models" for m, n in repeats.items())

        return (
            f"load {sizes(self.load_repeats)}; tick {sizes(self.tick_repeats)}"
            " (at 3,000 models the repair rule as it ships only; on PostgreSQL "
            f"{self.tick_postgres_repeats} at "
            f"{', '.join(f'{m:,}' for m in self.tick_postgres_models) or 'no'} models); "
            "partition run "
            f"{self.partition_run_repeats} (stock --vars {self.partition_run_repeats_vars}); "
            f"backfill {self.backfill_repeats} (per-day: {backfill.PER_DAY_RUNS} days); "
            f"precision {self.precision_trials} repaired days; lint {self.lint_runs} "
            f"(sqlfluff {self.sqlfluff_runs})"
        )


QUICK = Plan(
    load_repeats={200: 1},
    tick_repeats={200: 1},
    tick_variants={200: ("eager", "rule")},
    tick_postgres_models=(),
    partition_run_models=200,
    partition_run_repeats=1,
    partition_run_repeats_vars=1,
    backfill_models=200,
    backfill_repeats=1,
    precision_trials=4,
    lint_models=200,
    lint_runs=1,
    sqlfluff_runs=1,
)


def run_step(step: str, plan: Plan, work: Path) -> dict[str, Any]:
    if step == "load":
        return load.run(list(plan.load_repeats), plan.load_repeats, work)
    if step == "tick":
        return tick.run(
            list(plan.tick_repeats),
            plan.tick_repeats,
            work,
            plan.tick_variants,
            plan.tick_postgres_models,
            plan.tick_postgres_repeats,
        )
    if step == "backfill":
        return backfill.run(plan.backfill_models, plan.backfill_repeats, work)
    if step == "precision":
        # In its own process: it builds Dagster definitions for its project in-process.
        out = OUT_DIR / "precision.json"
        _bench_child(
            ["bench.precision", "--trials", str(plan.precision_trials), "--out", str(out)], work
        )
        return json.loads(out.read_text())
    if step == "partition_run":
        out = OUT_DIR / f"partition_run_{plan.partition_run_models}.json"
        _bench_child(
            [
                "bench.partition_run",
                "--models",
                str(plan.partition_run_models),
                "--repeats",
                str(plan.partition_run_repeats),
                "--repeats-vars",
                str(plan.partition_run_repeats_vars),
                "--only",
                "a,b",
                "--out",
                str(out),
            ],
            work,
        )
        return json.loads(out.read_text())
    if step == "lint":
        _bench_child(
            [
                "bench.lint",
                "--models",
                str(plan.lint_models),
                "--runs",
                str(plan.lint_runs),
                "--sqlfluff-runs",
                str(plan.sqlfluff_runs),
            ],
            work,
        )
        return json.loads((OUT_DIR / f"lint_{plan.lint_models}.json").read_text())
    raise ValueError(f"unknown step {step!r}; allowed: {', '.join(STEPS)}")


def _bench_child(module_args: Sequence[str], work: Path) -> None:
    from bench.common import clean_env

    result = run_child(
        [sys.executable, "-m", *module_args],
        env=clean_env({"FLOWER_BENCH_WORK": str(work)}),
        timeout=1800,
    )
    for line in result.stdout.splitlines():
        if line.startswith("["):  # the child's own progress lines
            progress(f"  {line.split('] ', 1)[-1]}")


def _optional_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def render(results: dict[str, Any]) -> None:
    DOC.write_text(render_markdown(results))
    images = draw_figures(results, IMAGES)
    progress(f"wrote {DOC.relative_to(REPO_ROOT)} and {len(images)} figures in docs/images/")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", default=",".join(STEPS), help="comma-separated steps")
    parser.add_argument("--quick", action="store_true", help="200 models, one repeat")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--render-only", action="store_true")
    args = parser.parse_args(argv)
    summary_path = OUT_DIR / "bench.json"
    previous = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    if args.render_only:
        render({**previous, "optimisation": _optional_json(OPTIMISATION)})
        return 0
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown:
        parser.error(f"unknown step(s) {', '.join(unknown)}; allowed: {', '.join(STEPS)}")
    plan = QUICK if args.quick else Plan()
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict[str, Any] = {
        **{k: v for k, v in previous.items() if k in STEPS and k not in steps},
        "optimisation": _optional_json(OPTIMISATION),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "load_average_start": load_average(),
        "reference_start": reference_seconds(),
        "plan": {"repeats_text": plan.describe(), "quick": args.quick},
    }
    progress(
        f"make bench: steps {', '.join(steps)}; load average "
        f"{'/'.join(f'{v:.2f}' for v in results['load_average_start'] or ())} on "
        f"{results['machine']['cpus']} CPUs; work dir {args.work}"
    )
    for number, step in enumerate(steps, 1):
        progress(f"step {number}/{len(steps)}: {step}")
        step_started = time.perf_counter()
        # Kept with the step's figures: a later `--steps` run keeps them and says when.
        results[step] = {**run_step(step, plan, args.work), "taken": results["started"]}
        write_json(OUT_DIR / f"{step}.json", results[step])
        progress(f"step {step} done in {time.perf_counter() - step_started:.0f}s")
    results["load_average_end"] = load_average()
    results["reference_end"] = reference_seconds()
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["full_run"] = (
        {"started": results["started"], "seconds": results["seconds"]}
        if set(steps) == set(STEPS)
        else previous.get("full_run")
    )
    write_json(summary_path, results)
    render(results)
    progress(f"make bench: done in {results['seconds'] / 60:.1f} minutes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
