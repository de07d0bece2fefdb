"""The repair rule under everyday operations, on a small Python-asset graph (tests/rule_graph.py).

Real Dagster instances and runs; no dbt, so each case takes seconds. The same cases on the dbt
demo are in test_repair_rule.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.rule_graph import ROOTS, RuleGraph


@pytest.fixture(scope="module")
def graph(tmp_path_factory) -> Iterator[RuleGraph]:
    """January and six days of February loaded and rolled up."""
    built = RuleGraph(tmp_path_factory.mktemp("rule_graph") / "home")
    assert built.tick() == {}
    for root in ROOTS:
        assert built.run(root, "2024-01-01", "2024-02-06")
    counts = built.settle()
    assert set(counts.values()) == {1}
    yield built
    built.instance.dispose()


def test_a_canceled_request_is_requested_again_after_one_settled_tick(graph):
    """Issue 21 case 1: a canceled run used to hold its partition forever."""
    assert graph.run("orders", "2024-01-09")
    assert graph.tick()["weekly_revenue"] == {"2024-01-08"}
    # The daemon queued the weekly's run (the daily and the monthly ran); an operator cancels it.
    queued = graph.queue("weekly_revenue", "2024-01-08")
    assert graph.run("daily_revenue", "2024-01-09")
    assert graph.run("monthly_revenue", "2024-01-01")
    assert graph.tick() == {}  # queued: in progress
    graph.cancel(queued)
    # The first evaluation that sees it not in progress waits: a run that ended during the
    # tick would have its materialization seen only at the next one.
    assert graph.tick() == {}
    assert graph.tick() == {"weekly_revenue": {"2024-01-08"}}
    graph.run_requested({"weekly_revenue": {"2024-01-08"}})
    assert graph.tick() == {}
    # And a later repair of the same week is seen as usual.
    assert graph.run("orders", "2024-01-10")
    assert graph.settle() == {
        ("daily_revenue", "2024-01-10"): 1,
        ("weekly_revenue", "2024-01-08"): 1,
        ("monthly_revenue", "2024-01-01"): 1,
    }


def test_a_request_whose_run_never_started_is_requested_again(graph):
    """A daemon restarted between a tick's evaluation and its launch leaves no run at all."""
    assert graph.run("orders", "2024-01-11")
    first = graph.tick()
    assert first["weekly_revenue"] == {"2024-01-08"}
    assert graph.tick() == {}  # the evaluation right after a request never repeats it
    assert graph.tick() == first
    graph.run_requested(first)
    assert graph.tick() == {}


def test_a_run_still_in_progress_is_not_requested_twice(graph):
    assert graph.run("orders", "2024-01-12")
    assert graph.tick()["weekly_revenue"] == {"2024-01-08"}
    queued = [
        graph.queue("weekly_revenue", "2024-01-08"),
        graph.queue("daily_revenue", "2024-01-12"),
        graph.queue("monthly_revenue", "2024-01-01"),
    ]
    for _ in range(3):
        assert graph.tick() == {}
    for run in queued:
        graph.cancel(run)
    assert graph.tick() == {}
    assert set(graph.tick()) == {"weekly_revenue", "daily_revenue", "monthly_revenue"}
    graph.run_requested(graph.requested[-1])
    assert graph.tick() == {}


def test_a_rollup_reading_a_model_and_its_descendant_is_built_once(graph):
    """Issue 21 case 5: monthly_mix reads sessions and weekly_users (built from sessions)."""
    assert graph.run("sessions", "2024-01-10")
    first = graph.tick()
    # The weekly first; the monthly waits while its other input is about to change.
    assert first == {"weekly_users": {"2024-01-08"}}
    # Even if the daemon ran the tick's runs downstream first.
    graph.run_requested(first, downstream_first=True)
    second = graph.tick()
    assert second == {"monthly_peak_week": {"2024-01-01"}, "monthly_mix": {"2024-01-01"}}
    graph.run_requested(second, downstream_first=True)
    assert graph.tick() == {}
    assert graph.provenance_errors() == []


def test_a_rollup_reading_a_model_and_a_deeper_descendant_is_built_once(graph):
    """monthly_events reads events and weekly_events, built from daily_events built from events:
    the monthly waits two levels up, while the daily has a re-run pending."""
    assert graph.run("events", "2024-01-17")
    first = graph.tick()
    assert first == {"daily_events": {"2024-01-17"}}
    graph.run_requested(first, downstream_first=True)
    second = graph.tick()
    assert second == {"weekly_events": {"2024-01-15"}}
    graph.run_requested(second, downstream_first=True)
    assert graph.tick() == {"monthly_events": {"2024-01-01"}}
    graph.run_requested(graph.requested[-1])
    assert graph.tick() == {}
    assert graph.provenance_errors() == []


def test_a_deeper_diamond_waits_for_a_canceled_request_two_levels_up(graph):
    """The daily's run is queued, then canceled: the monthly waits for it all along."""
    assert graph.run("events", "2024-01-18")
    assert graph.tick() == {"daily_events": {"2024-01-18"}}
    queued = graph.queue("daily_events", "2024-01-18")
    assert graph.tick() == {}  # queued: in progress
    graph.cancel(queued)
    assert graph.tick() == {}
    assert graph.tick() == {"daily_events": {"2024-01-18"}}
    graph.run_requested(graph.requested[-1])
    counts = graph.settle()
    assert counts == {("weekly_events", "2024-01-15"): 1, ("monthly_events", "2024-01-01"): 1}
    assert graph.provenance_errors() == []
