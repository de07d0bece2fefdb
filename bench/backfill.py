"""Item 4: a 365-day backfill of one daily model on DuckDB, and what write-audit-publish costs.

Two copies of one generated project (bench/generate_project.py): as flower-dagster ships it,
with the write, audit, publish hooks of dbt_project/dbt_project.yml (docs/publish.md), and
"direct", the same models without them, whose runs write the table directly (the stock dbt way).
Raw events for the whole year in DuckDB; the model and its staging parent built once over the
whole history, so every contender overwrites existing partitions:

  flower         `dagster asset materialize --select M --partition-range FIRST...LAST` on the
                 flower-dagster code location: a real Dagster run in a fresh process (loading
                 the code location, the run, one `dbt build` over the whole range, one
                 materialization per partition), its instance make dev's on tmpfs
  flower_direct  the same on the direct copy: flower's cost of write, audit, publish
  build_wap      one `dbt build --select M` with the year's window, with the publish hooks
  per-day        one `dbt run --select M` per day (the Airflow way: one task per day), window
                 in the environment (no re-parse, the cheapest per-day form); PER_DAY_RUNS days
                 are timed and the year extrapolated from their median (direct copy)
  floor          one `dbt run --select M` with the year's window: the least any tool can do;
                 `dbt build` (run and tests) is timed too (direct copy)

After every contender the year's rows are checked against a direct query of the raw table, and
that it wrote through the audit relation (which the publish dropped) or, direct, never made one.

    python -m bench.backfill --models 200 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from bench.common import (
    DEFAULT_WORK_DIR,
    OUT_DIR,
    ChildResult,
    Project,
    bin_path,
    load_average,
    median,
    partition_start,
    prepare_project,
    progress,
    ratio,
    run_child,
    summary,
    write_json,
)
from bench.generate_project import Kind, ModelSpec, expected_rows_sql, plan_project, raw_events_sql
from flower_dagster.storage import DEV_INSTANCE_FILE, write_instance_yaml

DAYS = 365
ROWS_PER_DAY = 17_280  # divides 86,400 (one event every 5 s): exactly this many a day
PER_DAY_RUNS = 8
WINDOW_FORMAT = "%Y-%m-%d %H:%M:%S"
AUDIT_SCHEMA = "main_flower_audit"  # the generated profile's schema `main`, + `_flower_audit`


def pick_model(specs: Sequence[ModelSpec]) -> ModelSpec:
    """A daily model fed by one staging view: run by the schedule, so no source check."""
    layer_one = [s for s in specs if s.kind is Kind.DAILY and s.layer == 1]
    return min(layer_one, key=lambda s: (len(s.parents), s.name))


def window_env(start: datetime, end: datetime) -> dict[str, str]:
    return {
        "FLOWER_WINDOW_START": start.strftime(WINDOW_FORMAT),
        "FLOWER_WINDOW_END": end.strftime(WINDOW_FORMAT),
    }


def rows_correct(db: Path, spec: ModelSpec, start: datetime, end: datetime) -> bool:
    """The model's rows in [start, end) equal the direct query of the raw table."""
    s, e = start.strftime(WINDOW_FORMAT), end.strftime(WINDOW_FORMAT)
    actual = (
        f"select id, customer_id, category, amount, event_ts from main.{spec.name} "
        f"where event_ts >= timestamp '{s}' and event_ts < timestamp '{e}'"
    )
    expected = expected_rows_sql(spec, s, e)
    with duckdb.connect(str(db), read_only=True) as con:
        diff = con.execute(
            f"select (select count(*) from (({actual}) except all ({expected}))) "
            f"+ (select count(*) from (({expected}) except all ({actual})))"
        ).fetchone()[0]
        count = con.execute(f"select count(*) from ({actual})").fetchone()[0]
    return diff == 0 and count == (end - start).days * ROWS_PER_DAY


def spoil(db: Path, spec: ModelSpec, start: datetime, end: datetime) -> None:
    """Spoil the year's rows, so only a run that rewrote them passes the check."""
    with duckdb.connect(str(db)) as con:
        con.execute(
            f"update main.{spec.name} set amount = -1 where event_ts >= ? and event_ts < ?",
            [start, end],
        )


def audit_tables(db: Path) -> int | None:
    """Tables left in the audit schema of write, audit, publish (docs/publish.md); None when the
    schema was never created (nothing was written through an audit relation)."""
    with duckdb.connect(str(db), read_only=True) as con:
        schemas = con.execute(
            "select count(*) from information_schema.schemata where schema_name = ?",
            [AUDIT_SCHEMA],
        ).fetchone()[0]
        if not schemas:
            return None
        return con.execute(
            "select count(*) from information_schema.tables where table_schema = ?",
            [AUDIT_SCHEMA],
        ).fetchone()[0]


def run(models: int, repeats: int, work: Path) -> dict[str, Any]:
    # The product as it ships (write, audit, publish) and the same models written directly.
    project: Project = prepare_project(models, work)
    direct: Project = prepare_project(models, work, publish=False)
    spec = pick_model(plan_project(models, project.seed))
    first = datetime.combine(partition_start(), datetime.min.time())
    last = first + timedelta(days=DAYS - 1)
    end = last + timedelta(days=1)
    db = project.dir / "bench.duckdb"  # the profile's path at parse time: no re-parse
    direct_db = direct.dir / "bench.duckdb"
    db.unlink(missing_ok=True)
    with duckdb.connect(str(db)) as con:
        con.execute(raw_events_sql(first, DAYS + 7, ROWS_PER_DAY))
    env, direct_env = project.flower_env(), direct.flower_env()
    dbt = bin_path("dbt")
    setup = run_child([dbt, "run", "--select", f"+{spec.name}"], env=env, cwd=project.dir)
    shutil.copyfile(db, direct_db)  # the same rows for the direct contenders
    progress(
        f"  backfill: {spec.name} and its parents built over {DAYS + 7} days "
        f"({ROWS_PER_DAY} rows a day) in {setup.seconds:.1f}s"
    )

    def check(label: str, database: Path, start: datetime, stop: datetime, wap: bool) -> None:
        if not rows_correct(database, spec, start, stop):
            raise RuntimeError(f"{label}: {spec.name}'s rows are wrong after the run")
        left = audit_tables(database)
        if wap and left != 0:  # written through the audit relation, then published
            raise RuntimeError(f"{label}: no write, audit, publish ({left} audit tables)")
        if not wap and left is not None:
            raise RuntimeError(f"{label}: wrote an audit relation, expected a direct write")

    def flower(target: Project, database: Path, label: str) -> ChildResult:
        """One `dagster asset materialize` of the range, on a fresh instance."""
        home = Path(tempfile.mkdtemp(prefix="flower-backfill-", dir=_tmpfs()))
        write_instance_yaml(DEV_INSTANCE_FILE, home)
        try:
            spoil(database, spec, first, end)
            result = run_child(
                [
                    bin_path("dagster"),
                    "asset",
                    "materialize",
                    "-m",
                    "flower_dagster.definitions",
                    "--select",
                    spec.name,
                    "--partition-range",
                    f"{first:%Y-%m-%d}...{last:%Y-%m-%d}",
                ],
                env={**target.flower_env(), "DAGSTER_HOME": str(home)},
            )
            materialized = _materializations(home, spec.name)
        finally:
            shutil.rmtree(home, ignore_errors=True)
        check(label, database, first, end, wap=target is project)
        if materialized != DAYS:
            raise RuntimeError(f"{label} recorded {materialized} partitions, not {DAYS}")
        return result

    def plain(command: str, target: Project, database: Path, label: str) -> ChildResult:
        spoil(database, spec, first, end)
        result = run_child(
            [dbt, command, "--select", spec.name],
            env={**target.flower_env(), **year},
            cwd=target.dir,
        )
        check(label, database, first, end, wap=target is project)
        return result

    contenders: dict[str, dict[str, Any]] = {}
    year = window_env(first, end)
    timings: dict[str, list[float]] = {
        "flower": [],
        "flower_direct": [],
        "build_wap": [],
        "floor_build": [],
        "floor_run": [],
    }
    # CPU seconds too (the child's and its children's): on a busy machine wall time spreads
    # widely, CPU time much less.
    cpu: dict[str, list[float]] = {key: [] for key in timings}
    for i in range(repeats):  # side by side: each contender once per repeat
        for key, result in (
            ("flower", flower(project, db, "flower")),
            ("flower_direct", flower(direct, direct_db, "flower (direct)")),
            ("build_wap", plain("build", project, db, "dbt build (WAP)")),
            ("floor_build", plain("build", direct, direct_db, "dbt build")),
            ("floor_run", plain("run", direct, direct_db, "dbt run")),
        ):
            timings[key].append(result.seconds)
            cpu[key].append(result.cpu_seconds)
        progress(
            f"  backfill repeat {i + 1}: "
            + ", ".join(f"{key} {values[-1]:.1f}s" for key, values in timings.items())
        )
    per_day: list[float] = []
    spoil(direct_db, spec, first, end)
    for day in range(PER_DAY_RUNS):
        start = first + timedelta(days=day)
        stop = start + timedelta(days=1)
        result = run_child(
            [dbt, "run", "--select", spec.name],
            env={**direct_env, **window_env(start, stop)},
            cwd=direct.dir,
        )
        per_day.append(result.seconds)
    check("per-day", direct_db, first, first + timedelta(days=PER_DAY_RUNS), wap=False)
    progress(f"  backfill per-day: {PER_DAY_RUNS} runs, median {median(per_day):.1f}s each")

    for key, values in timings.items():
        contenders[key] = {**summary(values, 2), "cpu": summary(cpu[key], 2)}
    contenders["per_day"] = {
        **summary(per_day, 2),
        "measured_runs": PER_DAY_RUNS,
        "extrapolated_year": round(median(per_day) * DAYS, 1),
    }
    floor = contenders["floor_run"]["median"]
    return {
        "models": models,
        "model": spec.name,
        "days": DAYS,
        "rows_per_day": ROWS_PER_DAY,
        "range": [f"{first:%Y-%m-%d}", f"{last:%Y-%m-%d}"],
        "repeats": repeats,
        "load_average": load_average(),
        "contenders": contenders,
        "ratios": {
            "flower_vs_floor_run": ratio(contenders["flower"]["median"], floor),
            "flower_vs_floor_build": ratio(
                contenders["flower"]["median"], contenders["floor_build"]["median"]
            ),
            "per_day_vs_floor_run": ratio(contenders["per_day"]["extrapolated_year"], floor),
            "wap_flower": ratio(
                contenders["flower"]["median"], contenders["flower_direct"]["median"]
            ),
            "wap_build": ratio(
                contenders["build_wap"]["median"], contenders["floor_build"]["median"]
            ),
        },
    }


def _tmpfs() -> str | None:
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() else None


def _materializations(home: Path, asset: str) -> int:
    """How many partitions of `asset` the run recorded as materialized, read back from its
    instance."""
    from dagster import AssetKey, DagsterInstance

    with DagsterInstance.from_config(str(home)) as instance:
        return len(instance.get_materialized_partitions(AssetKey(asset)))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--out", type=Path, default=OUT_DIR / "backfill.json")
    args = parser.parse_args(argv)
    result = run(args.models, args.repeats, args.work)
    write_json(args.out, result)
    print(json.dumps(result["ratios"]))
    progress(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
