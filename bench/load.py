"""Item 1: loading the code location, flower-dagster vs one stock `@dbt_assets`.

For each project size, alternately (stock, flower, stock, flower, ...), a fresh process runs
`dagster definitions validate -m <module>` in-process after timing its own imports:

  framework  `import dagster, dagster_dbt` (the same for both)
  defs       importing the code location module: reading the manifest, building the assets
             (flower-dagster: `flower_dagster.definitions`, i.e. `build_definitions()`;
             stock: `bench.stock_defs`, one unpartitioned `@dbt_assets(manifest=...)`)
  validate   `dagster definitions validate` itself (its CLI is entered in the same process, so
             the module is imported once): the repository, its snapshot, the partition checks

`total` is the wall time from spawning the process to the end of the validation, as a person
running `dagster definitions validate` sees it; `peak MB` is the process's peak RSS then. The
first run of each side also serializes the repository snapshot (what the webserver and daemon
receive) to report its size, after the timed part.

    python -m bench.load --models 200 1000 --repeats 3
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import (
    DEFAULT_WORK_DIR,
    OUT_DIR,
    Project,
    clean_env,
    peak_rss_mb,
    prepare_project,
    progress,
    ratio,
    run_child,
    summary,
    write_json,
)

SIDES = {
    "stock": "bench.stock_defs",
    "flower": "flower_dagster.definitions",
}
PHASES = ("framework", "defs", "validate", "total", "cpu_defs", "cpu_total")


def child(module: str, spawned_at: float, snapshot: bool) -> dict[str, Any]:
    """The body of one measured process (see the module docstring)."""
    started = time.perf_counter()
    import dagster  # noqa: F401
    import dagster_dbt  # noqa: F401

    framework_done, cpu_framework = time.perf_counter(), time.process_time()
    loaded = importlib.import_module(module)
    defs_done, cpu_defs = time.perf_counter(), time.process_time()
    from dagster._cli import cli

    cli.main(args=["definitions", "validate", "-m", module], standalone_mode=False)
    validate_done, cpu_validate = time.perf_counter(), time.process_time()
    out: dict[str, Any] = {
        "startup": started - spawned_at,
        "framework": framework_done - started,
        "defs": defs_done - framework_done,
        "validate": validate_done - defs_done,
        "total": validate_done - spawned_at,
        # CPU seconds of the process from its start: what a shared machine's load inflates
        # far less than wall time.
        "cpu_defs": cpu_defs - cpu_framework,
        "cpu_total": cpu_validate,
        "peak_rss_mb": peak_rss_mb(),
    }
    if snapshot:
        from dagster._core.remote_representation.external_data import RepositorySnap
        from dagster_shared.serdes import serialize_value

        repository = loaded.defs.get_repository_def()
        snap = RepositorySnap.from_def(repository, defer_snapshots=True)
        out["snapshot_mb"] = round(len(serialize_value(snap)) / 1e6, 2)
        graph = repository.asset_graph
        out["assets"] = len(graph.get_all_asset_keys())
        out["checks"] = len(graph.asset_check_keys)
        out["assets_with_condition"] = sum(
            1 for key in graph.get_all_asset_keys() if graph.get(key).automation_condition
        )
    return out


def measure(project: Project, side: str, snapshot: bool) -> dict[str, Any]:
    env = (
        project.flower_env()
        if side == "flower"
        else clean_env({"FLOWER_BENCH_MANIFEST": str(project.manifest)})
    )
    spawned_at = time.perf_counter()
    result = run_child(
        [
            sys.executable,
            "-m",
            "bench.load",
            "--child",
            SIDES[side],
            "--spawned-at",
            repr(spawned_at),
            *(["--snapshot"] if snapshot else []),
        ],
        env=env,
    )
    return result.json_line()


def run(sizes: Sequence[int], repeats: dict[int, int], work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {"sizes": {}}
    for models in sizes:
        project = prepare_project(models, work)
        runs: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
        for i in range(repeats[models]):
            for side in SIDES:  # side by side: stock then flower, in every repeat
                measured = measure(project, side, snapshot=i == 0)
                runs[side].append(measured)
                progress(
                    f"  load {models} models, {side}: total {measured['total']:.1f}s "
                    f"(defs {measured['defs']:.1f}s, validate {measured['validate']:.1f}s; "
                    f"cpu {measured['cpu_total']:.1f}s), "
                    f"peak {measured['peak_rss_mb']:.0f} MB"
                )
        sides = {}
        for side, measured in runs.items():
            entry: dict[str, Any] = {
                phase: summary([m[phase] for m in measured], 2) for phase in PHASES
            }
            entry["peak_rss_mb"] = summary([m["peak_rss_mb"] for m in measured], 1)
            for key in ("snapshot_mb", "assets", "checks", "assets_with_condition"):
                entry[key] = measured[0].get(key)
            sides[side] = entry
        results["sizes"][str(models)] = {
            "models": models,
            "counts": project.counts,
            "repeats": repeats[models],
            "parse_seconds": project.parse_seconds,
            "sides": sides,
            "ratio_total": ratio(
                sides["flower"]["total"]["median"], sides["stock"]["total"]["median"]
            ),
            "ratio_cpu": ratio(
                sides["flower"]["cpu_total"]["median"], sides["stock"]["cpu_total"]["median"]
            ),
        }
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK_DIR)
    parser.add_argument("--out", type=Path, default=OUT_DIR / "load.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--spawned-at", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--snapshot", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.spawned_at, args.snapshot)))
        return
    results = run(args.models, {m: args.repeats for m in args.models}, args.work)
    write_json(args.out, results)
    progress(f"wrote {args.out}")


if __name__ == "__main__":
    main()
