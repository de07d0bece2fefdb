"""The benchmark's own logic (bench/): pure and fast, no timing, no dbt, no Dagster runs."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bench.backfill import pick_model
from bench.common import (
    median,
    partition_start,
    ratio,
    reference_seconds,
    settings_yaml,
    summary,
)
from bench.generate_project import Kind, ModelSpec, kind_counts, plan_project
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


def test_goals_say_what_is_met():
    rows = {row["goal"]: row for row in goal_rows(_results())}
    assert rows["flower-dagster <= 1.1x stock `@dbt_assets` load at 1,000 models"]["met"]
    assert not rows["tick after a day of updates under 8 s at 1,000 models"]["met"]
    assert not rows["... and faster than stock `eager()` on the same graph"]["met"]
    assert rows["precision and recall 1.0"]["met"]


def test_the_rule_beats_eager_on_the_same_storage():
    def timed(after: float) -> dict:
        ticks = {t: {"median": 1.0, "runs": [1.0]} for t in ("first", "steady")}
        return {
            "ticks": {**ticks, "after": {"median": after, "runs": [after]}},
            "requested": {"first": 0, "steady": 0, "after": 200},
            "assets_with_condition": 675,
            "daily_partitions": 1096,
            "updated_partition": "2026-11-22",
        }

    def goal(rule: float, eager: float) -> dict:
        results = _results()
        results["tick"]["sizes"]["1000"]["variants"] = {"eager": timed(eager), "rule": timed(rule)}
        rows = {row["goal"]: row for row in goal_rows(results)}
        return rows["... and faster than stock `eager()` on the same graph"]

    met = goal(rule=10.0, eager=28.0)
    assert met["met"] and met["result"] == "10.0 s vs 28.0 s"
    assert not goal(rule=30.0, eager=28.0)["met"]
    text = render_markdown(_results())
    assert "| 1,000 | flower repair rule | Dagster's SQLite (make dev) |" in text


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


def test_the_tick_on_postgres_is_reported_beside_sqlite_and_in_the_goal():
    results = _results()
    ticks = results["tick"]["sizes"]["1000"]["variants"]["rule"]["ticks"]

    def storage(after: float) -> dict:
        # On PostgreSQL the bench takes the first tick and the one after updates only.
        timed = {"first": ticks["first"], "after": {"median": after, "runs": [after]}}
        cpu = {t: {"median": 1.0, "runs": [1.0]} for t in timed}
        return {"ticks": timed, "cpu": cpu, "requested": {"after": 200}}

    results["tick"]["postgres"] = {
        "1000": {
            "models": 1000,
            "repeats": 1,
            "seed": {"seed_events": 3130, "seed_seconds": 8.0},
            "storages": {"dagster-postgres": storage(72.0), "flower": storage(6.0)},
        }
    }
    text = render_markdown(results)
    assert "### On PostgreSQL, as deployed" in text
    assert "| 1,000 | dagster-postgres as it ships (a connection per query) | 5.00 s | - |" in text
    assert "**72.0 s**" in text and "**6.00 s**" in text
    assert "The pool makes the tick after updates 12.0x faster." in text
    rows = {row["goal"]: row for row in goal_rows(results)}
    goal = rows["tick after a day of updates under 8 s at 1,000 models"]
    assert goal["result"] == "9.00 s (make dev's SQLite); 6.00 s on PostgreSQL as deployed"
    assert goal["met"]


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
