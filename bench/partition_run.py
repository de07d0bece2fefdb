"""How should a partition run hand its time window to dbt? Time one daily partition run.

In a temporary folder: generate a project of N models (bench.generate_project), load the raw
table into DuckDB, build one top-layer daily model and its ancestors over the whole history,
run `dbt parse` once, then time `dbt build --select <model>` for one daily window, each option
repeated on successive days (a new window every run):

  a  stock    dbt subprocess, window in `--vars` (dbt re-parses: the vars changed)
  b  flower   dbt subprocess, window in FLOWER_WINDOW_START/END, partial_parse.msgpack of the
              one `dbt parse` copied into a fresh target path per run (as dagster-dbt does)
  c  inproc   one Python process, `dbtRunner(manifest=<parsed once>).invoke(...)`, window in
              the environment (c-env) or in `--vars` (c-vars)

References: `dbt parse --no-partial-parse` (full parse) and `dbt parse` with the msgpack (no
changes), each in a fresh process. Every run's window first has its rows poisoned; after the
run its rows must equal a direct query of the raw table (and the whole table must still equal
the full expected rows). Whether dbt re-parsed comes from its own log.

    python -m bench.partition_run --models 1000 --repeats 3 --repeats-vars 2 --out FILE.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from bench.generate_project import (
    DAILY_LAYERS,
    Kind,
    ModelSpec,
    ancestors,
    expected_rows_sql,
    generate_project,
    plan_project,
    raw_events_sql,
)

# The names flower_dagster.partitions hands dbt (kept literal: the bench imports no Dagster).
WINDOW_START_ENV = "FLOWER_WINDOW_START"
WINDOW_END_ENV = "FLOWER_WINDOW_END"
WINDOW_FORMAT = "%Y-%m-%d %H:%M:%S"

DATA_START = datetime(2024, 1, 1)
DATA_DAYS = 60
ROWS_PER_DAY = 96
FIRST_RUN_DAY = datetime(2024, 1, 8)
RUN_TIMEOUT_S = 600
POISON_AMOUNT = -1
CANARY_AMOUNT = -2

PARSE_EVENTS = frozenset(
    {
        "UnableToPartialParse",
        "PartialParsingSkipParsing",
        "PartialParsingNotEnabled",
        "PartialParsingEnabled",
    }
)

_T0 = time.perf_counter()


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - _T0:7.1f}s] {message}", flush=True)


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @property
    def start_text(self) -> str:
        return self.start.strftime(WINDOW_FORMAT)

    @property
    def end_text(self) -> str:
        return self.end.strftime(WINDOW_FORMAT)

    def env(self) -> dict[str, str]:
        return {WINDOW_START_ENV: self.start_text, WINDOW_END_ENV: self.end_text}

    def vars_arg(self) -> str:
        return json.dumps(
            {"flower_window_start": self.start_text, "flower_window_end": self.end_text}
        )


# The last day of data: no run's window, the check that a run rewrote only its window.
CANARY = Window(DATA_START + timedelta(days=DATA_DAYS - 1), DATA_START + timedelta(days=DATA_DAYS))


def daily_windows(first: datetime, n: int) -> list[Window]:
    return [Window(first + timedelta(days=i), first + timedelta(days=i + 1)) for i in range(n)]


@dataclass
class RunResult:
    window: str
    seconds: float
    parse: str  # what dbt's log says about parsing
    ok: bool  # dbt succeeded
    correct: bool | None = None  # the window's rows equal the direct query of the raw table
    outside_untouched: bool | None = None  # the canary day kept its spoiled rows


@dataclass
class OptionResult:
    key: str
    label: str
    runs: list[RunResult] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def median_seconds(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def reparsed(self) -> bool:
        return any(r.parse.startswith(("full", "partial")) for r in self.runs)

    @property
    def correct(self) -> bool | None:
        if any(r.correct is None for r in self.runs):
            return None  # a reference step, nothing to check
        return all(r.ok and r.correct and r.outside_untouched for r in self.runs)

    def summary(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "median_seconds": round(self.median_seconds, 3),
            "reparsed": self.reparsed,
            "correct": self.correct,
        }


def parse_outcome(log_text: str) -> str:
    """What a dbt log says about parsing: full (why), partial (files), skipped, or none."""
    for line in log_text.splitlines():
        if "Unable to do partial parsing because" in line:
            reason = line.split("Unable to do partial parsing because", 1)[1]
            return "full: " + reason.split('"', 1)[0].strip().rstrip(".")
    if "Partial parsing not enabled" in log_text:
        return "full: partial parsing not enabled"
    if "Partial parsing enabled, no changes found" in log_text:
        return "skipped: partial parse, no changes"
    for line in log_text.splitlines():
        if "Partial parsing enabled:" in line:
            return "partial: " + line.split("Partial parsing enabled:", 1)[1].split('"', 1)[0]
    return "none"


# --- the warehouse -----------------------------------------------------------------------


def load_raw_data(db_path: Path) -> int:
    with duckdb.connect(str(db_path)) as con:
        con.execute(raw_events_sql(DATA_START, DATA_DAYS, ROWS_PER_DAY))
        return con.execute("select count(*) from raw.events").fetchone()[0]


def poison(db_path: Path, model: str, windows: Sequence[Window]) -> None:
    """Spoil the rows of each window, so only a run that rewrites them can pass the check.

    The canary day, outside every run's window, is spoiled too: a run that rewrote more than
    its window (say, ignored the window and rebuilt the whole table) would repair it.
    """
    with duckdb.connect(str(db_path)) as con:
        for w, amount in [*((w, POISON_AMOUNT) for w in windows), (CANARY, CANARY_AMOUNT)]:
            con.execute(
                f"update main.{model} set amount = {amount} where event_ts >= ? and event_ts < ?",
                [w.start, w.end],
            )


def canary_untouched(db_path: Path, model: str) -> bool:
    sql = (
        f"select count(*) from main.{model} where amount = {CANARY_AMOUNT} "
        "and event_ts >= ? and event_ts < ?"
    )
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(sql, [CANARY.start, CANARY.end]).fetchone()[0] == ROWS_PER_DAY


def restore_canary(db_path: Path, spec: ModelSpec) -> None:
    expected = expected_rows_sql(spec, CANARY.start_text, CANARY.end_text)
    with duckdb.connect(str(db_path)) as con:
        con.execute(
            f"update main.{spec.name} as m set amount = e.amount from ({expected}) as e "
            "where e.id = m.id"
        )


def _diff_count(con: duckdb.DuckDBPyConnection, actual: str, expected: str) -> int:
    sql = (
        f"select (select count(*) from (({actual}) except all ({expected}))) "
        f"+ (select count(*) from (({expected}) except all ({actual})))"
    )
    return con.execute(sql).fetchone()[0]


def window_correct(db_path: Path, spec: ModelSpec, window: Window) -> bool:
    actual = (
        "select id, customer_id, category, amount, event_ts from main."
        f"{spec.name} where event_ts >= timestamp '{window.start_text}' "
        f"and event_ts < timestamp '{window.end_text}'"
    )
    expected = expected_rows_sql(spec, window.start_text, window.end_text)
    with duckdb.connect(str(db_path), read_only=True) as con:
        n_actual = con.execute(f"select count(*) from ({actual})").fetchone()[0]
        return n_actual == ROWS_PER_DAY and _diff_count(con, actual, expected) == 0


def table_correct(db_path: Path, spec: ModelSpec) -> bool:
    actual = f"select id, customer_id, category, amount, event_ts from main.{spec.name}"
    with duckdb.connect(str(db_path), read_only=True) as con:
        return _diff_count(con, actual, expected_rows_sql(spec)) == 0


# --- dbt ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bench:
    project: Path
    db_path: Path
    work: Path
    baseline_msgpack: Path

    @property
    def dbt(self) -> str:
        return str(Path(sys.executable).parent / "dbt")

    def env(self, target: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment dagster-dbt gives a dbt subprocess, minus any window."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWER_", "DBT_"))}
        env.update(
            {
                "FLOWER_DUCKDB_PATH": str(self.db_path),
                "DBT_PROJECT_DIR": str(self.project),
                "DBT_PROFILES_DIR": str(self.project),
                "DBT_TARGET_PATH": str(target),
                "DBT_LOG_PATH": str(target),
                "DBT_LOG_FORMAT": "json",
                "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra or {})
        return env

    def fresh_target(self, name: str, with_msgpack: bool) -> Path:
        target = self.work / "targets" / name
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        if with_msgpack:
            shutil.copy(self.baseline_msgpack, target / "partial_parse.msgpack")
        return target

    def run_dbt(
        self, args: Sequence[str], target: Path, extra_env: dict[str, str] | None = None
    ) -> tuple[float, bool, str]:
        """Run dbt once as a subprocess: (wall seconds, succeeded, what it said about parsing)."""
        started = time.perf_counter()
        proc = subprocess.run(
            [self.dbt, *args],
            cwd=self.project,
            env=self.env(target, extra_env),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
        )
        seconds = time.perf_counter() - started
        log_file = target / "dbt.log"
        log_text = proc.stdout + (log_file.read_text() if log_file.exists() else "")
        if proc.returncode != 0:
            tail = "\n".join(proc.stdout.splitlines()[-15:])
            progress(f"  dbt {' '.join(args)} failed ({proc.returncode}):\n{tail}\n{proc.stderr}")
        return seconds, proc.returncode == 0, parse_outcome(log_text)


def run_subprocess_option(
    bench: Bench,
    spec: ModelSpec,
    key: str,
    label: str,
    windows: Sequence[Window],
    dbt_args: Callable[[Window], tuple[list[str], dict[str, str]]],
) -> OptionResult:
    option = OptionResult(key, label)
    poison(bench.db_path, spec.name, windows)
    for i, window in enumerate(windows):
        args, extra_env = dbt_args(window)
        target = bench.fresh_target(f"{key}-{i}", with_msgpack=True)
        seconds, ok, parse = bench.run_dbt(args, target, extra_env)
        correct = ok and window_correct(bench.db_path, spec, window)
        untouched = canary_untouched(bench.db_path, spec.name)
        option.runs.append(
            RunResult(window.start_text, round(seconds, 3), parse, ok, correct, untouched)
        )
        progress(
            f"  {key} {window.start_text[:10]}: {seconds:.2f}s, {parse}, "
            f"window rows correct={correct}, outside untouched={untouched}"
        )
    restore_canary(bench.db_path, spec)
    return option


def run_inprocess_option(
    bench: Bench, spec: ModelSpec, mode: str, windows: Sequence[Window]
) -> OptionResult:
    """Option (c): one worker process parses once, then invokes dbt with that manifest.

    The worker holds the warehouse open, so the rows are checked once it has exited: each
    window against the raw table, and the canary once for all of the worker's runs.
    """
    where = "env" if mode == "env" else "--vars"
    option = OptionResult(f"c-{mode}", f"in-process dbtRunner(manifest), window in {where}")
    poison(bench.db_path, spec.name, windows)
    worker_spec = {
        "project": str(bench.project),
        "model": spec.name,
        "target_base": str(bench.work / "targets"),
        "baseline_msgpack": str(bench.baseline_msgpack),
        "runs": [{"mode": mode, "start": w.start_text, "end": w.end_text} for w in windows],
    }
    spec_path = bench.work / f"inprocess_{mode}.json"
    out_path = bench.work / f"inprocess_{mode}_out.json"
    spec_path.write_text(json.dumps(worker_spec))
    target = bench.fresh_target(f"c-{mode}-worker", with_msgpack=False)
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bench.partition_run", "--inprocess-worker", str(spec_path)],
        cwd=Path(__file__).resolve().parents[1],
        env={**bench.env(target), "FLOWER_BENCH_WORKER_OUT": str(out_path)},
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S * 2,
    )
    worker_seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"in-process worker failed:\n{proc.stdout[-3000:]}\n{proc.stderr}")
    result = json.loads(out_path.read_text())
    untouched = canary_untouched(bench.db_path, spec.name)
    for run, window in zip(result["runs"], windows, strict=True):
        correct = run["ok"] and window_correct(bench.db_path, spec, window)
        option.runs.append(
            RunResult(
                run["start"], round(run["seconds"], 3), run["parse"], run["ok"], correct, untouched
            )
        )
        progress(
            f"  c-{mode} {run['start'][:10]}: {run['seconds']:.2f}s, {run['parse']}, "
            f"window rows correct={correct}, outside untouched={untouched}"
        )
    restore_canary(bench.db_path, spec)
    option.notes.update(
        {
            "import_dbt_seconds": round(result["import_seconds"], 3),
            "load_manifest_seconds": round(result["parse_seconds"], 3),
            "load_manifest_parse": result["parse_parse"],
            "worker_wall_seconds": round(worker_seconds, 3),
        }
    )
    return option


def inprocess_worker(spec_path: Path) -> None:
    """Body of option (c), run in its own process so timings start from a clean interpreter."""
    spec = json.loads(spec_path.read_text())
    started = time.perf_counter()
    from dbt.cli.main import dbtRunner

    import_seconds = time.perf_counter() - started
    messages: list[str] = []

    def on_event(event: Any) -> None:
        if event.info.name in PARSE_EVENTS:
            messages.append(event.info.msg)

    base = Path(spec["target_base"])
    common = ["--project-dir", spec["project"], "--profiles-dir", spec["project"]]

    def target(name: str) -> list[str]:
        path = base / name
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        if name == "c-parse":
            shutil.copy(spec["baseline_msgpack"], path / "partial_parse.msgpack")
        return ["--target-path", str(path), "--log-path", str(path)]

    for name in (WINDOW_START_ENV, WINDOW_END_ENV):
        os.environ.pop(name, None)
    started = time.perf_counter()
    parsed = dbtRunner(callbacks=[on_event]).invoke(["parse", *common, *target("c-parse")])
    parse_seconds = time.perf_counter() - started
    if not parsed.success:
        raise RuntimeError(f"parse failed: {parsed.exception}")
    parse_parse = parse_outcome("\n".join(messages))
    runner = dbtRunner(manifest=parsed.result, callbacks=[on_event])
    runs = []
    for i, run in enumerate(spec["runs"]):
        window = Window(
            datetime.strptime(run["start"], WINDOW_FORMAT),
            datetime.strptime(run["end"], WINDOW_FORMAT),
        )
        args = ["build", "--select", spec["model"], *common, *target(f"c-{run['mode']}-{i}")]
        if run["mode"] == "env":
            os.environ.update(window.env())
        else:
            for name in (WINDOW_START_ENV, WINDOW_END_ENV):
                os.environ.pop(name, None)
            args += ["--vars", window.vars_arg()]
        messages.clear()
        started = time.perf_counter()
        result = runner.invoke(args)
        seconds = time.perf_counter() - started
        runs.append(
            {
                **run,
                "seconds": seconds,
                "ok": bool(result.success),
                "parse": "none: preloaded manifest"
                if not messages
                else parse_outcome("\n".join(messages)),
            }
        )
    out = {
        "import_seconds": import_seconds,
        "parse_seconds": parse_seconds,
        "parse_parse": parse_parse,
        "runs": runs,
    }
    Path(os.environ["FLOWER_BENCH_WORKER_OUT"]).write_text(json.dumps(out))


# --- the benchmark -----------------------------------------------------------------------


def pick_model(specs: Sequence[ModelSpec]) -> tuple[ModelSpec, set[str]]:
    """A top-layer daily model (deepest chain) with the fewest ancestors to build."""
    dailies = [s for s in specs if s.kind is Kind.DAILY]
    top_layer = max(s.layer for s in dailies)
    top = [s for s in dailies if s.layer == top_layer]
    best = min(top, key=lambda s: (len(ancestors(specs, s.name)), s.name))
    return best, ancestors(specs, best.name)


def reference_parse(bench: Bench, key: str, label: str, repeats: int, full: bool) -> OptionResult:
    option = OptionResult(key, label)
    for i in range(repeats):
        target = bench.fresh_target(f"{key}-{i}", with_msgpack=not full)
        args = ["parse", "--no-partial-parse"] if full else ["parse"]
        seconds, ok, parse = bench.run_dbt(args, target)
        if not ok:
            raise RuntimeError(f"dbt {' '.join(args)} failed")
        option.runs.append(RunResult("-", round(seconds, 3), parse, ok))
        progress(f"  {key}: {seconds:.2f}s, {parse}")
    return option


ALL_OPTIONS = ("a", "b", "c-env", "c-vars", "parse-full", "parse-partial")


def run_benchmark(
    n_models: int,
    repeats: int,
    repeats_vars: int,
    seed: int,
    work: Path,
    only: Sequence[str] = ALL_OPTIONS,
) -> dict[str, Any]:
    project = work / "project"
    progress(f"generate {n_models} models in {project}")
    started = time.perf_counter()
    counts = generate_project(project, n_models, seed)
    generate_seconds = time.perf_counter() - started
    specs = plan_project(n_models, seed)
    spec, upstream = pick_model(specs)
    progress(f"  {counts} in {generate_seconds:.2f}s; model {spec.name}, {len(upstream)} ancestors")

    db_path = work / "warehouse.duckdb"
    raw_rows = load_raw_data(db_path)
    progress(f"load raw data: {raw_rows} rows ({DATA_DAYS} days x {ROWS_PER_DAY})")

    bench = Bench(project, db_path, work, work / "baseline_partial_parse.msgpack")
    target = bench.fresh_target("initial-parse", with_msgpack=False)
    seconds, ok, parse = bench.run_dbt(["parse"], target)
    if not ok:
        raise RuntimeError("initial dbt parse failed")
    shutil.copy(target / "partial_parse.msgpack", bench.baseline_msgpack)
    progress(f"initial dbt parse: {seconds:.2f}s, {parse}")
    steps: dict[str, Any] = {
        "generate_seconds": round(generate_seconds, 3),
        "initial_parse": {"seconds": round(seconds, 3), "parse": parse},
    }

    target = bench.fresh_target("upstream", with_msgpack=True)
    seconds, ok, parse = bench.run_dbt(["run", "--select", f"+{spec.name}"], target)
    if not ok or not table_correct(db_path, spec):
        raise RuntimeError(f"building +{spec.name} over the whole history failed")
    steps["build_upstream"] = {"seconds": round(seconds, 3), "parse": parse}
    progress(f"build +{spec.name} ({len(upstream) + 1} models, whole history): {seconds:.2f}s")

    days = iter(daily_windows(FIRST_RUN_DAY, repeats_vars * 2 + repeats * 3))

    def take(n: int) -> list[Window]:
        return [next(days) for _ in range(n)]

    def stock_args(w: Window) -> tuple[list[str], dict[str, str]]:
        return ["build", "--select", spec.name, "--vars", w.vars_arg()], {}

    def flower_args(w: Window) -> tuple[list[str], dict[str, str]]:
        return ["build", "--select", spec.name], w.env()

    options: list[OptionResult] = []
    if "a" in only:
        progress(f"(a) stock: --vars window, subprocess, {repeats_vars} runs")
        options.append(
            run_subprocess_option(
                bench, spec, "a", "subprocess, window in --vars", take(repeats_vars), stock_args
            )
        )
    if "b" in only:
        progress(
            f"(b) flower: env window, subprocess + copied partial_parse.msgpack, {repeats} runs"
        )
        options.append(
            run_subprocess_option(
                bench,
                spec,
                "b",
                "subprocess + partial_parse.msgpack, window in env",
                take(repeats),
                flower_args,
            )
        )
    if "c-env" in only:
        progress(f"(c) in-process dbtRunner(manifest), env window, {repeats} runs")
        options.append(run_inprocess_option(bench, spec, "env", take(repeats)))
    if "c-vars" in only:
        progress(f"(c) in-process dbtRunner(manifest), --vars window, {repeats_vars} runs")
        options.append(run_inprocess_option(bench, spec, "vars", take(repeats_vars)))
    if "parse-full" in only:
        progress(f"reference: dbt parse --no-partial-parse, {repeats_vars} runs")
        options.append(
            reference_parse(
                bench, "parse-full", "dbt parse --no-partial-parse", repeats_vars, full=True
            )
        )
    if "parse-partial" in only:
        progress(f"reference: dbt parse with partial_parse.msgpack (no changes), {repeats} runs")
        options.append(
            reference_parse(
                bench, "parse-partial", "dbt parse + partial_parse.msgpack", repeats, full=False
            )
        )

    whole = table_correct(db_path, spec)
    progress(f"whole table {spec.name} equals the direct query over all raw rows: {whole}")
    return {
        "models": n_models,
        "seed": seed,
        "counts": counts,
        "model": spec.name,
        "model_layer": spec.layer,
        "daily_layers": DAILY_LAYERS,
        "model_ancestors": len(upstream),
        "raw_rows": raw_rows,
        "rows_per_window": ROWS_PER_DAY,
        "whole_table_correct": whole,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "dbt_core": _version("dbt-core"),
            "dbt_duckdb": _version("dbt-duckdb"),
        },
        "steps": steps,
        "options": [o.summary() for o in options],
    }


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def markdown_table(result: dict[str, Any]) -> str:
    lines = [
        f"{result['models']} models, one daily run of {result['model']} "
        f"({result['model_ancestors']} ancestors, {result['rows_per_window']} rows a day)",
        "",
        "| option | what | median s | runs | re-parsed | correct |",
        "| --- | --- | ---: | ---: | --- | --- |",
    ]
    for o in result["options"]:
        parses = sorted({r["parse"] for r in o["runs"]})
        correct = "-" if o["correct"] is None else ("yes" if o["correct"] else "NO")
        lines.append(
            f"| {o['key']} | {o['label']} | {o['median_seconds']:.2f} | {len(o['runs'])} | "
            f"{'yes' if o['reparsed'] else 'no'} ({'; '.join(parses)}) | {correct} |"
        )
    for o in result["options"]:
        if notes := o["notes"]:
            lines.append(
                f"\n{o['key']}, once per worker process: import dbt "
                f"{notes['import_dbt_seconds']:.2f}s, load manifest "
                f"{notes['load_manifest_seconds']:.2f}s ({notes['load_manifest_parse']})"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3, help="runs of (b) and (c)")
    parser.add_argument("--repeats-vars", type=int, help="runs of (a), c-vars and full parse")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, help="results JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    parser.add_argument(
        "--only",
        default=",".join(ALL_OPTIONS),
        help=f"comma-separated options to run (default: all of {','.join(ALL_OPTIONS)})",
    )
    parser.add_argument("--inprocess-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.inprocess_worker:
        inprocess_worker(args.inprocess_worker)
        return
    work = Path(tempfile.mkdtemp(prefix="flower-bench-"))
    try:
        only = [o.strip() for o in args.only.split(",") if o.strip()]
        unknown = sorted(set(only) - set(ALL_OPTIONS))
        if unknown:
            parser.error(
                f"unknown option(s) {', '.join(unknown)}; allowed: {', '.join(ALL_OPTIONS)}"
            )
        result = run_benchmark(
            args.models, args.repeats, args.repeats_vars or args.repeats, args.seed, work, only
        )
    finally:
        if args.keep:
            progress(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        progress(f"wrote {args.out}")
    print(markdown_table(result))


if __name__ == "__main__":
    main()
