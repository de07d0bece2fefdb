"""The benchmark's own logic (bench/): pure and fast, no timing, no dbt, no Dagster runs."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import yaml

from bench.backfill import pick_model
from bench.common import (
    median,
    partition_start,
    ratio,
    reference_seconds,
    settings_yaml,
    summary,
)
from bench.generate_project import (
    DEMO_PROJECT,
    Kind,
    ModelSpec,
    generate_project,
    kind_counts,
    plan_project,
)
from bench.precision import (
    Repair,
    containing_partition,
    descendants,
    pick_repairs,
    precision_recall,
    true_partitions,
)
from bench.report import goal_rows, render_markdown, table
from bench.tick import updated_day


def test_the_generator_plans_the_same_project_for_the_same_size_and_seed():
    assert plan_project(200, seed=1) == plan_project(200, seed=1)
    assert plan_project(200, seed=1) != plan_project(200, seed=2)
    counts = kind_counts(1000)
    assert sum(counts.values()) == 1000
    assert counts[Kind.DAILY] == 500


def test_median_and_summary_keep_every_run():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 2.0, 3.0]) == 2.5
    assert summary([1.23456, 2.0, 9.0], digits=2) == {"median": 2.0, "runs": [1.23, 2.0, 9.0]}
    assert ratio(3.0, 2.0) == 1.5
    assert ratio(1.0, 0.0) is None
    with pytest.raises(ValueError):
        median([])


def test_partitions_start_three_years_back():
    assert partition_start(date(2026, 11, 26)) == date(2023, 11, 27)


@pytest.mark.parametrize(
    ("kind", "day", "expected"),
    [
        (Kind.DAILY, date(2025, 3, 5), "2025-03-05"),
        (Kind.WEEKLY, date(2025, 3, 5), "2025-03-03"),  # a Wednesday: its Monday
        (Kind.WEEKLY, date(2025, 3, 9), "2025-03-03"),  # a Sunday: the same week
        (Kind.WEEKLY, date(2025, 3, 31), "2025-03-31"),  # a week that straddles two months
        (Kind.MONTHLY, date(2025, 3, 31), "2025-03-01"),
        (Kind.MONTHLY, date(2024, 2, 29), "2024-02-01"),
        (Kind.TABLE, date(2025, 3, 5), None),  # unpartitioned
    ],
)
def test_the_partition_that_contains_a_day(kind, day, expected):
    assert containing_partition(kind, day, first=date(2024, 1, 1), today=date(2026, 1, 1)) == (
        expected
    )


def test_partitions_that_have_not_ended_or_start_before_the_first_do_not_exist():
    today = date(2026, 11, 26)  # a Thursday
    first = date(2024, 1, 3)  # a Wednesday: the first week starts on Monday 2024-01-08
    assert containing_partition(Kind.WEEKLY, date(2026, 11, 24), first, today) is None
    assert containing_partition(Kind.WEEKLY, date(2026, 11, 22), first, today) == "2026-11-16"
    assert containing_partition(Kind.MONTHLY, date(2026, 11, 2), first, today) is None
    assert containing_partition(Kind.MONTHLY, date(2026, 10, 31), first, today) == "2026-10-01"
    assert containing_partition(Kind.WEEKLY, date(2024, 1, 5), first, today) is None
    assert containing_partition(Kind.MONTHLY, date(2024, 1, 5), first, today) is None
    assert containing_partition(Kind.DAILY, date(2026, 11, 25), first, today) == "2026-11-25"


def _spec(name: str, kind: Kind, parents: tuple[str, ...] = ()) -> ModelSpec:
    return ModelSpec(name, kind, 0, parents, 0, ())


PLAN = [
    _spec("stg", Kind.STAGING),
    _spec("day_a", Kind.DAILY, ("stg",)),
    _spec("day_b", Kind.DAILY, ("day_a",)),
    _spec("wk", Kind.WEEKLY, ("day_a", "day_b")),
    _spec("mon", Kind.MONTHLY, ("day_b",)),
    _spec("tbl", Kind.TABLE, ("mon",)),
]


def test_the_truth_follows_the_plan_downstream_and_the_calendar():
    assert descendants(PLAN, "day_a") == {"day_b", "wk", "mon", "tbl"}
    truth = true_partitions(
        PLAN, [Repair("day_a", date(2025, 3, 31))], date(2024, 1, 1), date(2026, 1, 1)
    )
    assert truth == {("day_b", "2025-03-31"), ("wk", "2025-03-31"), ("mon", "2025-03-01")}
    assert true_partitions(
        PLAN, [Repair("day_b", date(2025, 12, 31))], date(2024, 1, 1), date(2026, 1, 1)
    ) == {("mon", "2025-12-01")}  # its week (Monday 2025-12-29) has not ended


def test_precision_and_recall():
    truth = {("wk", "2025-03-31"), ("mon", "2025-03-01")}
    assert precision_recall(set(truth), truth) == (1.0, 1.0)
    assert precision_recall({("wk", "2025-03-31")}, truth) == (1.0, 0.5)
    assert precision_recall(truth | {("wk", "2025-03-24")}, truth) == (2 / 3, 1.0)
    assert precision_recall(set(), set()) == (1.0, 1.0)


def test_repaired_days_are_reproducible_and_some_are_recent():
    specs = plan_project(20)
    first, last = date(2025, 1, 1), date(2025, 12, 31)
    repairs = pick_repairs(specs, 10, first, last)
    assert repairs == pick_repairs(specs, 10, first, last)
    assert all(first <= r.day <= last for r in repairs)
    assert all(r.model.startswith("day_") for r in repairs)
    assert sum(r.day > last - timedelta(days=45) for r in repairs) >= 3


def test_calendar_arithmetic_agrees_with_dagster_partitions():
    from dagster import MonthlyPartitionsDefinition, WeeklyPartitionsDefinition

    weekly = WeeklyPartitionsDefinition(start_date="2024-01-03", day_offset=1)
    monthly = MonthlyPartitionsDefinition(start_date="2024-01-03")
    today = date(2024, 6, 30)
    for offset in range(0, 170, 3):
        day = date(2024, 1, 3) + timedelta(days=offset)
        for kind, partitions in ((Kind.WEEKLY, weekly), (Kind.MONTHLY, monthly)):
            expected = next(
                (
                    key
                    for key in partitions.get_partition_keys(current_time=_midnight(today))
                    if partitions.time_window_for_partition_key(key).start.date()
                    <= day
                    < partitions.time_window_for_partition_key(key).end.date()
                ),
                None,
            )
            assert containing_partition(kind, day, date(2024, 1, 3), today) == expected


def _midnight(day: date):
    from datetime import datetime

    return datetime(day.year, day.month, day.day)


def test_the_updated_day_is_the_last_complete_sunday():
    assert updated_day(date(2026, 11, 26)) == date(2026, 11, 22)
    assert updated_day(date(2026, 11, 22)) == date(2026, 11, 22)
    assert updated_day(date(2026, 11, 23)) == date(2026, 11, 22)


def test_the_backfill_shows_what_write_audit_publish_costs():
    text = render_markdown(_full_results())
    assert (
        "| flower-dagster: one Dagster run of the range | 27.5 s (27.5) | 30.0 s (30.0) "
        "| +2.5 s (1.09x) | - |" in text
    )
    assert (
        "| plain `dbt build` with the year's window | 25.0 s (25.0) | 26.0 s (26.0, 27.0) "
        "| +1.0 s (1.04x) | 20.0 / 22.0 s (1.10x) |" in text
    )
    older = _full_results()  # figures from before the side-by-side still render
    for key in ("flower_direct", "build_wap"):
        del older["backfill"]["contenders"][key]
    assert "## 4. A 365-day backfill" in render_markdown(older)
    assert "write, audit, publish | cost" not in render_markdown(older)


def test_the_generated_project_carries_the_products_publish_wiring(tmp_path):
    """The hooks are read from dbt_project/dbt_project.yml, so the bench measures write, audit,
    publish as the product ships it; `publish=False` is the same project writing directly."""
    product = yaml.safe_load((DEMO_PROJECT / "dbt_project.yml").read_text())
    product_models = product["models"]["flower_demo"]
    generate_project(tmp_path / "wap", 20)
    generate_project(tmp_path / "direct", 20, publish=False)
    wap = yaml.safe_load((tmp_path / "wap" / "dbt_project.yml").read_text())
    direct = yaml.safe_load((tmp_path / "direct" / "dbt_project.yml").read_text())
    assert wap["on-run-end"] == ["{{ flower_publish_audited(results) }}"]
    assert set(wap["on-run-end"]) <= set(product["on-run-end"])
    models = wap["models"]["flower_bench"]
    assert models["+pre-hook"] == product_models["+pre-hook"]
    assert models["+incremental_strategy"] == product_models["+incremental_strategy"]
    assert "on-run-end" not in direct and "+pre-hook" not in direct["models"]["flower_bench"]
    assert (
        direct["models"]["flower_bench"]["+incremental_strategy"]
        == (product_models["+incremental_strategy"])
    )
    # The macros are the product's own files, not a second version.
    for project in ("wap", "direct"):
        copied = tmp_path / project / "macros" / "flower" / "publish.sql"
        assert copied.read_text() == (DEMO_PROJECT / "macros/flower/publish.sql").read_text()


def test_the_backfill_model_reads_staging_only():
    specs = plan_project(200)
    spec = pick_model(specs)
    assert spec.kind is Kind.DAILY and spec.layer == 1


def test_the_bench_settings_point_flower_at_the_project(tmp_path):
    from flower_dagster.settings import load_settings

    (tmp_path / "dbt_project.yml").write_text("name: x\n")
    (tmp_path / "profiles.yml").write_text("x: {}\n")
    settings_file = tmp_path / "flower.yaml"
    settings_file.write_text(settings_yaml(tmp_path, date(2023, 11, 27)))
    settings = load_settings({"FLOWER_SETTINGS_FILE": str(settings_file)})
    assert settings.dbt_project_dir == tmp_path
    assert settings.partition_start == date(2023, 11, 27)
    assert settings.alerts is None
    assert settings.environment.schedules is False


def _results() -> dict:
    side = {
        "total": {"median": 10.0, "runs": [10.0, 11.0]},
        "cpu_total": {"median": 8.0, "runs": [8.0]},
        "defs": {"median": 2.0, "runs": [2.0]},
        "validate": {"median": 4.0, "runs": [4.0]},
        "peak_rss_mb": {"median": 250.0, "runs": [250.0]},
        "snapshot_mb": 7.5,
        "assets": 1000,
        "checks": 2000,
    }
    flower = {**side, "total": {"median": 10.5, "runs": [10.5, 10.6]}}
    ticks = {t: {"median": 5.0, "runs": [5.0]} for t in ("first", "steady", "after")}
    variant = {
        "ticks": ticks,
        "requested": {"first": 0, "steady": 0, "after": 200},
        "assets_with_condition": 675,
        "daily_partitions": 1096,
        "updated_partition": "2026-11-22",
    }
    slow = {**variant, "ticks": {**ticks, "after": {"median": 9.0, "runs": [9.0]}}}
    return {
        "started": "2026-11-26T22:00:00+00:00",
        "seconds": 840,
        "machine": {"cpus": 2, "python": "3.11.7"},
        "load_average_start": [4.0, 4.1, 4.2],
        "load_average_end": [3.0, 3.1, 3.2],
        "load": {
            "sizes": {
                "1000": {
                    "sides": {"stock": side, "flower": flower},
                    "ratio_total": 1.05,
                    "ratio_cpu": 1.0,
                    "repeats": 3,
                }
            }
        },
        "tick": {"sizes": {"1000": {"variants": {"eager": variant, "rule": slow}}}},
        "precision": {
            "models": 20,
            "first_partition": "2025-01-01",
            "trials": [],
            "requested": 12,
            "true": 12,
            "precision": 1.0,
            "recall": 1.0,
        },
    }


def _timed(after: float, ticks: tuple[str, ...] = ("first", "steady", "after")) -> dict:
    """A tick variant whose tick after updates took `after` seconds (the others 1 s)."""
    timed = {t: {"median": 1.0, "runs": [1.0]} for t in ticks}
    timed["after"] = {"median": after, "runs": [after]}
    return {
        "ticks": timed,
        "cpu": {t: {"median": 1.0, "runs": [1.0]} for t in ticks},
        "requested": {t: 200 for t in ticks},
        "assets_with_condition": 675,
        "daily_partitions": 1096,
        "updated_partition": "2026-11-22",
    }


def _with_postgres(results: dict, stock: float, pooled: float, rule: float) -> dict:
    """The three PostgreSQL variants of bench/tick.py (first and after ticks only)."""
    variants = {
        name: _timed(after, ("first", "after"))
        for name, after in (("stock", stock), ("eager-pooled", pooled), ("rule", rule))
    }
    results["tick"]["postgres"] = {
        "1000": {
            "models": 1000,
            "repeats": 1,
            "seed": {"seed_events": 3130, "seed_seconds": 8.0},
            "variants": variants,
        }
    }
    return results


def _full_results() -> dict:
    """Every step, the way bench/run_all.py records it."""
    results = _with_postgres(_results(), stock=72.0, pooled=20.0, rule=6.0)
    results["load"]["sizes"]["3000"] = {
        **results["load"]["sizes"]["1000"],
        "ratio_total": 1.15,
    }
    option = {"median_seconds": 5.0, "runs": [{"parse": "partial"}], "reparsed": False}
    results["partition_run"] = {
        "model": "day_3_0001",
        "model_ancestors": 12,
        "models": 1000,
        "options": [
            {
                **option,
                "key": "a",
                "label": "stock --vars",
                "median_seconds": 9.0,
                "reparsed": True,
                "correct": True,
            },
            {**option, "key": "b", "label": "flower-dagster", "correct": True},
        ],
    }
    runs = {"median": 20.0, "runs": [20.0]}
    results["backfill"] = {
        "days": 365,
        "model": "day_1_0001",
        "models": 200,
        "range": ["2025-01-01", "2025-12-31"],
        "rows_per_day": 100,
        "contenders": {
            "flower": {"median": 30.0, "runs": [30.0]},
            "per_day": {
                "median": 8.0,
                "runs": [8.0],
                "measured_runs": 3,
                "extrapolated_year": 2920.0,
            },
            "floor_run": runs,
            "floor_build": {
                "median": 25.0,
                "runs": [25.0],
                "cpu": {"median": 20.0, "runs": [20.0]},
            },
            "flower_direct": {"median": 27.5, "runs": [27.5]},
            "build_wap": {
                "median": 26.0,
                "runs": [26.0, 27.0],
                "cpu": {"median": 22.0, "runs": [22.0, 23.0]},
            },
        },
        "ratios": {
            "flower_vs_floor_run": 1.5,
            "flower_vs_floor_build": 1.2,
            "per_day_vs_floor_run": 146.0,
        },
    }
    results["lint"] = {
        "models": 1000,
        "results": [
            {"tool": "flower lint", "median_s": 2.0, "models_per_s": 500, "runs_s": [2.0]},
            {"tool": "sqlfluff lint", "median_s": 100.0, "models_per_s": 10, "runs_s": [100.0]},
        ],
    }
    results["optimisation"] = {
        "text": "long prose that is not rendered",
        "rows": [{"what": "(1) a measure", "before": "3.0 s", "after": "1.0 s", "change": "-2 s"}],
    }
    return results


def _goals_by_item(results: dict) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    for row in goal_rows(results):
        rows.setdefault(row["item"], []).append(row)
    return rows


def test_every_goal_is_met_with_good_figures():
    rows = goal_rows(_full_results())
    assert [r["item"] for r in rows] == [
        "1. Load",
        "1. Load",
        "1. Load",
        "2. Tick",
        "2. Tick",
        "2. Tick",
        "3. Partition run",
        "4. Backfill",
        "5. Repair precision",
        "6. Lint",
    ]
    assert [r["met"] for r in rows] == [True] * 5 + [None] + [True] * 4
    by_item = _goals_by_item(_full_results())
    assert by_item["1. Load"][1]["goal"].startswith(
        "flower-dagster <= 1.2x stock `@dbt_assets` at 3,000"
    )
    assert by_item["4. Backfill"][0]["result"].startswith("30.0 s vs 2,920 s")
    assert by_item["6. Lint"][0]["result"] == "2.00 s vs 100 s (50x faster)"


def test_load_goal_is_1_2x_of_stock():
    results = _full_results()
    results["load"]["sizes"]["3000"]["ratio_total"] = 1.21
    load = _goals_by_item(results)["1. Load"]
    assert [r["met"] for r in load] == [True, False, True]
    results["load"]["sizes"]["3000"]["sides"]["flower"]["total"]["median"] = 15.0
    assert _goals_by_item(results)["1. Load"][2]["met"] is False


def test_the_tick_goals_are_judged_on_postgres_as_deployed():
    def tick_goals(stock: float, pooled: float, rule: float) -> list[dict]:
        return _goals_by_item(_with_postgres(_results(), stock, pooled, rule))["2. Tick"]

    met = tick_goals(stock=72.0, pooled=20.0, rule=6.0)
    assert [r["met"] for r in met] == [True, True, None]
    assert met[0]["result"] == "6.00 s vs 72.0 s (12.0x faster)"
    # The pool alone would be enough: the rule must beat eager() on the same storage too.
    assert [r["met"] for r in tick_goals(stock=72.0, pooled=5.0, rule=6.0)] == [True, False, None]
    assert [r["met"] for r in tick_goals(stock=5.0, pooled=20.0, rule=6.0)] == [False, True, None]
    # make dev's SQLite is information only, whichever condition is faster.
    sqlite = tick_goals(stock=72.0, pooled=20.0, rule=6.0)[2]
    assert sqlite["result"] == "9.00 s vs 5.00 s (1.80x slower)" and sqlite["met"] is None


def test_without_postgres_the_tick_has_only_the_information_row():
    tick = _goals_by_item(_results())["2. Tick"]
    assert [r["met"] for r in tick] == [None]


def test_partition_backfill_and_lint_goals_fail_when_they_should():
    results = _full_results()
    results["partition_run"]["options"][1]["reparsed"] = True
    results["backfill"]["contenders"]["flower"]["median"] = 3000.0
    results["lint"]["results"][0]["median_s"] = 6.0  # 16.7x faster: not 20x
    by_item = _goals_by_item(results)
    assert by_item["3. Partition run"][0]["met"] is False
    assert by_item["4. Backfill"][0]["met"] is False
    assert by_item["6. Lint"][0]["met"] is False
    assert "(17x faster)" in by_item["6. Lint"][0]["result"]
    results["partition_run"]["options"][1]["reparsed"] = False
    results["partition_run"]["options"][1]["correct"] = False
    assert _goals_by_item(results)["3. Partition run"][0]["met"] is False


def test_the_goals_table_says_info_and_no():
    results = _full_results()
    results["lint"]["results"][0]["median_s"] = 6.0
    text = render_markdown(results)
    assert "| info |" in text
    assert "| 6. Lint |" in text and "| **no** |" in text


def test_the_tick_table_shows_the_three_postgres_variants_and_sqlite():
    text = render_markdown(_full_results())
    assert (
        "| 1,000 | PG | stock `eager()` | dagster-postgres as it ships | 1.00 s | - | **72.0 s** |"
        in text
    )
    assert (
        "| 1,000 | PG | stock `eager()` | flower-dagster's pooled storage | 1.00 s | - "
        "| **20.0 s** |" in text
    )
    assert (
        "| 1,000 | PG | flower repair rule | flower-dagster's pooled storage (as it ships) |"
        in text
    )
    assert "| 1,000 | SQLite | flower repair rule | Dagster's SQLite (make dev) |" in text
    assert "| 1,000 | SQLite | stock `eager()` | Dagster's SQLite (make dev) |" in text


def test_a_quiet_machine_is_not_called_shared():
    results = {**_results(), "load_average_start": [0.4, 0.5, 0.6], "load_average_end": [1.0] * 3}
    text = render_markdown(results)
    assert "Other work shared" not in text and "the load is the benchmark's own" in text


def test_the_document_renders_every_table_that_ran():
    text = render_markdown(_results())
    assert text.startswith("# Benchmarks")
    assert "2-CPU machine" in text and "4.00 / 4.10 / 4.20" in text
    assert "Other work shared the machine" in text
    assert "## 1. Loading the code location" in text and "**1.05x**" in text
    assert "## 2. Automation tick" in text and "**9.00 s**" in text
    assert "## 5. Repair precision" in text
    assert "## 4. A 365-day backfill" not in text  # did not run
    assert "| 1. Load |" in text
    full = render_markdown(_full_results())
    for heading in (
        "## Goals",
        "## 1. Loading the code location",
        "## 2. Automation tick",
        "## 3. One partition run",
        "## 4. A 365-day backfill",
        "## 5. Repair precision",
        "## 6. Lint",
        "## What was optimised",
    ):
        assert full.count(heading) == 1, heading
    for image in (
        "bench_load",
        "bench_tick",
        "bench_partition_run",
        "bench_backfill",
        "bench_lint",
    ):
        assert f"(images/{image}.png)" in full


def test_the_document_is_short():
    """Issue 22: a reader takes it in within two minutes: one short paragraph per section."""
    text = render_markdown(_full_results())
    assert "long prose that is not rendered" not in text
    assert "What dominates" not in text
    prose = [
        line for line in text.split("\n") if line and not line.startswith(("|", "#", "!", "<"))
    ]
    assert max(len(line) for line in prose) < 700
    assert sum(len(line.split()) for line in prose) < 700


def test_the_document_says_how_fast_the_machine_was():
    results = {**_results(), "reference_start": 0.21, "reference_end": 0.26}
    text = render_markdown(results)
    assert "reference workload (`bench/common.py`, `reference_seconds`) took 0.21 s at the " in text
    assert "start and 0.26 s at the end" in text
    assert "reference workload" not in render_markdown(_results())


def test_the_reference_workload_is_timed():
    assert 0 < reference_seconds(runs=1) < 60


def test_markdown_tables_align_numbers_right():
    assert table(["a", "b"], [["x", "1"]]) == "| a | b |\n| --- | ---: |\n| x | 1 |"


def test_steps_re_run_on_top_of_earlier_runs_say_when_each_was_taken():
    new, partial, full = (f"2026-11-27T0{h}:00:00+00:00" for h in (3, 2, 1))
    results = {
        **_results(),
        "started": new,
        "seconds": 96,
        "full_run": {"started": full, "seconds": 750},
    }
    results["load"] = {**results["load"], "taken": new}
    results["tick"] = {**results["tick"], "taken": partial}
    results["precision"] = {**results["precision"], "taken": full}
    text = render_markdown(results)
    assert "Steps load re-run on 2026-11-27 03:00 UTC (1.6 minutes)" in text
    assert "precision from 2026-11-27 01:00 UTC; tick from 2026-11-27 02:00 UTC" in text
    assert "the last full `make bench`, of 2026-11-27 01:00 UTC, took 12.5 minutes" in text
    same = {**results, "tick": {**results["tick"], "taken": new}}
    same["precision"] = {**results["precision"], "taken": new}
    assert "Taken on 2026-11-27 03:00 UTC in 1.6 minutes" in render_markdown(same)
