"""`flower impact`: what a repair re-runs downstream, and what blocks each partition now.

Two graphs. A small graph of plain Python assets with flower's grains and the repair rule runs in
milliseconds: its partitions get real statuses from in-process Dagster runs (failed, in progress)
or recorded materializations, and the preview is checked against what the repair rule itself
requests. The demo dbt project's graph (slow: it needs the parsed demo project) checks the grains'
mappings, the error messages and the command end to end, once with real dbt runs.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetPartitionStatus,
    DagsterInstance,
    Definitions,
    asset,
    evaluate_automation_conditions,
    materialize,
)

from flower_dagster.automation import repair_condition
from flower_dagster.cli import main
from flower_dagster.dagster_tags import PARTITION_NAME_TAG
from flower_dagster.errors import ModelSelectionError
from flower_dagster.impact import (
    CANCELED,
    Blocker,
    ImpactedPartition,
    impacted_partitions,
    not_rerun_descendants,
    not_yet_partitions,
    preview,
    render_json,
    render_text,
)
from flower_dagster.partitions import GRAIN_TAG, Grain, partitions_for
from tests.automation_support import Automation
from tests.conftest import Warehouse, make_instance

SEOUL = "Asia/Seoul"
START = date(2024, 1, 1)
K = AssetKey

# --- a small graph: orders (daily) -> daily_revenue, weekly_revenue -> monthly_peak -------------
#                                   -> orders_export (unpartitioned, no rule)

FAILING_DAYS: set[str] = set()
HOLD = threading.Event()  # weekly_revenue waits on it while HOLDING is set
HOLDING = threading.Event()


def _grain(grain: Grain):
    return {"partitions_def": partitions_for(grain, START, SEOUL), "tags": {GRAIN_TAG: grain.value}}


@asset(**_grain(Grain.DAILY))
def orders(context) -> None:  # unannotated: this module has postponed annotations
    if context.partition_key in FAILING_DAYS:
        raise RuntimeError(f"orders {context.partition_key} failed")


@asset(deps=[orders], automation_condition=repair_condition(), **_grain(Grain.DAILY))
def daily_revenue() -> None:
    pass


@asset(deps=[orders], automation_condition=repair_condition(), **_grain(Grain.WEEKLY))
def weekly_revenue() -> None:
    if HOLDING.is_set():
        HOLD.wait(timeout=30)


@asset(deps=[weekly_revenue], automation_condition=repair_condition(), **_grain(Grain.MONTHLY))
def monthly_peak() -> None:
    pass


@asset(deps=[orders], tags={GRAIN_TAG: "unpartitioned"})
def orders_export() -> None:
    pass


SMALL = Definitions(assets=[orders, daily_revenue, weekly_revenue, monthly_peak, orders_export])


@pytest.fixture(scope="module")
def small_graph():
    return SMALL.resolve_asset_graph()


def _days(first: str, last: str) -> list[str]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [date.fromordinal(d).isoformat() for d in range(start.toordinal(), end.toordinal() + 1)]


def _record(instance: DagsterInstance, asset_name: str, partitions: list[str]) -> None:
    """Materializations recorded without a run: cheap healthy partitions."""
    for partition in partitions:
        instance.report_runless_asset_event(AssetMaterialization(asset_name, partition=partition))


def _by_partition(impacted: list[ImpactedPartition]) -> dict[tuple[str, str], list[str]]:
    return {
        (i.asset.to_user_string(), i.partition): [str(b) for b in i.blockers or ()]
        for i in impacted
    }


def test_a_day_reaches_its_day_week_and_the_months_of_that_week(small_graph):
    reached = impacted_partitions(small_graph, K("orders"), ["2024-01-31"])
    assert reached == [
        (K("daily_revenue"), ["2024-01-31"]),
        (K("weekly_revenue"), ["2024-01-29"]),
        # Week 2024-01-29 runs to Sunday 2024-02-04: both months read it.
        (K("monthly_peak"), ["2024-01-01", "2024-02-01"]),
    ]


def test_unpartitioned_descendants_are_named_as_not_rerun(small_graph):
    assert not_rerun_descendants(small_graph, K("orders"), ["2024-01-10"]) == [
        (K("orders_export"), "unpartitioned")
    ]
    impact = preview(small_graph, "orders", ["2024-01-10"], None, "no instance here")
    text = render_text(impact)
    assert "Not re-run by the repair rule: orders_export (unpartitioned)" in text
    assert json.loads(render_json(impact))["not_rerun"] == [
        {"asset": "orders_export", "reason": "unpartitioned"}
    ]


def test_partitions_whose_window_has_not_ended_are_not_yet_there(small_graph):
    # An hour after 2024-01-10 ended in Seoul: its week and month are still open.
    now = datetime(2024, 1, 11, 1, tzinfo=ZoneInfo(SEOUL))
    assert impacted_partitions(small_graph, K("orders"), ["2024-01-10"], now) == [
        (K("daily_revenue"), ["2024-01-10"])
    ]
    assert not_yet_partitions(small_graph, K("orders"), ["2024-01-10"], now) == [
        (K("weekly_revenue"), ["2024-01-08"]),
        (K("monthly_peak"), ["2024-01-01"]),
    ]
    text = render_text(preview(small_graph, "orders", ["2024-01-10"], None, "x", now))
    assert "Not yet: weekly_revenue 2024-01-08 - its window has not ended" in text


def test_without_an_instance_blockers_are_unknown_and_say_why(small_graph):
    impact = preview(small_graph, "orders", ["2024-01-10"], None, "DAGSTER_HOME is not set")
    assert all(i.blockers is None and i.blocked is None for i in impact.impacted)
    text = render_text(impact)
    assert "weekly_revenue  weekly   2024-01-08  ?" in text
    assert "blocked by: unknown (?) - DAGSTER_HOME is not set." in text
    document = json.loads(render_json(impact))
    assert document["blockers_known"] is False
    assert document["blockers_unknown_reason"] == "DAGSTER_HOME is not set"


def test_the_repaired_partition_counts_as_done_even_when_it_failed(small_graph, tmp_path):
    instance = make_instance(tmp_path / "home")
    _record(instance, "orders", _days("2024-01-01", "2024-01-31"))
    FAILING_DAYS.update({"2024-01-10", "2024-01-11"})
    try:
        for day in ("2024-01-10", "2024-01-11"):
            run = materialize([orders], partition_key=day, instance=instance, raise_on_error=False)
            assert not run.success
    finally:
        FAILING_DAYS.clear()
    statuses = instance.get_status_by_partition(
        K("orders"), ["2024-01-10", "2024-01-11"], orders.partitions_def
    )
    assert statuses == {
        "2024-01-10": AssetPartitionStatus.FAILED,
        "2024-01-11": AssetPartitionStatus.FAILED,
    }
    # The month reads weeks that were never materialized: those block it, whatever the repair.
    other_weeks = [
        f"weekly_revenue {week} (missing)"
        for week in ("2024-01-01", "2024-01-15", "2024-01-22", "2024-01-29")
    ]
    # Repairing both failed days: their week is not blocked.
    both = preview(small_graph, "orders", ["2024-01-10", "2024-01-11"], instance)
    assert _by_partition(list(both.impacted)) == {
        ("daily_revenue", "2024-01-10"): [],
        ("daily_revenue", "2024-01-11"): [],
        ("weekly_revenue", "2024-01-08"): [],
        ("monthly_peak", "2024-01-01"): other_weeks,
    }
    # Repairing only one: the other failed day blocks the week, which the month then lacks.
    one = preview(small_graph, "orders", ["2024-01-10"], instance)
    assert _by_partition(list(one.impacted)) == {
        ("daily_revenue", "2024-01-10"): [],
        ("weekly_revenue", "2024-01-08"): ["orders 2024-01-11 (failed)"],
        ("monthly_peak", "2024-01-01"): sorted(
            [*other_weeks, "weekly_revenue 2024-01-08 (missing)"]
        ),
    }
    instance.dispose()


def test_a_partition_waits_for_an_impacted_partition_that_is_blocked(small_graph):
    """Weekly 2024-01-29 is blocked by a missing day; February's month only follows from it."""
    instance = DagsterInstance.ephemeral()
    _record(instance, "orders", [d for d in _days("2024-01-01", "2024-02-29") if d != "2024-02-02"])
    _record(instance, "weekly_revenue", ["2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22"])
    _record(instance, "weekly_revenue", ["2024-01-29", "2024-02-05", "2024-02-12"])
    _record(instance, "weekly_revenue", ["2024-02-19", "2024-02-26"])
    impacted = preview(small_graph, "orders", ["2024-01-10", "2024-02-01"], instance).impacted
    assert _by_partition(list(impacted)) == {
        ("daily_revenue", "2024-01-10"): [],
        ("daily_revenue", "2024-02-01"): [],
        ("weekly_revenue", "2024-01-08"): [],
        ("weekly_revenue", "2024-01-29"): ["orders 2024-02-02 (missing)"],
        # January also follows from week 2024-01-08, which re-runs: not blocked.
        ("monthly_peak", "2024-01-01"): [],
        # February follows only from week 2024-01-29; its old data is healthy, but it waits.
        ("monthly_peak", "2024-02-01"): ["weekly_revenue 2024-01-29 (blocked)"],
    }


def test_the_preview_is_what_the_repair_rule_requests(small_graph):
    """Tick the real rule after a repair until it settles: it requests the unblocked ones."""
    instance = DagsterInstance.ephemeral()
    _record(instance, "orders", [d for d in _days("2024-01-01", "2024-02-29") if d != "2024-02-02"])
    _record(instance, "daily_revenue", _days("2024-01-01", "2024-02-29"))
    weeks = ["2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22", "2024-01-29"]
    _record(instance, "weekly_revenue", [*weeks, "2024-02-05", "2024-02-12", "2024-02-19"])
    _record(instance, "weekly_revenue", ["2024-02-26"])
    _record(instance, "monthly_peak", ["2024-01-01", "2024-02-01"])
    cursor = evaluate_automation_conditions(defs=SMALL, instance=instance).cursor

    impact = preview(small_graph, "orders", ["2024-01-10", "2024-02-01"], instance)
    _record(instance, "orders", ["2024-01-10", "2024-02-01"])  # the repair
    requested: set[tuple[str, str]] = set()
    for _ in range(5):
        result = evaluate_automation_conditions(defs=SMALL, instance=instance, cursor=cursor)
        cursor = result.cursor
        now = {
            (key.to_user_string(), partition)
            for key in small_graph.materializable_asset_keys
            for partition in result.get_requested_partitions(key)
        }
        if not now:
            break
        requested |= now
        for name, partition in now:  # run what was requested
            _record(instance, name, [partition])
    unblocked = {(i.asset.to_user_string(), i.partition) for i in impact.impacted if not i.blocked}
    blocked = {(i.asset.to_user_string(), i.partition) for i in impact.impacted if i.blocked}
    assert (
        requested
        == unblocked
        == {
            ("daily_revenue", "2024-01-10"),
            ("daily_revenue", "2024-02-01"),
            ("weekly_revenue", "2024-01-08"),
            ("monthly_peak", "2024-01-01"),
        }
    )
    assert blocked == {("weekly_revenue", "2024-01-29"), ("monthly_peak", "2024-02-01")}


def test_a_partition_in_progress_blocks_itself_and_what_reads_it(small_graph, tmp_path):
    instance = make_instance(tmp_path / "home")
    _record(instance, "orders", _days("2024-01-01", "2024-01-31"))
    _record(instance, "weekly_revenue", ["2024-01-01", "2024-01-15", "2024-01-22", "2024-01-29"])
    HOLDING.set()
    HOLD.clear()
    run = threading.Thread(
        target=materialize,
        args=([weekly_revenue],),
        kwargs={"partition_key": "2024-01-08", "instance": instance, "raise_on_error": False},
    )
    run.start()
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            status = instance.get_status_by_partition(
                K("weekly_revenue"), ["2024-01-08"], weekly_revenue.partitions_def
            )
            if status and status.get("2024-01-08") == AssetPartitionStatus.IN_PROGRESS:
                break
            time.sleep(0.1)
        else:
            pytest.fail("weekly_revenue 2024-01-08 never showed as in progress")
        impact = preview(small_graph, "orders", ["2024-01-10"], instance)
    finally:
        HOLD.set()
        HOLDING.clear()
        run.join(timeout=30)
    assert _by_partition(list(impact.impacted)) == {
        ("daily_revenue", "2024-01-10"): [],
        ("weekly_revenue", "2024-01-08"): ["weekly_revenue 2024-01-08 (in progress)"],
        ("monthly_peak", "2024-01-01"): ["weekly_revenue 2024-01-08 (in progress)"],
    }
    assert "itself (in progress)" in render_text(impact)
    instance.dispose()


def test_a_canceled_run_shows_as_a_pending_rerun_not_as_nothing_blocks(small_graph, tmp_path):
    """Issue 21: a canceled request of the rule is re-requested; the preview says so."""
    instance = make_instance(tmp_path / "home")
    _record(instance, "orders", _days("2024-01-01", "2024-01-31"))
    _record(instance, "weekly_revenue", ["2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22"])
    _record(instance, "weekly_revenue", ["2024-01-29"])
    # The rule's run of the week, queued then canceled by an operator before it built.
    job = SMALL.get_implicit_global_asset_job_def().get_subset(
        asset_selection={K("weekly_revenue")}
    )
    queued = instance.create_run_for_job(
        job,
        asset_selection=frozenset({K("weekly_revenue")}),
        tags={PARTITION_NAME_TAG: "2024-01-08"},
    )
    queued_impact = preview(small_graph, "orders", ["2024-01-10"], instance)
    instance.report_run_canceled(queued, "canceled by an operator")
    impact = preview(small_graph, "orders", ["2024-01-10"], instance)
    instance.dispose()
    week = ("weekly_revenue", "2024-01-08")
    assert _by_partition(list(queued_impact.impacted))[week] == [
        "weekly_revenue 2024-01-08 (in progress)"
    ]
    assert _by_partition(list(impact.impacted)) == {
        ("daily_revenue", "2024-01-10"): [],
        week: [f"weekly_revenue 2024-01-08 ({CANCELED})"],
        # The rule requests the week again by itself: it does not hold the month back.
        ("monthly_peak", "2024-01-01"): [],
    }
    assert f"itself ({CANCELED})" in render_text(impact)


def test_text_table_merges_neighbouring_partitions_and_ranges_of_blockers(small_graph):
    instance = DagsterInstance.ephemeral()
    _record(instance, "orders", ["2024-01-08", "2024-01-12", "2024-01-13", "2024-01-14"])
    impact = preview(small_graph, "orders", ["2024-01-09", "2024-01-10"], instance)
    lines = render_text(impact).splitlines()
    assert lines[0] == (
        "A repair of orders 2024-01-09..2024-01-10 re-runs 4 partitions of 3 models under the "
        "repair rule (preview: nothing was run):"
    )
    assert lines[2].split() == ["asset", "grain", "partitions", "blocked", "by"]
    assert lines[3].split() == ["daily_revenue", "daily", "2024-01-09..2024-01-10", "(2)", "-"]
    assert lines[4].split()[:3] == ["weekly_revenue", "weekly", "2024-01-08"]
    assert lines[4].endswith("  orders 2024-01-11 (missing)")
    # The week is blocked, so the month lacks it as well as the weeks never built.
    assert lines[5].endswith("  weekly_revenue 2024-01-01..2024-01-29 (missing)")
    document = json.loads(render_json(impact))
    assert document["impacted"][2] == {
        "asset": "weekly_revenue",
        "grain": "weekly",
        "partition": "2024-01-08",
        "blocked": True,
        "blocked_by": [{"asset": "orders", "partition": "2024-01-11", "problem": "missing"}],
    }


def test_nothing_downstream(small_graph):
    text = render_text(preview(small_graph, "monthly_peak", ["2024-01-01"], None, "x"))
    assert text == (
        "A repair of monthly_peak 2024-01-01 re-runs nothing downstream under the repair rule "
        "(preview: nothing was run)."
    )


def test_blocker_strings_match_the_source_checks():
    assert str(Blocker("fct_orders", "2024-01-11", "missing")) == "fct_orders 2024-01-11 (missing)"
    assert str(Blocker("dim_users", None, "missing")) == "dim_users (missing)"


# --- the demo dbt project -------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_graph(warehouse: Warehouse):
    return warehouse.defs.resolve_asset_graph()


def _impacted(graph, model: str, *partitions: str) -> dict[str, list[str]]:
    return {
        key.to_user_string(): keys
        for key, keys in impacted_partitions(graph, K(model), list(partitions))
    }


@pytest.mark.slow
def test_demo_a_mid_week_day(demo_graph):
    assert _impacted(demo_graph, "fct_orders", "2024-01-10") == {
        "agg_daily_revenue": ["2024-01-10"],
        "agg_weekly_revenue": ["2024-01-08"],
        "agg_monthly_revenue": ["2024-01-01"],
    }
    # In topological order, finer grains first.
    order = [k for k, _ in impacted_partitions(demo_graph, K("fct_orders"), ["2024-01-10"])]
    assert order == [K("agg_daily_revenue"), K("agg_weekly_revenue"), K("agg_monthly_revenue")]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("day", "week", "months"),
    [
        ("2024-01-14", "2024-01-08", ["2024-01-01"]),  # Sunday: the week that ends
        ("2024-01-15", "2024-01-15", ["2024-01-01"]),  # Monday: the week that starts
        ("2024-01-31", "2024-01-29", ["2024-01-01"]),  # last day of January
        ("2024-02-01", "2024-01-29", ["2024-02-01"]),  # first of February, same week
    ],
)
def test_demo_week_and_month_boundaries(demo_graph, day, week, months):
    assert _impacted(demo_graph, "fct_orders", day) == {
        "agg_daily_revenue": [day],
        "agg_weekly_revenue": [week],
        "agg_monthly_revenue": months,
    }


@pytest.mark.slow
def test_demo_a_session_day_reaches_the_monthly_built_from_weeks(demo_graph):
    # Dagster's mapping: a month reads every week that overlaps it, so week 2024-01-29
    # (Mon 01-29 .. Sun 02-04) is read by January and by February.
    graph = demo_graph
    mapping = graph.get_partition_mapping(K("agg_monthly_peak_week"), K("agg_weekly_active_users"))
    weekly = graph.get(K("agg_weekly_active_users")).partitions_def
    monthly = graph.get(K("agg_monthly_peak_week")).partitions_def
    months = mapping.get_downstream_partitions_for_partitions(
        weekly.subset_with_partition_keys(["2024-01-29"]), weekly, monthly
    )
    assert sorted(months.get_partition_keys()) == ["2024-01-01", "2024-02-01"]
    reached = impacted_partitions(graph, K("fct_sessions"), ["2024-02-01"])
    assert reached == [
        (K("agg_weekly_active_users"), ["2024-01-29"]),
        (K("agg_monthly_active_users"), ["2024-02-01"]),
        (K("agg_monthly_peak_week"), ["2024-01-01", "2024-02-01"]),
    ]


@pytest.mark.slow
def test_demo_several_partitions_merge(demo_graph):
    assert _impacted(demo_graph, "fct_orders", "2024-01-10", "2024-01-12", "2024-02-01") == {
        "agg_daily_revenue": ["2024-01-10", "2024-01-12", "2024-02-01"],
        "agg_weekly_revenue": ["2024-01-08", "2024-01-29"],
        "agg_monthly_revenue": ["2024-01-01", "2024-02-01"],
    }
    assert not_rerun_descendants(demo_graph, K("fct_orders"), ["2024-01-10"]) == []


@pytest.mark.slow
def test_demo_unknown_model_names_close_matches(demo_graph):
    with pytest.raises(ModelSelectionError) as error:
        preview(demo_graph, "fct_order", ["2024-01-10"], None)
    assert str(error.value) == "unknown model 'fct_order'; did you mean fct_orders, stg_orders?"
    with pytest.raises(ModelSelectionError, match="`flower models` lists the models"):
        preview(demo_graph, "zzz", ["2024-01-10"], None)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "key", "why", "allowed"),
    [
        (
            "fct_orders",
            "2024-13-01",
            "not a valid date of the form YYYY-MM-DD",
            "is daily: one partition per day (YYYY-MM-DD), from 2024-01-01 to ",
        ),
        (
            "agg_weekly_revenue",
            "2024-01-09",
            "not the start of a partition: the partition that contains it is 2024-01-08",
            "is weekly: one partition per week, keyed by its Monday (YYYY-MM-DD), from 2024-01-01",
        ),
        (
            "agg_monthly_revenue",
            "2023-12-01",
            "before the first partition, 2024-01-01",
            "is monthly: one partition per month, keyed by its first day (YYYY-MM-DD), from",
        ),
        ("fct_orders", "2999-01-01", "after the last partition, ", "is daily: "),
    ],
)
def test_demo_invalid_partition_keys(demo_graph, model, key, why, allowed):
    with pytest.raises(ModelSelectionError) as error:
        preview(demo_graph, model, [key], None)
    message = str(error.value)
    assert message.startswith(f"{model} has no partition '{key}' ({why}")
    assert f"; {model} {allowed}" in message


@pytest.mark.slow
def test_demo_several_bad_keys_in_one_message(demo_graph):
    with pytest.raises(ModelSelectionError) as error:
        preview(demo_graph, "agg_weekly_revenue", ["2024-01-09", "2024-01-08", "x"], None)
    lines = str(error.value).splitlines()
    assert lines[:3] == [
        "agg_weekly_revenue has no partition:",
        "  - '2024-01-09' (not the start of a partition: the partition that contains it is "
        "2024-01-08)",
        "  - 'x' (not a valid date of the form YYYY-MM-DD)",
    ]
    assert lines[3].startswith("agg_weekly_revenue is weekly:")


@pytest.mark.slow
def test_demo_unpartitioned_model(demo_graph):
    with pytest.raises(ModelSelectionError, match=r"^dim_users is not partitioned"):
        preview(demo_graph, "dim_users", ["2024-01-10"], None)


@pytest.mark.slow
def test_demo_blockers_from_recorded_materializations(demo_graph, tmp_path):
    """The example of the brief: the repaired day's week waits for the missing 2024-01-11."""
    instance = make_instance(tmp_path / "home")
    _record(instance, "fct_orders", ["2024-01-08", "2024-01-09", "2024-01-12", "2024-01-13"])
    _record(instance, "fct_orders", ["2024-01-14"])
    impact = preview(demo_graph, "fct_orders", ["2024-01-10"], instance)
    blockers = _by_partition(list(impact.impacted))
    assert blockers[("agg_daily_revenue", "2024-01-10")] == []
    assert blockers[("agg_weekly_revenue", "2024-01-08")] == ["fct_orders 2024-01-11 (missing)"]
    instance.dispose()


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()  # drop what came before (Dagster's run logs)
    code = main(["impact", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.slow
def test_cli_without_dagster_home(warehouse, capsys, monkeypatch, tmp_path):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    # Outside a checkout: no dev instance to fall back on (tests/test_demo_first_hour.py has it).
    monkeypatch.setattr("flower_dagster.cli.DEV_DAGSTER_HOME", tmp_path / "no_dagster_home")
    code, out, err = _cli(capsys, "fct_sessions", "2024-02-01")
    assert (code, err) == (0, "")
    assert out.startswith("A repair of fct_sessions 2024-02-01 re-runs 4 partitions of 3 models")
    assert "agg_monthly_peak_week     monthly  2024-01-01..2024-02-01 (2)  ?" in out
    assert "blocked by: unknown (?) - DAGSTER_HOME is not set" in out

    code, out, err = _cli(capsys, "fct_sessions", "2024-02-01", "--format", "json")
    document = json.loads(out)
    assert code == 0 and document["blockers_known"] is False
    assert [(i["asset"], i["partition"]) for i in document["impacted"]] == [
        ("agg_weekly_active_users", "2024-01-29"),
        ("agg_monthly_active_users", "2024-02-01"),
        ("agg_monthly_peak_week", "2024-01-01"),
        ("agg_monthly_peak_week", "2024-02-01"),
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fct_order", "2024-01-10"], "flower: unknown model 'fct_order'; did you mean"),
        (["fct_orders", "2024-13-01"], "flower: fct_orders has no partition '2024-13-01'"),
        (["agg_weekly_revenue", "2024-01-09"], "the partition that contains it is 2024-01-08"),
        (["dim_users", "2024-01-10"], "flower: dim_users is not partitioned"),
    ],
)
def test_cli_errors_exit_2_with_one_message(warehouse, capsys, monkeypatch, argv, message):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    code, out, err = _cli(capsys, *argv)
    assert (code, out) == (2, "")
    assert message in err and "Traceback" not in err


@pytest.mark.slow
def test_cli_with_a_real_instance_and_real_runs(warehouse, capsys, monkeypatch, tmp_path):
    """Week 2024-01-29 of fct_orders with 2024-01-31 never run; the repair is of 2024-02-01.

    (This week, not 2024-01-08: other suites assert some January and March days are empty.)
    """
    home = tmp_path / "dagster_home"
    automation = Automation(warehouse.defs, make_instance(home))
    assert automation.materialize(["fct_orders"], "2024-01-29", "2024-01-30")
    assert automation.materialize(["fct_orders"], "2024-02-02", "2024-02-04")
    monkeypatch.setenv("DAGSTER_HOME", str(home))

    code, out, err = _cli(capsys, "fct_orders", "2024-02-01")
    assert (code, err) == (0, "")
    rows = {line.split()[0]: line for line in out.splitlines()[3:6]}
    assert rows["agg_daily_revenue"].endswith("  2024-02-01  -")
    assert rows["agg_weekly_revenue"].endswith("  2024-01-29  fct_orders 2024-01-31 (missing)")
    assert rows["agg_monthly_revenue"].endswith("  fct_orders 2024-02-05..2024-02-29 (missing)")

    code, out, _ = _cli(capsys, "fct_orders", "2024-02-01", "--format", "json")
    weekly = json.loads(out)["impacted"][1]
    assert weekly["blocked_by"] == [
        {"asset": "fct_orders", "partition": "2024-01-31", "problem": "missing"}
    ]
    automation.instance.dispose()


def test_cli_help_lists_impact(capsys):
    with pytest.raises(SystemExit):
        main(["impact", "--help"])
    assert "--format {text,json}" in capsys.readouterr().out
