"""The `flower` command.

flower prepare               parse the dbt project, check every model's flower config
flower env                   the resolved settings: environment, dbt target, hour, what is on
flower models                list the models with their grain, partition column and what runs them
flower impact MODEL PARTITION...  what a repair of those partitions will re-run, what blocks it
flower demo load [--duckdb]  (re)load the demo warehouse's raw data
flower demo run              the repair story, told by the real Dagster daemon
flower lint [PATH...]        check models against the review rules (docs/lint.md); --pr-body FILE
flower oncall who|schedule|report  who is on call, the rotation, the after-hours report
flower admin [hash-token|demo-token|check]  the backfill admin for model authors (docs/backfills.md)
flower backfill models|preview|launch|status|cancel  backfill your models through it (FLOWER_TOKEN)
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from flower_dagster.admin.cli import register as register_admin
from flower_dagster.alerts.cli import register as register_oncall
from flower_dagster.dbt.profile import TargetInfo
from flower_dagster.errors import FlowerError
from flower_dagster.lint.cli import register as register_lint
from flower_dagster.settings import REPO_ROOT, Settings, load_settings

# The checkout's dev instance, as `make dev` runs it.
DEV_DAGSTER_HOME = REPO_ROOT / "dagster_home"


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except FlowerError as error:
        print(f"flower: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flower", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    prepare = commands.add_parser("prepare", help="parse the dbt project and check model configs")
    prepare.set_defaults(handler=_prepare)

    env = commands.add_parser("env", help="print the resolved settings and environment")
    env.set_defaults(handler=_env)

    models = commands.add_parser("models", help="list models with their grain")
    models.set_defaults(handler=_models)

    impact = commands.add_parser(
        "impact",
        help="preview what a repair of partitions re-runs downstream, and what blocks it",
        description=(
            "Print, without running anything, every downstream partition the repair rule re-runs "
            "after a repair of these partitions of MODEL, and what blocks each one now "
            "(read from the Dagster instance of DAGSTER_HOME)."
        ),
    )
    impact.add_argument("model", metavar="MODEL", help="the repaired model, e.g. fct_orders")
    impact.add_argument(
        "partitions",
        metavar="PARTITION",
        nargs="+",
        help="its repaired partition keys, e.g. 2024-01-10 (a week: its Monday; a month: the 1st)",
    )
    impact.add_argument("--format", choices=("text", "json"), default="text", dest="output_format")
    impact.set_defaults(handler=_impact)

    demo = commands.add_parser("demo", help="the demo warehouse")
    demo_commands = demo.add_subparsers(dest="demo_command", required=True, metavar="ACTION")
    load = demo_commands.add_parser("load", help="(re)load the demo raw data into DuckDB")
    load.add_argument(
        "--duckdb",
        type=Path,
        default=None,
        help="DuckDB file (default: the file of the environment's dbt target, see `flower env`)",
    )
    load.set_defaults(handler=_demo_load)
    story = demo_commands.add_parser(
        "run", help="the repair story, told by the real Dagster daemon on a temporary instance"
    )
    story.add_argument(
        "--workdir", type=Path, default=None, help="keep its files here (default: a temp folder)"
    )
    story.add_argument(
        "--interval", type=int, default=5, help="seconds between automation ticks (default 5)"
    )
    story.add_argument(
        "--timeout", type=int, default=420, help="give up after this many seconds (default 420)"
    )
    story.set_defaults(handler=_demo_run)

    register_lint(commands)
    register_oncall(commands)
    register_admin(commands)
    return parser


def _prepare(args: argparse.Namespace) -> int:
    from flower_dagster.dbt.models import read_grains
    from flower_dagster.dbt.project import FlowerDbtProject

    project = FlowerDbtProject.from_settings(load_settings())
    project.parse()
    manifest = project.load_manifest()
    grains = read_grains(manifest)
    counts: dict[str, int] = {}
    for node in grains.values():
        label = node.grain.value if node.grain else "unpartitioned"
        counts[label] = counts.get(label, 0) + 1
    summary = ", ".join(f"{count} {label}" for label, count in sorted(counts.items()))
    print(f"dbt project {project.project_dir}: {len(grains)} assets ({summary})")
    print(f"manifest: {project.manifest_path}")
    return 0


def _env(args: argparse.Namespace) -> int:
    from flower_dagster.dbt.profile import target_of

    settings = load_settings()
    environment = settings.environment
    target: TargetInfo | FlowerError
    try:
        target = target_of(settings)
    except FlowerError as error:
        target = error

    def on(flag: bool) -> str:
        return "on" if flag else "off"

    rows = [
        ("environment", _environment_line(environment.name)),
        ("settings file", str(settings.source or "none: every setting has its default")),
        ("dbt project", str(settings.dbt_project_dir)),
        ("dbt profiles", str(settings.dbt_profiles_dir or "dbt's default (~/.dbt)")),
        ("dbt target", settings.dbt_target or "the profile's default"),
        ("writes to", _writes_to(target)),
        ("batch hour", f"{settings.schedule_hour:02d}:00 {settings.timezone}"),
        ("partitions start", settings.partition_start.isoformat()),
        (
            "partitions end",
            settings.partition_end.isoformat()
            if settings.partition_end
            else "none: up to the last ended window",
        ),
        ("schedules", on(environment.schedules)),
        (
            "automation",
            f"{on(environment.automation)} (every {settings.automation_interval_seconds} s)",
        ),
        ("alerts", on(environment.alerts)),
        ("warehouse pool", _pool_line(settings, target)),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    return 0


def _environment_line(name: str) -> str:
    if os.environ.get("FLOWER_ENV"):
        return f"{name} (FLOWER_ENV)"
    return f"{name} (the default: FLOWER_ENV is not set)"


def _pool_line(settings: Settings, target: TargetInfo | FlowerError) -> str:
    adapter = target.type if isinstance(target, TargetInfo) else None
    slots = settings.slots_for(adapter)
    return f"{settings.warehouse_pool}: {slots} slot{'s' if slots > 1 else ''} ({adapter or '?'})"


def _writes_to(target: TargetInfo | FlowerError) -> str:
    """The resolved target's adapter, file or host, and schema (or why it cannot be told)."""
    if not isinstance(target, TargetInfo):
        return f"unknown: {target}"
    return f"{target.location} (target {target.name} of profile {target.profile})"


def _models(args: argparse.Namespace) -> int:
    from flower_dagster.dbt.models import read_grains
    from flower_dagster.dbt.project import FlowerDbtProject
    from flower_dagster.schedules import trigger_of

    settings = load_settings()
    project = FlowerDbtProject.from_settings(settings)
    manifest = project.load_manifest()
    rows = [
        (
            node.name,
            node.grain.value if node.grain else "-",
            node.partition_column or "-",
            trigger_of(node, settings.schedule_hour, settings.timezone),
            manifest["nodes"][uid].get("original_file_path", ""),
        )
        for uid, node in sorted(read_grains(manifest).items(), key=lambda item: item[1].name)
    ]
    header = ("model", "grain", "partition column", "runs by", "file")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _impact(args: argparse.Namespace) -> int:
    from flower_dagster.impact import run_impact

    if not os.environ.get("DAGSTER_HOME") and (DEV_DAGSTER_HOME / "dagster.yaml").is_file():
        # The checkout's dev instance (what `make dev` runs on) holds the statuses to read.
        os.environ["DAGSTER_HOME"] = str(DEV_DAGSTER_HOME)
        print(
            f"(statuses from the dev instance {DEV_DAGSTER_HOME}; set DAGSTER_HOME for another)",
            file=sys.stderr,
        )
    print(run_impact(args.model, args.partitions, args.output_format))
    return 0


def _demo_load(args: argparse.Namespace) -> int:
    from flower_dagster.dbt.profile import target_of
    from flower_dagster.demo.data import load_demo_data

    settings = load_settings()
    path = args.duckdb
    if path is None:
        target = target_of(settings)
        if target.type == "spark":
            from flower_dagster.demo.spark import load_spark_demo_data, spark_dir

            folder = spark_dir(settings.dbt_project_dir)
            counts = load_spark_demo_data(folder)
            rows = ", ".join(f"{table} {count}" for table, count in counts.items())
            print(f"wrote the demo raw data for Spark under {folder / 'raw'}: {rows}")
            return 0
        if target.type != "duckdb" or target.path is None:
            raise FlowerError(
                f"the demo data loads into DuckDB or Spark, but target {target.name} of profile "
                f"{target.profile} is {target.location}; pass --duckdb FILE"
            )
        path = target.path
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = load_demo_data(path)
    rows = ", ".join(f"{table} {count}" for table, count in counts.items())
    print(f"loaded demo raw data into {path}: {rows}")
    return 0


def _demo_run(args: argparse.Namespace) -> int:
    from flower_dagster.demo.story import run_story

    run_story(args.workdir, interval_seconds=args.interval, timeout_seconds=args.timeout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
