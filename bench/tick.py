"""Item 2: one evaluation of every automation condition, the repair rule vs stock `eager()`.

For each project size and each variant, a fresh process builds flower-dagster's definitions
(partitions start three years before today: ~1,095 daily partitions per daily asset) and, per
repeat, a new Dagster instance (SQLite on tmpfs when /dev/shm exists, so disk syncs of a shared
machine do not time the storage), then times `evaluate_automation_conditions` over all assets:

  first   the first evaluation of a fresh cursor (the unpartitioned models are materialized)
  steady  the next one, nothing changed
  after   the one after a day of updates: yesterday's partition of every daily asset reported
          materialized, parents before children, as the day's runs would leave them

Materializations are reported with `instance.report_runless_asset_event` (no dbt runs). The
variants are the same graph on `make dev`'s instance (dagster_home/dagster.yaml: Dagster's
SQLite storage), each a condition on the roll-ups:

  eager   stock: `AutomationCondition.eager()`
  rule    flower-dagster as it ships: the repair rule on every roll-up

With `--postgres` three variants are also timed on PostgreSQL as deployed (deploy/dagster.yaml,
a throwaway server on 127.0.0.1 from tests/postgres_server.py, the same seeded events in a
template database, each repeat on a copy of it), each in a fresh child process:

  stock         `eager()` on dagster-postgres's storage classes as they ship (a connection
                per query outside the webserver): what stock Dagster deploys
  eager-pooled  `eager()` on flower-dagster's pooled storage (flower_dagster/storage.py): the
                storage alone, without the rule
  rule          flower-dagster as it ships: the repair rule on the pooled storage

    python -m bench.tick --models 1000 --repeats 3 [--variants rule]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bench.common import (
    DEFAULT_WORK_DIR,
    OUT_DIR,
    prepare_project,
    progress,
    ratio,
    run_child,
    summary,
    write_json,
)

CONDITIONS = ("eager", "rule")
# make dev's instance (dagster_home/dagster.yaml): Dagster's SQLite storage.
SQLITE_STORAGES = ("sqlite",)
# name: (the roll-ups' condition, the storage)
VARIANTS: dict[str, tuple[str, str]] = {
    "eager": ("eager", "sqlite"),
    "rule": ("rule", "sqlite"),
}
# PostgreSQL as deployed (deploy/dagster.yaml): dagster-postgres's storage classes as they
# ship (a connection per query) and flower-dagster's pooled ones.
POSTGRES_STORAGES = ("dagster-postgres", "flower")
# name: (the roll-ups' condition, the storage); stock Dagster, the pool alone, flower-dagster.
POSTGRES_VARIANTS: dict[str, tuple[str, str]] = {
    "stock": ("eager", "dagster-postgres"),
    "eager-pooled": ("eager", "flower"),
    "rule": ("rule", "flower"),
}
POSTGRES_SEED_DB = "tick_seed"
# Days of history before the updated day, for every daily asset: the rest of its week.
HISTORY_BEFORE_DAY = 6
TICKS = ("first", "steady", "after")
POSTGRES_TICKS = ("first", "after")


def _instance_dir() -> str:
    shm = Path("/dev/shm")
    return tempfile.mkdtemp(prefix="flower-tick-", dir=shm if shm.is_dir() else None)


def expected_day(timezone: str = "Asia/Seoul") -> date:
    """The updated day as the children will find it (the settings' default time zone)."""
    return updated_day(datetime.now(ZoneInfo(timezone)).date() - timedelta(days=1))


def updated_day(last_complete: date) -> date:
    """The day every daily asset is updated: the last complete Sunday, so that its update
    completes a week and the weekly roll-ups have something to request."""
    return last_complete - timedelta(days=(last_complete.weekday() - 6) % 7)


def _flower_graph(condition: str) -> tuple[Any, Any, dict[str, Any]]:
    from dagster import AutomationCondition

    import flower_dagster.dbt.assets as flower_assets
    from flower_dagster.defs import build_definitions
    from flower_dagster.partitions import GRAIN_TAG, UNPARTITIONED

    if condition == "eager":
        # The same translator and graph, the stock condition on the roll-ups instead.
        flower_assets.repair_condition = lambda *_, **__: AutomationCondition.eager()
    started = time.perf_counter()
    defs = build_definitions()
    graph = defs.resolve_asset_graph()
    ordered = [k for k in graph.toposorted_asset_keys if graph.get(k).is_materializable]
    daily = [k for k in ordered if graph.get(k).tags.get(GRAIN_TAG) == "daily"]
    partitions_def = graph.get(daily[0]).partitions_def
    assert partitions_def is not None
    day = updated_day(date.fromisoformat(partitions_def.get_last_partition_key()))
    info = {
        "build_seconds": time.perf_counter() - started,
        "ordered": ordered,
        "unpartitioned": [k for k in ordered if graph.get(k).tags.get(GRAIN_TAG) == UNPARTITIONED],
        "daily": daily,
        "with_condition": [k for k in ordered if graph.get(k).automation_condition is not None],
        "daily_partitions": partitions_def.get_num_partitions(),
        "day": day,
    }
    return defs, graph, info


def _seed_events(instance: Any, info: dict[str, Any]) -> int:
    """The unpartitioned assets materialized, and the six days before the updated day for
    every daily asset (so that its week is complete after it)."""
    from dagster import AssetMaterialization

    events = 0
    for key in info["unpartitioned"]:
        instance.report_runless_asset_event(AssetMaterialization(key))
        events += 1
    for back in range(HISTORY_BEFORE_DAY, 0, -1):
        partition = (info["day"] - timedelta(days=back)).isoformat()
        for key in info["daily"]:
            instance.report_runless_asset_event(AssetMaterialization(key, partition=partition))
            events += 1
    return events


def seed(template: Path) -> dict[str, Any]:
    """The SQLite instance every repeat starts from (see `_seed_events`)."""
    _, _, info = _flower_graph("rule")
    started = time.perf_counter()
    # Written on tmpfs (a disk sync per event would take minutes), then copied to `template`.
    # Its dagster.yaml stays out of the template: every repeat writes make dev's anew.
    home = Path(_instance_dir()) / "instance"
    instance = _sqlite_instance(home)
    events = _seed_events(instance, info)
    instance.dispose()
    shutil.copytree(home, template, ignore=shutil.ignore_patterns("dagster.yaml"))
    shutil.rmtree(home.parent, ignore_errors=True)
    return {"seed_seconds": time.perf_counter() - started, "seed_events": events}


def postgres_config(storage: str) -> dict[str, Any]:
    """deploy/dagster.yaml as flower-dagster ships it (`flower`: pooled storages), or with
    dagster-postgres's own storage classes in their place (`dagster-postgres`)."""
    import yaml

    from flower_dagster.settings import REPO_ROOT

    config = yaml.safe_load((REPO_ROOT / "deploy" / "dagster.yaml").read_text())
    if storage not in POSTGRES_STORAGES:
        raise ValueError(f"unknown storage {storage!r}; allowed: {', '.join(POSTGRES_STORAGES)}")
    if storage == "dagster-postgres":
        from tests.postgres_server import with_stock_storage

        return with_stock_storage(config)
    return config


def _postgres_instance(storage: str, database: str, home: Path) -> Any:
    """A Dagster instance (its dagster.yaml in `home`) on `database` of the server the
    environment points at."""
    import yaml
    from dagster import DagsterInstance

    from tests.postgres_server import STOCK_STORAGE_MODULES

    config = postgres_config(storage)
    for name in STOCK_STORAGE_MODULES:
        # The same connection block for the three storages (a YAML anchor): named once.
        config[name]["config"]["postgres_db"]["db_name"] = database
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return DagsterInstance.from_config(str(home))


def _admin(sql: str) -> None:
    """A statement on the server's own database (creating databases from the seeded one)."""
    import os

    from tests.postgres_server import PostgresServer

    PostgresServer.from_env(os.environ).query(sql)


def seed_postgres() -> dict[str, Any]:
    """The same seeded instance in a PostgreSQL database, the template of every repeat."""
    _, _, info = _flower_graph("rule")
    started = time.perf_counter()
    _admin(f"create database {POSTGRES_SEED_DB}")
    home = Path(tempfile.mkdtemp(prefix="flower-tick-pg-"))
    instance = _postgres_instance("flower", POSTGRES_SEED_DB, home)
    events = _seed_events(instance, info)
    instance.dispose()  # a template database must have no open connection
    shutil.rmtree(home, ignore_errors=True)
    return {"seed_seconds": time.perf_counter() - started, "seed_events": events}


def _sqlite_instance(home: Path) -> Any:
    """A Dagster instance on the SQLite files in `home`, with make dev's instance file."""
    from dagster import DagsterInstance

    from flower_dagster.storage import DEV_INSTANCE_FILE, write_instance_yaml

    write_instance_yaml(DEV_INSTANCE_FILE, home)
    return DagsterInstance.from_config(str(home))


def child(condition: str, repeats: int, template: Path | None, storage: str) -> dict[str, Any]:
    from dagster import AssetMaterialization
    from dagster import evaluate_automation_conditions as evaluate

    defs, _, info = _flower_graph(condition)
    day = info["day"].isoformat()
    sqlite = storage in SQLITE_STORAGES
    if sqlite and (template is None or template.name.rsplit("-", 3)[-3:] != day.split("-")):
        raise RuntimeError(f"the seeded instance {template} is not for the updated day {day}")
    runs: list[dict[str, Any]] = []
    for repeat in range(repeats):
        home = Path(_instance_dir()) / "instance"
        try:
            if sqlite:
                assert template is not None
                shutil.copytree(template, home)
                instance = _sqlite_instance(home)
            else:
                database = f"tick_{condition}_{storage.replace('-', '_')}_{repeat}"
                _admin(f"create database {database} template {POSTGRES_SEED_DB}")
                instance = _postgres_instance(storage, database, home)
            seconds: dict[str, float] = {}
            cpu: dict[str, float] = {}
            requested: dict[str, int] = {}
            cursor = None
            report_seconds = 0.0
            # On PostgreSQL the steady tick is left out (it says nothing the SQLite one does
            # not, and the stock storage makes every tick slow): first, then after updates.
            for tick in TICKS if sqlite else POSTGRES_TICKS:
                if tick == "after":
                    report_started = time.perf_counter()
                    for key in info["daily"]:
                        instance.report_runless_asset_event(
                            AssetMaterialization(key, partition=day)
                        )
                    report_seconds = time.perf_counter() - report_started
                tick_started, cpu_started = time.perf_counter(), time.process_time()
                result = evaluate(defs=defs, instance=instance, cursor=cursor)
                seconds[tick] = time.perf_counter() - tick_started
                cpu[tick] = time.process_time() - cpu_started
                requested[tick] = result.total_requested
                cursor = result.cursor
            runs.append(
                {
                    "seconds": seconds,
                    "cpu": cpu,
                    "requested": requested,
                    "report_seconds": report_seconds,
                }
            )
            instance.dispose()
        finally:
            shutil.rmtree(home.parent, ignore_errors=True)
    return {
        "condition": condition,
        "storage": storage,
        "build_seconds": info["build_seconds"],
        "assets": len(info["ordered"]),
        "daily_assets": len(info["daily"]),
        "assets_with_condition": len(info["with_condition"]),
        "daily_partitions": info["daily_partitions"],
        "updated_partition": day,
        "runs": runs,
    }


def _summarized(result: dict[str, Any], label: str) -> dict[str, Any]:
    """A child's runs with the median of every tick it took, and a progress line."""
    taken = [t for t in TICKS if t in result["runs"][0]["seconds"]]
    runs = result["runs"]
    ticks = {t: summary([r["seconds"][t] for r in runs], 2) for t in taken}
    cpu = {t: summary([r["cpu"][t] for r in runs], 2) for t in taken}
    requested = {t: runs[0]["requested"][t] for t in taken}
    progress(
        f"  {label}: "
        + ", ".join(f"{t} {ticks[t]['median']:.1f}s" for t in taken)
        + f" (CPU after {cpu['after']['median']:.1f}s; requested {requested['after']})"
    )
    return {**result, "ticks": ticks, "cpu": cpu, "requested": requested}


def _run_postgres(project: Any, models: int, repeats: int) -> dict[str, Any]:
    """The ticks of every PostgreSQL variant on a throwaway server on 127.0.0.1, from the same
    seeded template database: stock `eager()` on dagster-postgres as it ships, `eager()` on
    the pooled storage, and the repair rule on it (flower-dagster as it ships)."""
    from tests.postgres_server import postgres_server

    with postgres_server() as server:
        env = project.flower_env(server.env)
        seeded = run_child(
            [sys.executable, "-m", "bench.tick", "--seed-postgres"], env=env
        ).json_line()
        progress(
            f"  tick {models} models on PostgreSQL: seeded {seeded['seed_events']} "
            f"materializations in {seeded['seed_seconds']:.0f}s (pooled storage)"
        )
        variants: dict[str, Any] = {}
        for variant, (condition, storage) in POSTGRES_VARIANTS.items():
            result = run_child(
                [
                    sys.executable,
                    "-m",
                    "bench.tick",
                    "--child",
                    condition,
                    "--storage",
                    storage,
                    "--repeats",
                    str(repeats),
                ],
                env=env,
            ).json_line()
            variants[variant] = _summarized(
                {**result, "variant": variant},
                f"tick {models} models on PostgreSQL, {condition} on {storage} storage",
            )
    return {
        "models": models,
        "repeats": repeats,
        "seed": seeded,
        "variants": variants,
        "ratio_after_vs_stock": _ratio(variants, "ticks", "stock"),
        "ratio_after_vs_eager_pooled": _ratio(variants, "ticks", "eager-pooled"),
    }


def run(
    sizes: Sequence[int],
    repeats: dict[int, int],
    work: Path,
    variants_by_size: dict[int, Sequence[str]] | None = None,
    postgres_sizes: Sequence[int] = (),
    postgres_repeats: int = 1,
) -> dict[str, Any]:
    results: dict[str, Any] = {"sizes": {}}
    for models in sizes:
        project = prepare_project(models, work)
        # The seeded instance is an input like the parsed manifest: kept for the next run of
        # the bench while the project and the updated day are the same.
        template = work / "tick" / f"p{models}-{project.digest[:12]}-{expected_day()}"
        stamp = template / "seeded.json"
        if stamp.is_file():
            seeded = {**json.loads(stamp.read_text()), "reused": True}
            progress(f"  tick {models} models: seeded instance reused ({template})")
        else:
            shutil.rmtree(template, ignore_errors=True)
            seeded = run_child(
                [sys.executable, "-m", "bench.tick", "--seed", str(template)],
                env=project.flower_env(),
            ).json_line()
            stamp.write_text(json.dumps(seeded))
            progress(
                f"  tick {models} models: seeded {seeded['seed_events']} materializations "
                f"in {seeded['seed_seconds']:.0f}s"
            )
        variants: dict[str, Any] = {}
        for variant in (variants_by_size or {}).get(models, tuple(VARIANTS)):
            condition, storage = VARIANTS[variant]
            result = run_child(
                [
                    sys.executable,
                    "-m",
                    "bench.tick",
                    "--child",
                    condition,
                    "--storage",
                    storage,
                    "--repeats",
                    str(repeats[models]),
                    "--template",
                    str(template),
                ],
                env=project.flower_env(),
            ).json_line()
            variants[variant] = _summarized(
                {**result, "variant": variant, "repeats": repeats[models]},
                f"tick {models} models, {variant}",
            )
        if models in postgres_sizes:
            results.setdefault("postgres", {})[str(models)] = _run_postgres(
                project, models, postgres_repeats
            )
        results["sizes"][str(models)] = {
            "models": models,
            "counts": project.counts,
            "repeats": repeats[models],
            "seed": seeded,
            "variants": variants,
            "ratio_after": _ratio(variants, "ticks", "eager"),
            "ratio_after_cpu": _ratio(variants, "cpu", "eager"),
        }
    return results


def _ratio(variants: dict[str, Any], measure: str, base: str) -> float | None:
    """The rule's tick after updates over the `base` variant's (None if either did not run)."""
    if "rule" not in variants or base not in variants:
        return None
    return ratio(
        variants["rule"][measure]["after"]["median"],
        variants[base][measure]["after"]["median"],
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, nargs="+", default=[1000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--out", type=Path, default=OUT_DIR / "tick.json")
    parser.add_argument("--child", choices=CONDITIONS, help=argparse.SUPPRESS)
    parser.add_argument("--template", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seed-postgres", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--storage",
        choices=(*SQLITE_STORAGES, *POSTGRES_STORAGES),
        default="sqlite",
        help=argparse.SUPPRESS,
    )
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=tuple(VARIANTS),
        default=list(VARIANTS),
        help="the SQLite variants to time (default: all)",
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="also time PostgreSQL as deployed: stock eager() on dagster-postgres, eager() "
        "and the repair rule on the pooled storage",
    )
    args = parser.parse_args(argv)
    if args.seed:
        print(json.dumps(seed(args.seed)))
        return
    if args.seed_postgres:
        print(json.dumps(seed_postgres()))
        return
    if args.child:
        print(json.dumps(child(args.child, args.repeats, args.template, args.storage)))
        return
    results = run(
        args.models,
        {m: args.repeats for m in args.models},
        args.work,
        variants_by_size={m: args.variants for m in args.models},
        postgres_sizes=args.models if args.postgres else (),
    )
    write_json(args.out, results)
    progress(f"wrote {args.out}")


if __name__ == "__main__":
    main()
