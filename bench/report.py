"""docs/benchmarks.md and its figures, from the results of `make bench` (bench/out/bench.json).

`render_markdown` and `goal_rows` are pure (tested in tests/test_bench.py); `draw_figures`
writes the PNGs with matplotlib.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

IMAGES = {
    "load": "bench_load.png",
    "tick": "bench_tick.png",
    "partition_run": "bench_partition_run.png",
    "backfill": "bench_backfill.png",
    "lint": "bench_lint.png",
}
FLOWER = "#2b7bba"
STOCK = "#9a9a9a"
OTHER = "#d98c3a"
LIGHT = "#9ec3e0"

Result = Mapping[str, Any]


# --- formatting ---------------------------------------------------------------------------


def seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f} s"
    return f"{value:.1f} s" if value >= 10 else f"{value:.2f} s"


def times(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def table(header: Sequence[str], rows: Sequence[Sequence[Any]], align: str = "") -> str:
    """A Markdown table; `align` has one letter per column, l or r (default: first l, rest r)."""
    align = align or "l" + "r" * (len(header) - 1)
    marks = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(marks) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def runs_text(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


# --- goals --------------------------------------------------------------------------------


def goal_rows(results: Result) -> list[dict[str, Any]]:
    """Each goal of the issue: what was asked, what was measured, and whether it is met
    (None when the step did not run)."""
    rows: list[dict[str, Any]] = []
    load = (results.get("load") or {}).get("sizes", {})
    for size in ("1000", "3000"):
        entry = load.get(size)
        if entry is None:
            continue
        rows.append(
            {
                "item": "1. Load",
                "goal": f"flower-dagster <= 1.1x stock `@dbt_assets` load at {int(size):,} models",
                "result": (
                    f"{times(entry['ratio_total'])} wall, {times(entry.get('ratio_cpu'))} CPU"
                ),
                "met": entry["ratio_total"] <= 1.1,
            }
        )
    if "3000" in load:
        total = load["3000"]["sides"]["flower"]["total"]["median"]
        rows.append(
            {
                "item": "1. Load",
                "goal": "`dagster definitions validate` under 15 s at 3,000 models",
                "result": seconds(total),
                "met": total < 15,
            }
        )
    tick = (results.get("tick") or {}).get("sizes", {})
    if "1000" in tick:
        variants = tick["1000"]["variants"]
        after = {name: v["ticks"]["after"]["median"] for name, v in variants.items()}
        rule = after["rule"]
        pooled = _postgres_after((results.get("tick") or {}).get("postgres", {}), "1000")
        rows.append(
            {
                "item": "2. Tick",
                "goal": "tick after a day of updates under 8 s at 1,000 models",
                "result": seconds(rule)
                + " (make dev's SQLite)"
                + (f"; {seconds(pooled)} on PostgreSQL as deployed" if pooled is not None else ""),
                "met": rule < 8 or (pooled is not None and pooled < 8),
            }
        )
        # Both conditions on the same storage (make dev's): the conditions alone are compared.
        rows.append(
            {
                "item": "2. Tick",
                "goal": "... and faster than stock `eager()` on the same graph",
                "result": f"{seconds(rule)} vs {seconds(after['eager'])}",
                "met": rule < after["eager"],
            }
        )
    if "3000" in tick:
        rule = tick["3000"]["variants"]["rule"]["ticks"]["after"]["median"]
        rows.append(
            {
                "item": "2. Tick",
                "goal": "tick after a day of updates under 30 s at 3,000 models",
                "result": seconds(rule),
                "met": rule < 30,
            }
        )
    partition = results.get("partition_run")
    if partition:
        by_key = {o["key"]: o for o in partition["options"]}
        if "a" in by_key and "b" in by_key:
            b, a = by_key["b"], by_key["a"]
            rows.append(
                {
                    "item": "3. Partition run",
                    "goal": "no re-parse, faster than stock `--vars` (rows correct)",
                    "result": f"{seconds(b['median_seconds'])} vs {seconds(a['median_seconds'])}",
                    "met": (not b["reparsed"])
                    and bool(b["correct"])
                    and b["median_seconds"] < a["median_seconds"],
                }
            )
    backfill = results.get("backfill")
    if backfill:
        value = backfill["ratios"]["flower_vs_floor_run"]
        rows.append(
            {
                "item": "4. Backfill",
                "goal": "365-day backfill within 1.5x of plain `dbt run`",
                "result": times(value),
                "met": value is not None and value <= 1.5,
            }
        )
    precision = results.get("precision")
    if precision:
        rows.append(
            {
                "item": "5. Repair precision",
                "goal": "precision and recall 1.0",
                "result": f"{precision['precision']:.2f} / {precision['recall']:.2f}",
                "met": precision["precision"] == 1.0 and precision["recall"] == 1.0,
            }
        )
    lint = results.get("lint")
    if lint:
        flower, fluff = lint["results"][0], lint["results"][1]
        rows.append(
            {
                "item": "6. Lint",
                "goal": "`flower lint` faster than sqlfluff on the same files",
                "result": f"{seconds(flower['median_s'])} vs {seconds(fluff['median_s'])}",
                "met": flower["median_s"] < fluff["median_s"],
            }
        )
    return rows


# --- Markdown -----------------------------------------------------------------------------


def render_markdown(results: Result) -> str:
    parts = [_intro(results), _goals(results)]
    for key, render in (
        ("load", _load),
        ("tick", _tick),
        ("partition_run", _partition_run),
        ("backfill", _backfill),
        ("precision", _precision),
        ("lint", _lint),
    ):
        if results.get(key):
            parts.append(render(results))
    if results.get("optimisation"):
        parts.append(_optimisation(results["optimisation"]))
    return "\n\n".join(parts).rstrip() + "\n"


def _taken_text(results: Result) -> str:
    """When the figures were taken, from each step's own time: one `make bench`, or some steps
    re-run (`--steps`) on top of figures kept from earlier runs."""

    def when(started: Any) -> str:
        return f"{str(started or '?')[:16].replace('T', ' ')} UTC"

    started = results.get("started")
    minutes = f"{results.get('seconds', 0) / 60:.1f} minutes"
    taken = {
        step: value["taken"]
        for step, value in results.items()
        if isinstance(value, dict) and "taken" in value
    }
    earlier = sorted({t for t in taken.values() if t != started})
    if not earlier:
        return f"Taken on {when(started)} in {minutes}"
    rerun = ", ".join(step for step, t in taken.items() if t == started)
    parts = [f"Steps {rerun} re-run on {when(started)} ({minutes})"]
    for t in earlier:
        parts.append(f"{', '.join(step for step, s in taken.items() if s == t)} from {when(t)}")
    text = "; ".join(parts)
    full = results.get("full_run")
    if full:
        text += (
            f" (the last full `make bench`, of {when(full.get('started'))}, took "
            f"{full.get('seconds', 0) / 60:.1f} minutes)"
        )
    return text


def _load_remark(results: Result, cpus: Any) -> str:
    """What the machine's load says about the wall times: the benchmark itself keeps about one
    CPU busy, so a 1-minute load well above that means other work shared the machine."""
    loads = [
        value[0]
        for value in (results.get("load_average_start"), results.get("load_average_end"))
        if value
    ]
    if not loads or not isinstance(cpus, int):
        return ""
    if max(loads) > 1.5 and max(loads) > cpus * 0.75:
        return (
            "Other work shared the machine during the run, so wall times are inflated by that load."
        )
    return "Nothing else of note ran on the machine (the load is the benchmark's own)."


def _reference_text(results: Result) -> str:
    """How fast the machine was: a virtual machine on a busy host is slower with no load of its
    own, so absolute figures (not the side-by-side ratios) move with it."""
    start, end = results.get("reference_start"), results.get("reference_end")
    if start is None:
        return ""
    taken = f"{start:.2f} s at the start" + (f" and {end:.2f} s at the end" if end else "")
    return (
        f" A fixed pure-Python reference workload (`bench/common.py`, `reference_seconds`) took "
        f"{taken}: compare it between documents before comparing their absolute figures."
    )


def _load_text(values: Sequence[float] | None) -> str:
    if not values:
        return "?"
    return " / ".join(f"{v:.2f}" for v in values)


def _intro(results: Result) -> str:
    machine = results.get("machine", {})
    plan = results.get("plan", {})
    return "\n".join(
        [
            "# Benchmarks",
            "",
            "<!-- Generated by `make bench` (bench/run_all.py): edit bench/report.py, not this "
            "file. -->",
            "",
            "`make bench` measures flower-dagster side by side with stock Dagster and dbt on "
            "generated dbt projects (`bench/generate_project.py`: staging views, daily models "
            "in four layers, weekly and monthly roll-ups, tables; deterministic for a number of "
            "models). Every figure is the median of repeated runs, each run a fresh process; "
            "the contenders of a comparison alternate within each repeat of the same "
            "`make bench`. The raw figures are in `bench/out/*.json`.",
            "",
            _taken_text(results) + ", on a "
            f"{machine.get('cpus', '?')}-CPU machine (24 GB): load average (1, 5, 15 min) "
            f"{_load_text(results.get('load_average_start'))} at the start and "
            f"{_load_text(results.get('load_average_end'))} at the end. "
            + _load_remark(results, machine.get("cpus"))
            + _reference_text(results)
            + " Comparisons are ratios of figures taken in the same minutes; where it matters "
            "CPU seconds are shown too.",
            "",
            f"Versions: Python {machine.get('python', '?')}, dagster "
            f"{machine.get('dagster', '?')}, dagster-dbt {machine.get('dagster_dbt', '?')}, "
            f"dbt-core {machine.get('dbt_core', '?')}, dbt-duckdb {machine.get('dbt_duckdb', '?')}."
            + (f" Repeats: {plan['repeats_text']}." if plan.get("repeats_text") else ""),
        ]
    )


def _goals(results: Result) -> str:
    rows = [
        [
            row["item"],
            row["goal"],
            row["result"],
            "yes" if row["met"] else ("**no**" if row["met"] is not None else "-"),
        ]
        for row in goal_rows(results)
    ]
    return "## Goals\n\n" + table(["item", "goal", "measured", "met"], rows, "llll")


def _image(key: str) -> str:
    return f"![{key}](images/{IMAGES[key]})"


def _load(results: Result) -> str:
    sizes = results["load"]["sizes"]
    rows = []
    for size, entry in sizes.items():
        for side in ("stock", "flower"):
            s = entry["sides"][side]
            rows.append(
                [
                    f"{int(size):,}",
                    "stock `@dbt_assets`" if side == "stock" else "flower-dagster",
                    seconds(s["total"]["median"]),
                    seconds(s["cpu_total"]["median"]),
                    seconds(s["defs"]["median"]),
                    seconds(s["validate"]["median"]),
                    f"{s['peak_rss_mb']['median']:.0f}",
                    f"{s['snapshot_mb']:.1f}" if s.get("snapshot_mb") is not None else "-",
                    f"{s.get('assets', '-')} / {s.get('checks', '-')}",
                    runs_text(s["total"]["runs"]),
                ]
            )
        rows.append(
            [
                "",
                "**ratio**",
                f"**{times(entry['ratio_total'])}**",
                times(entry.get("ratio_cpu")),
                "",
                "",
                "",
                "",
                "",
                f"{entry['repeats']} repeats",
            ]
        )
    return "\n\n".join(
        [
            "## 1. Loading the code location",
            "A fresh process imports `dagster` and `dagster_dbt` (the same for both), imports "
            "the code location module (flower-dagster: `flower_dagster.definitions`, pointed "
            "at the generated project with `FLOWER_DBT_PROJECT_DIR`; stock: "
            "`bench/stock_defs.py`, one unpartitioned `@dbt_assets(manifest=...)` over the "
            "same manifest), then runs `dagster definitions validate -m <module>` in the same "
            "process. *total* is the wall time from spawning the process to the end of the "
            "validation; *defs* the import of the module (reading the manifest, building the "
            "assets); *validate* the rest of the command (workspace, repository, snapshot); "
            "*snapshot* the serialized repository snapshot the webserver and daemon receive. "
            "The manifest is parsed once beforehand (`dbt parse`).",
            table(
                [
                    "models",
                    "code location",
                    "total",
                    "CPU",
                    "defs",
                    "validate",
                    "peak MB",
                    "snapshot MB",
                    "assets / checks",
                    "runs (s)",
                ],
                rows,
                "llrrrrrrrl",
            ),
            _image("load"),
            "What dominates flower-dagster's load (cProfile at 3,000 models, about 17 s under "
            "the profiler): importing `dagster` and `dagster_dbt` (~2 s, the same for both); "
            "dagster-dbt translating every node and test into specs (~3 s, the same work as "
            "stock); building the multi-assets (~2.4 s: one per grain and two for the "
            "unpartitioned models, with the source check of every roll-up); the jobs Dagster "
            "resolves over the whole graph (~1.8 s: the implicit asset job, and the daily "
            "schedule's job, which stock has not and flower-dagster has not built since (17)); "
            "validating partition mappings between the "
            "grains (~1.5 s, none in stock) and the snapshot (~3 s), which carries more checks "
            "(the late-data check of every daily model) and one automation condition per "
            "roll-up. flower-dagster translates the project in one dagster-dbt pass and splits "
            "the specs by grain, and splits the unpartitioned models into what partitioned "
            "models read and the rest, so that Dagster has no cycle between multi-assets to "
            "break when it builds a job (that took 2.3 s at 3,000 models). "
            "What flower-dagster's `validate` adds to stock's at 3,000 models, timed without "
            "the profiler on 2026-11-27: the command checks every partitioned asset's "
            "partitions definition on its own, over the graph it reads back from the snapshot "
            "(0.45 s: 2,400 assets, about 190 us each to compute a first and a next partition "
            "key from the cron schedule, the snapshot holding one definition per asset), which "
            "is Dagster's price of partitions, whatever builds them; and, building the asset "
            "job, for every input a multi-asset takes from another (about 2,100: each grain "
            "reads the one below it), Dagster collects that multi-asset's check keys again (up "
            "to 3,400; 0.35 s), which stock's single multi-asset never does. Dagster did the "
            "same for the late-data checks, 1,500 checks reading 1,500 daily models in one "
            "definition, until (19) split them into definitions of 100. Until (17) Dagster "
            "also built each schedule's job (about 0.6 s: a subset of the daily multi-asset, "
            "whose other outputs became external assets of that job).",
        ]
    )


def _postgres_after(postgres: Result, size: str, storage: str = "flower") -> float | None:
    """The repair rule's tick after updates on PostgreSQL with `storage`, if it was taken."""
    entry = postgres.get(size, {}).get("storages", {}).get(storage)
    return entry["ticks"]["after"]["median"] if entry else None


POSTGRES_STORAGE_TEXT = {
    "dagster-postgres": "dagster-postgres as it ships (a connection per query)",
    "flower": "flower-dagster's pooled storage (`deploy/dagster.yaml`)",
}


def _postgres_row(size: str, label: str, timed: Result, bold: bool) -> list[str]:
    """One line of the PostgreSQL table: a storage's ticks, or SQLite's beside them."""
    t = timed["ticks"]
    after = seconds(t["after"]["median"])
    return [
        f"{int(size):,}",
        label,
        seconds(t["first"]["median"]),
        seconds(t["steady"]["median"]) if "steady" in t else "-",
        f"**{after}**" if bold else after,
        seconds(timed["cpu"]["after"]["median"]) if "cpu" in timed else "",
        str(timed["requested"]["after"]),
        runs_text(t["after"]["runs"]),
    ]


def _tick_postgres(postgres: Result, sqlite: Result) -> list[str]:
    rows = []
    for size, entry in postgres.items():
        for storage, timed in entry["storages"].items():
            rows.append(
                _postgres_row(size, POSTGRES_STORAGE_TEXT.get(storage, storage), timed, True)
            )
        rule = sqlite.get(size, {}).get("variants", {}).get("rule")
        if rule:
            rows.append(
                _postgres_row(
                    size, "for comparison: make dev's SQLite storage on tmpfs (above)", rule, False
                )
            )
    if not rows:
        return []
    size, first = next(iter(postgres.items()))
    stock = _postgres_after(postgres, size, "dagster-postgres")
    pooled = _postgres_after(postgres, size, "flower")
    gain = (
        f" The pool makes the tick after updates {stock / pooled:.1f}x faster."
        if stock and pooled
        else ""
    )
    return [
        "### On PostgreSQL, as deployed",
        "The repair rule again, on a throwaway PostgreSQL server on 127.0.0.1 "
        "(`tests/postgres_server.py`: Debian's server, password authentication with "
        "scram-sha-256, fsync off) with the instance of `deploy/dagster.yaml`: the same "
        f"seeded events ({first['seed']['seed_events']:,}) in a template database, each "
        "repeat on a fresh copy of it; the first tick, then the one after updates (no steady "
        "tick here). dagster-postgres, outside the webserver, opens a new "
        "connection for every query (SQLAlchemy's `NullPool`, so that short-lived processes "
        "hold none), and one tick runs thousands of queries; flower-dagster's storage classes "
        "(`flower_dagster/storage.py`) are dagster-postgres's with a small pool of connections "
        "checked before reuse. On a server across a network, with TLS, each new connection "
        "costs more than here." + gain,
        table(
            [
                "models",
                "storage",
                "first",
                "steady",
                "after updates",
                "CPU after",
                "requested after",
                "runs after (s)",
            ],
            rows,
            "llrrrrrl",
        ),
    ]


# The tick's variants (bench/tick.py VARIANTS) in the order of the table and the figure.
TICK_VARIANTS = {
    "eager": ("stock `eager()`", "Dagster's SQLite (make dev)", STOCK),
    "rule": ("flower repair rule", "Dagster's SQLite (make dev)", FLOWER),
}


def _tick(results: Result) -> str:
    sizes = results["tick"]["sizes"]
    rows = []
    for size, entry in sizes.items():
        for variant in [v for v in TICK_VARIANTS if v in entry["variants"]]:
            v = entry["variants"][variant]
            t = v["ticks"]
            condition, storage, _ = TICK_VARIANTS[variant]
            rows.append(
                [
                    f"{int(size):,}",
                    condition,
                    storage,
                    seconds(t["first"]["median"]),
                    seconds(t["steady"]["median"]),
                    f"**{seconds(t['after']['median'])}**",
                    str(v["requested"]["after"]),
                    f"{v['assets_with_condition']} / {v['daily_partitions']:,}",
                    runs_text(t["after"]["runs"]),
                ]
            )
    first = next(iter(sizes.values()))
    day = first["variants"]["rule"]["updated_partition"]
    return "\n\n".join(
        [
            "## 2. Automation tick",
            "One `evaluate_automation_conditions` over every asset, as the sensor's tick does "
            "it (the cursor is serialized and read back between ticks, as the daemon stores "
            "it). Partitions start three years before today (~1,095 daily partitions per "
            "daily asset). Each repeat starts from the same Dagster instance (SQLite files on "
            "tmpfs): the unpartitioned models and the six days before the updated day "
            "materialized for every daily asset (reported with "
            "`report_runless_asset_event`, no dbt; kept for the next `make bench` of the same "
            "day). "
            "*first* is the first evaluation of a "
            "fresh cursor, *steady* the next one with nothing new, *after* the one after a "
            f"day of updates: partition {day} (the last complete Sunday, so it completes a "
            "week) reported for every daily asset, parents before children. The same graph "
            "runs with the repair rule on every roll-up (flower-dagster) and with "
            "`AutomationCondition.eager()` on the same roll-ups (stock), both on the instance "
            "of `make dev` (`dagster_home/dagster.yaml`: Dagster's SQLite storage as it ships, "
            "which makes a new engine and connection, and compiles each statement again, for "
            "every query).",
            table(
                [
                    "models",
                    "roll-ups carry",
                    "storage",
                    "first",
                    "steady",
                    "after updates",
                    "requested after",
                    "roll-ups / daily partitions",
                    "runs after (s)",
                ],
                rows,
                "lllrrrrrl",
            ),
            _image("tick"),
            "What dominates the tick after updates (cProfile at 1,000 models), for both "
            "conditions alike: the `since` parts (the rule's trigger and its request check; "
            "`eager()`'s `since_last_handled`) are evaluated over all ~1,095 partitions of "
            "every roll-up, and for each pair of a roll-up and an updated parent Dagster "
            "fetches the parent's per-partition materialization times from the event log (two "
            "queries per pair, not shared between the roll-ups that read the same parent; about "
            "a fifth of the rule's tick); bringing each updated "
            "asset's partition status up to date "
            "(once per asset, the same for `eager()`); and the cursor, serialized and read back "
            "every tick, whose size grows with the number of condition nodes per roll-up (about "
            "9 MB at 1,000 models, after the rule was made smaller, see below; written and read "
            "back, about a fifth of the tick too). On Dagster's "
            "SQLite storage as it ships, about half of the tick is opening connections and "
            "compiling statements, a few thousand times; dagster-postgres outside the "
            "webserver opens a connection per query too (below). The tick grows with the "
            "number of roll-ups, not with the partitions updated.",
            *_tick_postgres(results["tick"].get("postgres", {}), sizes),
        ]
    )


def _partition_run(results: Result) -> str:
    result = results["partition_run"]
    rows = []
    for o in result["options"]:
        parses = sorted({r["parse"] for r in o["runs"]})
        correct = "-" if o["correct"] is None else ("yes" if o["correct"] else "**NO**")
        rows.append(
            [
                o["key"],
                o["label"],
                seconds(o["median_seconds"]),
                str(len(o["runs"])),
                f"{'yes' if o['reparsed'] else 'no'} ({'; '.join(parses)})",
                correct,
            ]
        )
    return "\n\n".join(
        [
            "## 3. One partition run",
            f"`bench/partition_run.py`: one daily partition of `{result['model']}` (a top-layer "
            f"daily model, {result['model_ancestors']} ancestors) in a "
            f"{result['models']:,}-model project, `dbt build --select` it, one new day per run. "
            "(a) is stock dagster-dbt with the window in `--vars`, which makes dbt re-parse "
            "the project; (b) is flower-dagster: the window in `FLOWER_WINDOW_START/END` and "
            "the partial-parse file of one `dbt parse` copied in, as dagster-dbt does. After "
            "every run the window's rows are compared with a direct query of the raw table.",
            table(
                ["option", "what", "median", "runs", "re-parsed", "rows correct"],
                rows,
                "llrrll",
            ),
            _image("partition_run"),
        ]
    )


def _backfill(results: Result) -> str:
    b = results["backfill"]
    c = b["contenders"]
    floor = c["floor_run"]["median"]
    rows = [
        [
            "flower-dagster: one Dagster run, one `dbt build` over the range",
            seconds(c["flower"]["median"]),
            times(b["ratios"]["flower_vs_floor_run"]),
            runs_text(c["flower"]["runs"]),
        ],
        [
            f"one `dbt run` per day (the Airflow way): **extrapolated** from "
            f"{c['per_day']['measured_runs']} days x {b['days']}",
            seconds(c["per_day"]["extrapolated_year"]),
            times(b["ratios"]["per_day_vs_floor_run"]),
            f"{c['per_day']['median']:.1f} s per day ({runs_text(c['per_day']['runs'])})",
        ],
        [
            "floor: one plain `dbt run` with the year's window",
            seconds(floor),
            "1.00x",
            runs_text(c["floor_run"]["runs"]),
        ],
        [
            "one plain `dbt build` (run + tests, what flower-dagster runs)",
            seconds(c["floor_build"]["median"]),
            times(c["floor_build"]["median"] / floor if floor else None),
            runs_text(c["floor_build"]["runs"]),
        ],
    ]
    return "\n\n".join(
        [
            "## 4. A 365-day backfill",
            f"`bench/backfill.py`: {b['days']} daily partitions ({b['range'][0]} ... "
            f"{b['range'][1]}) of `{b['model']}` in a {b['models']:,}-model project on DuckDB, "
            f"{b['rows_per_day']:,} rows a day; the model exists and every contender "
            "overwrites the year. flower-dagster runs "
            "`dagster asset materialize --select <model> --partition-range FIRST...LAST` "
            "(a fresh process that loads the code location, like a run worker; its instance "
            "`make dev`'s, `dagster_home/dagster.yaml`, on tmpfs) and records one "
            "materialization per partition. After every contender "
            "the year's rows are checked against a direct query of the raw table.",
            table(["contender", "median", "vs floor", "runs (s)"], rows, "lrrl"),
            f"flower-dagster vs `dbt build` over the same window: "
            f"{times(b['ratios']['flower_vs_floor_build'])}. flower-dagster's time is the "
            "floor plus a cost per run that does not grow with the data, "
            f"{seconds(c['flower']['median'] - floor)} here: what the run's process does "
            "besides dbt (cProfile of one run). "
            "Besides dbt: starting Python and importing Dagster and dagster-dbt, which imports "
            "much of dbt-core (~2.5 s); loading the code location (~1 s at 200 models); and "
            "writing two events "
            "per partition to the instance's event log, the planned materialization and the "
            "materialization (~730 events), which Dagster needs to show and track each day; "
            "and dagster-dbt's start of dbt (`dbt --version` in a subprocess, then dbt itself "
            "in a new Python that imports dbt-core again). "
            "dbt assets run with the in-process executor, so no second process loads the "
            "code location before dbt starts (it did with Dagster's default multiprocess "
            "executor: 3.3 s more, see below). The floor itself is mostly dbt's start-up: "
            "DuckDB writes the year in under a second here, and a `dbt run` that selects no "
            "model took 4.5 s on the same project (timed once, on 2026-11-27: importing dbt, "
            "reading the project and its partial parse, writing the manifest). "
            "With more rows a day the ratio falls, since the "
            "floor grows and the overhead does not; one dbt process per day pays dbt's start-up "
            f"{b['days']} times.",
            _image("backfill"),
        ]
    )


def _precision(results: Result) -> str:
    p = results["precision"]
    rows = [
        [
            t["model"],
            t["day"],
            str(t["requested"]),
            str(t["true"]),
            f"{t['precision']:.2f}",
            f"{t['recall']:.2f}",
            ", ".join(t["requested_twice"]) or "-",
        ]
        for t in p["trials"]
    ]
    return "\n\n".join(
        [
            "## 5. Repair precision",
            f"`bench/precision.py`: a {p['models']}-model project with every partition of "
            f"every model materialized since {p['first_partition']} (reported, no dbt). Each "
            "of the trials repairs one random day of one random daily model (some among "
            "the last weeks, whose week or month may not have ended), then the automation "
            "settles: evaluate, report what it requested as materialized, evaluate again "
            "until it requests nothing. The truth is computed from the generator's plan and "
            "calendar arithmetic, not from Dagster's mappings: every model downstream of the "
            "repaired one has its partition containing the day rebuilt (the day, the Monday "
            "of its week, the first of its month) if that partition has ended.",
            table(
                ["trials", "requested", "truly containing", "precision", "recall"],
                [
                    [
                        str(len(p["trials"])),
                        str(p["requested"]),
                        str(p["true"]),
                        f"**{p['precision']:.2f}**",
                        f"**{p['recall']:.2f}**",
                    ]
                ],
                "rrrrr",
            ),
            "A partition is counted once however often it was requested. *Requested twice* "
            "lists the roll-ups that read both the repaired model and one of its descendants: "
            "the rule requests them when the repaired day lands and again when the "
            "descendant's rebuild lands (the first time every input is present, one of them "
            "not yet rebuilt): the same partition is built twice.",
            "<details><summary>Every trial</summary>\n\n"
            + table(
                ["model", "day", "requested", "true", "precision", "recall", "requested twice"],
                rows,
                "llrrrrl",
            )
            + "\n\n</details>",
        ]
    )


def _lint(results: Result) -> str:
    lint = results["lint"]
    rows = [
        [
            r["tool"],
            seconds(r["median_s"]),
            f"{r['models_per_s']:.0f}",
            str(len(r["runs_s"])),
            runs_text(r["runs_s"]),
        ]
        for r in lint["results"]
    ]
    return "\n\n".join(
        [
            "## 6. Lint",
            f"`bench/lint.py`: {lint['models']:,} generated models, each tool a fresh process "
            "on the same files: `flower lint` (all rules) and `sqlfluff lint` (jinja "
            "templater, dialect duckdb, one process). sqlfluff takes minutes, so it runs "
            "fewer times.",
            table(["tool", "median", "models/s", "runs", "runs (s)"], rows, "lrrrl"),
            _image("lint"),
        ]
    )


def _optimisation(opt: Result) -> str:
    rows = [[r["what"], r["before"], r["after"], r["change"]] for r in opt["rows"]]
    return "\n\n".join(
        [
            "## What was optimised",
            opt["text"],
            table(["measure", "before", "after", "change"], rows, "lrrl"),
        ]
    )


# --- figures ------------------------------------------------------------------------------


def draw_figures(results: Result, images_dir: Path) -> list[Path]:
    """One PNG per comparison; returns the files written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for key, draw in (
        ("load", _draw_load),
        ("tick", _draw_tick),
        ("partition_run", _draw_partition_run),
        ("backfill", _draw_backfill),
        ("lint", _draw_lint),
    ):
        if not results.get(key):
            continue
        fig = draw(plt, results[key])
        path = images_dir / IMAGES[key]
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written


def _bar_labels(ax: Any, bars: Any, fmt: str = "{:.1f} s", fontsize: int = 8) -> None:
    for bar in bars:
        ax.annotate(
            fmt.format(bar.get_height()),
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=fontsize,
            xytext=(0, 2),
            textcoords="offset points",
        )


def _draw_load(plt: Any, load: Result) -> Any:
    sizes = list(load["sizes"])
    fig, (ax_time, ax_mem) = plt.subplots(1, 2, figsize=(10, 4))
    width = 0.38
    xs = range(len(sizes))
    for offset, side, color, label in (
        (-width / 2, "stock", STOCK, "stock @dbt_assets (unpartitioned)"),
        (width / 2, "flower", FLOWER, "flower-dagster (grains, rule, checks)"),
    ):
        totals = [load["sizes"][s]["sides"][side]["total"]["median"] for s in sizes]
        mems = [load["sizes"][s]["sides"][side]["peak_rss_mb"]["median"] for s in sizes]
        _bar_labels(
            ax_time, ax_time.bar([x + offset for x in xs], totals, width, color=color, label=label)
        )
        _bar_labels(
            ax_mem, ax_mem.bar([x + offset for x in xs], mems, width, color=color), "{:.0f}"
        )
    for ax in (ax_time, ax_mem):
        ax.set_xticks(list(xs), [f"{int(s):,} models" for s in sizes])
        ax.spines[["top", "right"]].set_visible(False)
    ax_time.set_ylabel("seconds (median, wall)")
    ax_time.set_title("dagster definitions validate")
    ax_mem.set_ylabel("MB")
    ax_mem.set_title("peak memory")
    for ax in (ax_time, ax_mem):
        ax.margins(y=0.12)
    handles, labels = ax_time.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, frameon=False, fontsize=9)
    fig.subplots_adjust(bottom=0.2)
    return fig


def _draw_tick(plt: Any, tick: Result) -> Any:
    sizes = list(tick["sizes"])
    postgres = {
        size: entry for size, entry in tick.get("postgres", {}).items() if entry.get("storages")
    }
    panels = len(sizes) + len(postgres)
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4), squeeze=False)
    ticks = ("first", "steady", "after")
    for ax, size in zip(axes[0][: len(sizes)], sizes, strict=True):
        variants = tick["sizes"][size]["variants"]
        drawn = [v for v in TICK_VARIANTS if v in variants]
        width = 0.8 / len(drawn)
        for index, variant in enumerate(drawn):
            condition, storage, color = TICK_VARIANTS[variant]
            offset = (index - (len(drawn) - 1) / 2) * width
            values = [variants[variant]["ticks"][t]["median"] for t in ticks]
            label = f"{condition.replace('`', '')}, {storage.split(' (')[0]} storage"
            bars = ax.bar([i + offset for i in range(3)], values, width, color=color, label=label)
            _bar_labels(ax, bars, "{:.1f}" if len(drawn) > 2 else "{:.1f} s", 7)
        ax.set_xticks(range(3), ["first tick", "steady tick", "after a day\nof updates"])
        ax.set_title(f"{int(size):,} models")
        ax.set_ylabel("seconds (median, wall)")
        ax.margins(y=0.12)
        ax.spines[["top", "right"]].set_visible(False)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    for ax, (size, entry) in zip(axes[0][len(sizes) :], postgres.items(), strict=True):
        bars = [
            ("dagster-postgres\n(a connection\nper query)", "dagster-postgres", STOCK),
            ("flower-dagster\n(pooled)", "flower", FLOWER),
        ]
        labels, values, colors = [], [], []
        for label, storage, color in bars:
            if storage in entry["storages"]:
                labels.append(label)
                values.append(entry["storages"][storage]["ticks"]["after"]["median"])
                colors.append(color)
        rule = tick["sizes"].get(size, {}).get("variants", {}).get("rule")
        if rule:
            labels.append("SQLite on tmpfs\n(make dev's storage)")
            values.append(rule["ticks"]["after"]["median"])
            colors.append(FLOWER)  # the rule as it ships: the same bar as in the first panel
        _bar_labels(ax, ax.bar(range(len(values)), values, 0.6, color=colors))
        ax.set_xticks(range(len(values)), labels, fontsize=8)
        ax.set_title(
            f"{int(size):,} models, tick after updates:\nrepair rule by storage", fontsize=10
        )
        ax.set_ylabel("seconds (median, wall)")
        ax.margins(y=0.12)
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle("One evaluation of every automation condition (3 years of daily partitions)")
    fig.subplots_adjust(top=0.8, bottom=0.3)
    return fig


def _draw_partition_run(plt: Any, result: Result) -> Any:
    options = result["options"]
    labels = {
        "a": "stock dagster-dbt\n(--vars: re-parse)",
        "b": "flower-dagster\n(window in env)",
        "c-env": "in-process dbtRunner\n(window in env)",
        "c-vars": "in-process dbtRunner\n(--vars)",
        "parse-full": "dbt parse\n(full)",
        "parse-partial": "dbt parse\n(partial, no change)",
    }
    colors = {"a": STOCK, "b": FLOWER}
    fig, ax = plt.subplots(figsize=(2 + 1.6 * len(options), 4))
    bars = ax.bar(
        [labels.get(o["key"], o["key"]) for o in options],
        [o["median_seconds"] for o in options],
        color=[colors.get(o["key"], OTHER) for o in options],
    )
    _bar_labels(ax, bars)
    ax.set_ylabel("seconds (median, wall)")
    ax.set_title(f"One daily partition run, {result['models']:,}-model project")
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def _draw_backfill(plt: Any, backfill: Result) -> Any:
    c = backfill["contenders"]
    names = [
        "plain dbt run\n(floor)",
        "plain dbt build",
        "flower-dagster\n(one Dagster run)",
        f"one dbt run per day\n(extrapolated from {c['per_day']['measured_runs']})",
    ]
    values = [
        c["floor_run"]["median"],
        c["floor_build"]["median"],
        c["flower"]["median"],
        c["per_day"]["extrapolated_year"],
    ]
    fig, ax = plt.subplots(figsize=(8, 4))
    bars = ax.bar(names, values, color=[STOCK, STOCK, FLOWER, OTHER])
    _bar_labels(ax, bars, "{:,.1f} s")
    ax.set_yscale("log")
    ax.set_ylabel("seconds (median, wall, log scale)")
    ax.set_title(f"A {backfill['days']}-day backfill of one daily model on DuckDB")
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def _draw_lint(plt: Any, lint: Result) -> Any:
    rows = lint["results"]
    fig, ax = plt.subplots(figsize=(6, 4))
    bars = ax.bar(
        [r["tool"].replace(" (", "\n(") for r in rows],
        [r["median_s"] for r in rows],
        color=[FLOWER, STOCK],
    )
    _bar_labels(ax, bars)
    ax.set_yscale("log")
    ax.set_ylabel("seconds (median, wall, log scale)")
    ax.set_title(f"Linting {lint['models']:,} models")
    ax.spines[["top", "right"]].set_visible(False)
    return fig
