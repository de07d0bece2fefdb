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


# The goals of issue 22 (and 26 for lint), judged by `goal_rows`.
LOAD_MAX_RATIO = 1.2
VALIDATE_MAX_SECONDS = 15.0
LINT_MIN_SPEEDUP = 20.0


def _pg_after(postgres: Result, size: str, variant: str) -> float | None:
    """A PostgreSQL variant's tick after updates (bench/tick.py POSTGRES_VARIANTS), if taken."""
    entry = (postgres.get(size) or {}).get("variants", {}).get(variant)
    return entry["ticks"]["after"]["median"] if entry else None


def _versus(ours: float, theirs: float) -> str:
    """Our time vs theirs, and how many times faster (or slower) ours is."""
    if ours <= 0 or theirs <= 0:
        how = "-"
    elif ours <= theirs:
        how = f"{theirs / ours:.1f}x faster"
    else:
        how = f"{ours / theirs:.2f}x slower"
    return f"{seconds(ours)} vs {seconds(theirs)} ({how})"


def goal_rows(results: Result) -> list[dict[str, Any]]:
    """Each goal of the issues: what was asked, what was measured, and whether it is met
    (True/False; None for a row given as information only). A step that did not run has no
    rows."""
    rows: list[dict[str, Any]] = []
    load = (results.get("load") or {}).get("sizes", {})
    for size in ("1000", "3000"):
        entry = load.get(size)
        if entry is None:
            continue
        rows.append(
            {
                "item": "1. Load",
                "goal": f"flower-dagster <= {LOAD_MAX_RATIO}x stock `@dbt_assets` at "
                f"{int(size):,} models (wall)",
                "result": (
                    f"{times(entry['ratio_total'])} wall, {times(entry.get('ratio_cpu'))} CPU"
                ),
                "met": entry["ratio_total"] <= LOAD_MAX_RATIO,
            }
        )
    if "3000" in load:
        total = load["3000"]["sides"]["flower"]["total"]["median"]
        rows.append(
            {
                "item": "1. Load",
                "goal": "`dagster definitions validate` under 15 s at 3,000 models",
                "result": seconds(total),
                "met": total < VALIDATE_MAX_SECONDS,
            }
        )
    tick = results.get("tick") or {}
    postgres = tick.get("postgres") or {}
    rule = _pg_after(postgres, "1000", "rule")
    stock = _pg_after(postgres, "1000", "stock")
    pooled = _pg_after(postgres, "1000", "eager-pooled")
    if rule is not None and stock is not None:
        rows.append(
            {
                "item": "2. Tick",
                "goal": "PostgreSQL as deployed, 1,000 models, tick after updates: the repair "
                "rule on the pooled storage faster than stock `eager()` on dagster-postgres "
                "as it ships",
                "result": _versus(rule, stock),
                "met": rule < stock,
            }
        )
    if rule is not None and pooled is not None:
        rows.append(
            {
                "item": "2. Tick",
                "goal": "... and faster than `eager()` on the same pooled storage (the storage "
                "alone does not meet it)",
                "result": _versus(rule, pooled),
                "met": rule < pooled,
            }
        )
    sqlite = (tick.get("sizes") or {}).get("1000", {}).get("variants", {})
    if "rule" in sqlite and "eager" in sqlite:
        rows.append(
            {
                "item": "2. Tick",
                "goal": "information: make dev's SQLite, 1,000 models, the repair rule vs "
                "`eager()` after updates",
                "result": _versus(
                    sqlite["rule"]["ticks"]["after"]["median"],
                    sqlite["eager"]["ticks"]["after"]["median"],
                ),
                "met": None,
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
                    "result": _versus(b["median_seconds"], a["median_seconds"]),
                    "met": (not b["reparsed"])
                    and bool(b["correct"])
                    and b["median_seconds"] < a["median_seconds"],
                }
            )
    backfill = results.get("backfill")
    if backfill:
        c = backfill["contenders"]
        ours, per_day = c["flower"]["median"], c["per_day"]["extrapolated_year"]
        rows.append(
            {
                "item": "4. Backfill",
                "goal": f"{backfill['days']}-day backfill (one Dagster run of the range) "
                "faster than one run per day",
                "result": _versus(ours, per_day) + " (per day extrapolated)",
                "met": ours < per_day,
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
        speedup = fluff["median_s"] / flower["median_s"] if flower["median_s"] else None
        rows.append(
            {
                "item": "6. Lint",
                "goal": f"`flower lint` at least {LINT_MIN_SPEEDUP:.0f}x faster than sqlfluff "
                f"on the same {lint['models']:,} models",
                "result": f"{seconds(flower['median_s'])} vs {seconds(fluff['median_s'])} "
                f"({'-' if speedup is None else f'{speedup:.0f}x faster'})",
                "met": speedup is not None and speedup >= LINT_MIN_SPEEDUP,
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
            "`make bench` measures flower-dagster against stock Dagster and dbt on generated "
            "dbt projects (`bench/generate_project.py`). Every figure is the median of "
            "repeated runs, each a fresh process; raw figures are in `bench/out/*.json`.",
            "",
            _taken_text(results) + ", on a "
            f"{machine.get('cpus', '?')}-CPU machine: load average (1, 5, 15 min) "
            f"{_load_text(results.get('load_average_start'))} at the start, "
            f"{_load_text(results.get('load_average_end'))} at the end. "
            + _load_remark(results, machine.get("cpus"))
            + _reference_text(results),
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
            "info" if row["met"] is None else ("yes" if row["met"] else "**no**"),
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
                    f"{s['peak_rss_mb']['median']:.0f}",
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
                f"{entry['repeats']} repeats",
            ]
        )
    return "\n\n".join(
        [
            "## 1. Loading the code location",
            "`bench/load.py`: a fresh process imports the code location (flower-dagster's "
            "`flower_dagster.definitions`, or `bench/stock_defs.py`, one unpartitioned "
            "`@dbt_assets` over the same manifest) and runs `dagster definitions validate`; "
            "*total* is its wall time from spawn to the end. Both do the same work, so the "
            "goal is to stay close to stock. flower-dagster builds more: a multi-asset per "
            "grain from dagster-dbt's specs, a source check per roll-up, a late-data check "
            "per daily model, a job per schedule, and partitions to validate. Its spec cache "
            "(near 1.0x until 2026-12-01) used private dagster-dbt code and was removed.",
            table(
                [
                    "models",
                    "code location",
                    "total",
                    "CPU",
                    "peak MB",
                    "assets / checks",
                    "runs (s)",
                ],
                rows,
                "llrrrrl",
            ),
            _image("load"),
        ]
    )


# The tick's variants (bench/tick.py VARIANTS and POSTGRES_VARIANTS) in table and figure order:
# (the roll-ups' condition, the storage, the colour).
TICK_VARIANTS = {
    "eager": ("stock `eager()`", "Dagster's SQLite (make dev)", STOCK),
    "rule": ("flower repair rule", "Dagster's SQLite (make dev)", FLOWER),
}
POSTGRES_TICK_VARIANTS = {
    "stock": ("stock `eager()`", "dagster-postgres as it ships", STOCK),
    "eager-pooled": ("stock `eager()`", "flower-dagster's pooled storage", LIGHT),
    "rule": ("flower repair rule", "flower-dagster's pooled storage (as it ships)", FLOWER),
}


TICKS = ("first", "steady", "after")


def _tick_row(size: str, variant: Result, condition: str, storage: str, where: str) -> list[str]:
    t = variant["ticks"]
    return [
        f"{int(size):,}",
        where,
        condition,
        storage,
        seconds(t["first"]["median"]),
        seconds(t["steady"]["median"]) if "steady" in t else "-",
        f"**{seconds(t['after']['median'])}**",
        str(variant["requested"]["after"]),
        runs_text(t["after"]["runs"]),
    ]


def _tick(results: Result) -> str:
    tick = results["tick"]
    rows = []
    for size, entry in (tick.get("postgres") or {}).items():
        for name, (condition, storage, _) in POSTGRES_TICK_VARIANTS.items():
            if name in entry.get("variants", {}):
                rows.append(_tick_row(size, entry["variants"][name], condition, storage, "PG"))
    for size, entry in tick["sizes"].items():
        for name, (condition, storage, _) in TICK_VARIANTS.items():
            if name in entry["variants"]:
                rows.append(_tick_row(size, entry["variants"][name], condition, storage, "SQLite"))
    return "\n\n".join(
        [
            "## 2. Automation tick",
            "`bench/tick.py`: one `evaluate_automation_conditions` over every asset (three "
            "years of daily partitions) from the same seeded instance, each variant a fresh "
            "process: *first* on a fresh cursor, *steady* with nothing new, *after* once a "
            "day's partition of every daily asset is reported materialized. On PostgreSQL as "
            "deployed (`deploy/dagster.yaml`, a local server, the first and after ticks only) "
            "stock `eager()` on dagster-postgres as it ships is compared with `eager()` and "
            "with the repair rule on flower-dagster's pooled storage; make dev's SQLite "
            "compares the two conditions on Dagster's own storage.",
            table(
                [
                    "models",
                    "database",
                    "roll-ups carry",
                    "storage",
                    "first",
                    "steady",
                    "after updates",
                    "requested after",
                    "runs after (s)",
                ],
                rows,
                "llllrrrrl",
            ),
            _image("tick"),
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
            f"`bench/partition_run.py`: `dbt build` of one daily partition of "
            f"`{result['model']}` in a {result['models']:,}-model project, a new day per run. "
            "(a) stock dagster-dbt passes the window in `--vars`, which makes dbt re-parse; "
            "(b) flower-dagster passes it in the environment with the partial-parse file of "
            "one `dbt parse`. The rows are checked against the raw table after every run.",
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
            "flower-dagster: one Dagster run, one `dbt build` over the range (write, audit, "
            "publish)",
            seconds(c["flower"]["median"]),
            times(b["ratios"]["flower_vs_floor_run"]),
            runs_text(c["flower"]["runs"]),
        ],
        [
            f"one `dbt run` per day: **extrapolated** from "
            f"{c['per_day']['measured_runs']} days x {b['days']}",
            seconds(c["per_day"]["extrapolated_year"]),
            times(b["ratios"]["per_day_vs_floor_run"]),
            f"{c['per_day']['median']:.1f} s per day ({runs_text(c['per_day']['runs'])})",
        ],
        [
            "information: one plain `dbt run` with the year's window",
            seconds(floor),
            "1.00x",
            runs_text(c["floor_run"]["runs"]),
        ],
        [
            "information: one plain `dbt build` (run + tests)",
            seconds(c["floor_build"]["median"]),
            times(c["floor_build"]["median"] / floor if floor else None),
            runs_text(c["floor_build"]["runs"]),
        ],
    ]
    return "\n\n".join(
        [
            "## 4. A 365-day backfill",
            f"`bench/backfill.py`: {b['days']} daily partitions of `{b['model']}` in a "
            f"{b['models']:,}-model project on DuckDB. flower-dagster runs "
            "`dagster asset materialize --partition-range` (one run, one materialization per "
            "partition); one run per day is timed for a few days and extrapolated to the "
            "year. Plain dbt over the year's window is shown for information; the rows are "
            "checked after every contender. The time over plain dbt is Dagster recording each "
            "partition's events through its SQLite storage; the event batching and storage "
            "that made it 1.45x plain dbt (2026-12-01) used private Dagster code and went.",
            table(["contender", "median", "vs plain dbt run", "runs (s)"], rows, "lrrl"),
            *_backfill_wap(b),
            _image("backfill"),
        ]
    )


def _backfill_wap(b: Result) -> list[str]:
    """What write, audit, publish costs: the same contender on the two copies of the project."""
    c = b["contenders"]
    if "flower_direct" not in c or "build_wap" not in c:
        return []  # figures from before the side-by-side

    def row(what: str, direct: Result, wap: Result) -> list[str]:
        plain, audited = direct["median"], wap["median"]
        cells = [
            what,
            f"{seconds(plain)} ({runs_text(direct['runs'])})",
            f"{seconds(audited)} ({runs_text(wap['runs'])})",
            f"{audited - plain:+.1f} s ({times(audited / plain if plain else None)})",
        ]
        if "cpu" in direct and "cpu" in wap:  # CPU seconds: what a busy machine blurs less
            cpu_plain, cpu_audited = direct["cpu"]["median"], wap["cpu"]["median"]
            ratio_text = times(cpu_audited / cpu_plain if cpu_plain else None)
            cells.append(f"{cpu_plain:.1f} / {cpu_audited:.1f} s ({ratio_text})")
        else:
            cells.append("-")
        return cells

    rows = [
        row("flower-dagster: one Dagster run of the range", c["flower_direct"], c["flower"]),
        row("plain `dbt build` with the year's window", c["floor_build"], c["build_wap"]),
    ]
    return [
        "What write, audit, publish ([publish.md](publish.md)) costs: the same contenders, "
        "alternating, on the project as flower-dagster ships it (the publish hooks of "
        "`dbt_project/dbt_project.yml`) and on a copy without the hooks, whose runs write the "
        "table directly, as stock dbt does (the plain dbt rows above and one run per day ran on "
        "that copy). The rows are checked after each run, and that the audited runs wrote "
        "through the audit relation, which their publish dropped. The cost is one more write "
        "of the window's rows: into the audit relation, then from it into the table.",
        table(
            [
                "365 days, wall: median (runs)",
                "written directly",
                "write, audit, publish",
                "cost",
                "CPU: direct / WAP",
            ],
            rows,
            "lrrrr",
        ),
    ]


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
            f"`bench/precision.py`: in a {p['models']}-model project with every partition "
            "materialized, each trial repairs one random day of one daily model and lets the "
            "automation settle. What it requested is compared with the truth from the "
            "generator's plan and calendar arithmetic: every downstream partition containing "
            "the day, if it has ended.",
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
            "templater, dialect duckdb). sqlfluff takes minutes, so it runs fewer times.",
            table(["tool", "median", "models/s", "runs", "runs (s)"], rows, "lrrrl"),
            _image("lint"),
        ]
    )


def _optimisation(opt: Result) -> str:
    rows = [[r["what"], r["before"], r["after"], r["change"]] for r in opt["rows"]]
    return "\n\n".join(
        [
            "## What was optimised",
            "Product changes measured once, before and after (`bench/optimisation.json`, "
            "which says how each was measured).",
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


def _draw_tick_panel(
    ax: Any, variants: Result, drawn: Mapping[str, tuple[str, str, str]], ticks: Sequence[str]
) -> None:
    """One panel: every drawn variant's median per tick, side by side."""
    names = [v for v in drawn if v in variants]
    width = 0.8 / max(len(names), 1)
    labels = {"first": "first tick", "steady": "steady tick", "after": "after a day\nof updates"}
    for index, name in enumerate(names):
        condition, storage, color = drawn[name]
        offset = (index - (len(names) - 1) / 2) * width
        values = [variants[name]["ticks"][t]["median"] for t in ticks]
        label = f"{condition.replace('`', '')}, {storage}"
        bars = ax.bar(
            [i + offset for i in range(len(ticks))], values, width, color=color, label=label
        )
        _bar_labels(ax, bars, "{:.1f}" if len(names) > 2 else "{:.1f} s", 7)
    ax.set_xticks(range(len(ticks)), [labels[t] for t in ticks])
    ax.set_ylabel("seconds (median, wall)")
    ax.margins(y=0.12)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(fontsize=7, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2))


def _draw_tick(plt: Any, tick: Result) -> Any:
    """PostgreSQL as deployed first (the goal's three variants), then make dev's SQLite."""
    postgres = {
        size: entry["variants"]
        for size, entry in (tick.get("postgres") or {}).items()
        if entry.get("variants")
    }
    sizes = list(tick["sizes"])
    panels = len(postgres) + len(sizes)
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4.5), squeeze=False)
    for ax, (size, variants) in zip(axes[0][: len(postgres)], postgres.items(), strict=True):
        _draw_tick_panel(ax, variants, POSTGRES_TICK_VARIANTS, ("first", "after"))
        ax.set_title(f"PostgreSQL as deployed, {int(size):,} models", fontsize=10)
    for ax, size in zip(axes[0][len(postgres) :], sizes, strict=True):
        _draw_tick_panel(ax, tick["sizes"][size]["variants"], TICK_VARIANTS, TICKS)
        ax.set_title(f"make dev's SQLite, {int(size):,} models", fontsize=10)
    fig.suptitle("One evaluation of every automation condition (3 years of daily partitions)")
    fig.subplots_adjust(top=0.85, bottom=0.3)
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
