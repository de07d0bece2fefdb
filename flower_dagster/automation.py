"""The repair rule: roll-up partitions re-run by themselves when what they read changed.

A partition of a model with partitioned parents (a week of daily orders, a month of weeks, a day
built from a day) is requested when all of these hold, each a Dagster condition with a label the
UI shows on every evaluation:

- an upstream partition it reads has a new successful materialization since this partition was
  last materialized (a repair, or the last day of its window arriving);
- none of the partitions it reads is missing (the source check: all 7 days of the week), failed
  its latest run (a failing blocking dbt test fails the run), or is in progress;
- none of the partitions it reads has a re-run of its own pending (its inputs changed since it
  was built, and none of them is missing or failed: a diamond, a month built from a day and
  from that day's week, waits for the week; a month waits for a week whose request was
  canceled), so nothing is built on a half-updated input and built again; a roll-up whose
  diamond is deeper (a month built from a day and from the week of the fact built from that
  day) looks as many levels up as its diamonds need;
- it is not in progress itself;
- if its own latest run failed, only new upstream data requests it again: a roll-up that fails
  is not retried on every tick, the alert takes it from there;
- no earlier request of it is still unanswered (requested, and neither built nor failed since,
  nor seen settled: not in progress at two evaluations in a row), so a run that ends in the
  middle of a tick is not launched a second time, and a canceled, deleted or never launched
  one is requested again.

The trigger compares the per-partition times of the upstream update and of this partition's last
update (`since`), not tick by tick, so a repair that lands after the roll-up's run finished but
before the next evaluation is still seen. Unlike `eager()` or `on_cron()` there is no
`in_latest_time_window()`: a repair of a day six months back re-runs its own week and month.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import TypeVar

from dagster import (
    AssetSelection,
    AutomationCondition,
    AutomationConditionSensorDefinition,
    DefaultSensorStatus,
)

from flower_dagster.partitions import GRAIN_TAG, GRAINS

SENSOR_NAME = "flower_repair_rule"

N = TypeVar("N", bound=Hashable)


def partitioned_assets() -> AssetSelection:
    """Every asset that has a grain (only their updates trigger roll-ups)."""
    selection = AssetSelection.tag(GRAIN_TAG, GRAINS[0].value)
    for grain in GRAINS[1:]:
        selection = selection | AssetSelection.tag(GRAIN_TAG, grain.value)
    return selection


def repair_condition(
    partitioned_parents: AssetSelection | None = None,
    partitioned_grandparents: AssetSelection | None = None,
    partitioned_ancestors: Sequence[AssetSelection] = (),
) -> AutomationCondition:
    """The roll-up rule as one composition of Dagster's own conditions.

    Only updates of partitioned parents count: by default every asset with a grain
    (`partitioned_assets()`). flower-dagster passes each roll-up its own partitioned parents as
    a key selection instead: the same parents, but Dagster resolves the selection over the
    whole asset graph for every roll-up at every evaluation, which for a tag selection means a
    scan of every asset, and for a key selection only a look-up of those keys.

    `partitioned_ancestors`: the partitioned parents of the grandparents, then of those, one
    selection per level, as far up as the roll-up's deepest diamond needs (see
    `pending_levels`); empty, the rule looks one level above its parents.

    The rule is kept small on purpose: Dagster evaluates and stores every node of it for every
    roll-up at every tick (see docs/benchmarks.md), so each clause is one node per parent.
    Conditions are immutable values: the clauses that do not name the parents are built once
    and shared by every roll-up's rule.
    """
    allowed = partitioned_assets() if partitioned_parents is None else partitioned_parents
    grand = partitioned_assets() if partitioned_grandparents is None else partitioned_grandparents
    shared = _shared_clauses()
    upstream_updated = _updated_since_built(allowed, shared.newly_updated).with_label(
        "an upstream partition was updated since this partition was built"
    )
    # "Not failed, or an upstream partition just updated", written as "not (failed and no
    # upstream update)": Dagster evaluates an `|`'s every part on every candidate, but an `&`'s
    # second part only where its first holds, so the updates of the parents are looked up for
    # the few failed partitions instead of every candidate.
    own_failure_waits = (
        ~(shared.failed & ~AutomationCondition.any_deps_match(shared.newly_updated).allow(allowed))
    ).with_label("not failed, or failed and an upstream partition was just updated")
    # A parent whose own inputs changed since it was built is about to be re-run (requested in
    # this tick, or again after a canceled run): building now would read a half-updated input
    # and build twice. Its own trigger, evaluated here over its partitioned parents, says so.
    # A parent blocked by a missing or failed input of its own is not about to re-run: waiting
    # for it would hold this partition back as long as the blocker lasts.
    parent_pending = (
        AutomationCondition.any_deps_match(
            _rerun_pending(grand, tuple(partitioned_ancestors), shared)
        )
        .allow(allowed)
        .with_label("an upstream partition has a re-run pending (its own inputs changed)")
    )
    # The trigger, false almost everywhere, comes first: Dagster evaluates each later clause of
    # an `&` only on the partitions the clauses before it left true.
    rule = (
        upstream_updated
        & ~shared.inputs_not_ready
        & ~parent_pending
        & ~shared.in_progress.with_label("this partition is in progress")
        & own_failure_waits
        & shared.request_answered
    )
    return rule.with_label("repair rule: re-run when inputs changed and are complete")


def _rerun_pending(
    parents: AssetSelection, above: tuple[AssetSelection, ...], shared: _Clauses
) -> AutomationCondition:
    """A partition (read from `parents`, and `above` them level by level) will be re-run: a
    partition it reads was updated since it was built, or, up to `len(above)` levels higher,
    one of those has a re-run pending; and it is not blocked by a missing or failed input.

    Unrolled, one `any_deps_match` per level, because a condition cannot refer to itself.
    """
    changed = _updated_since_built(parents, shared.newly_updated)
    if above:
        changed = changed | AutomationCondition.any_deps_match(
            _rerun_pending(above[0], above[1:], shared)
        ).allow(parents).with_label("a partition it reads has a re-run pending")
    return changed & ~shared.inputs_blocked


def pending_levels(parents_of: Mapping[N, Sequence[N]]) -> dict[N, list[frozenset[N]]]:
    """For every roll-up (a node with parents in `parents_of`, the partitioned graph), the
    levels above its parents that its rule looks at for a pending re-run: its grandparents,
    then their parents, and so on, as deep as its diamonds need.

    When a change reaches a roll-up through one parent, every other partition the same change
    will still rebuild lies on another path into the roll-up, below the node where the paths
    split (the rules of the nodes in between wait for their own pending inputs). So the rule
    looks as far up as the farthest such node: any ancestor that is not the parent nor above
    it, but below one of its ancestors. Without a diamond, one level (a parent whose own inputs
    changed), the small rule, since Dagster evaluates every level at every tick.
    """

    @cache
    def lineage(node: N) -> frozenset[N]:
        """The node and all its ancestors."""
        return frozenset({node}).union(*(lineage(p) for p in parents_of.get(node, ())))

    levels: dict[N, list[frozenset[N]]] = {}
    for rollup, parents in parents_of.items():
        if not parents:
            continue
        # The shortest distance of every ancestor: the level at which the rule sees it.
        distance: dict[N, int] = {}
        new, depth = set(parents), 0
        while new:
            depth += 1
            distance.update(dict.fromkeys(new, depth))
            new = {p for node in new for p in parents_of.get(node, ())} - distance.keys()
        farthest_first = sorted(distance, key=distance.__getitem__, reverse=True)
        needed = next(
            (
                distance[node]
                for node in farthest_first
                if distance[node] > 1
                and any(
                    node not in lineage(parent) and (lineage(node) - {node}) & lineage(parent)
                    for parent in parents
                )
            ),
            1,
        )
        chain = [frozenset(parents)]
        for _ in range(needed):
            chain.append(frozenset(p for node in chain[-1] for p in parents_of.get(node, ())))
        levels[rollup] = chain[1:]
    return levels


def _updated_since_built(
    parents: AssetSelection, newly_updated: AutomationCondition
) -> AutomationCondition:
    """A partition read from `parents` was updated since this partition was last built."""
    # `allow`: a re-run staging view must not re-request three years of daily partitions.
    return AutomationCondition.any_deps_match(newly_updated).allow(parents).since(newly_updated)


@dataclass(frozen=True)
class _Clauses:
    newly_updated: AutomationCondition
    in_progress: AutomationCondition
    failed: AutomationCondition
    inputs_not_ready: AutomationCondition
    inputs_blocked: AutomationCondition
    request_answered: AutomationCondition


@cache
def _shared_clauses() -> _Clauses:
    """The parts of the rule that are the same for every roll-up."""
    newly_updated = AutomationCondition.newly_updated()
    in_progress = AutomationCondition.in_progress()
    failed = AutomationCondition.execution_failed()
    # One clause, one node per parent, for the three ways an input is not ready.
    inputs_not_ready = AutomationCondition.any_deps_match(
        AutomationCondition.missing().with_label("missing")
        | failed.with_label("latest run failed")
        | in_progress.with_label("in progress")
    ).with_label("an upstream partition is missing, failed or in progress")
    # A tick reads new materializations up to the moment it starts, but sees runs finish live:
    # a run that ends during a tick would look neither in progress nor done, and its
    # materialization shows only at the next tick. So a request counts as answered when it is
    # materialized, when its run failed, or once the partition has been seen not in progress at
    # two evaluations in a row after the one following the request: a run canceled (queued or
    # running), deleted or never launched then no longer holds the partition, and the rule
    # requests it again if its inputs still changed since it was built.
    not_in_progress = ~in_progress
    settled = (
        not_in_progress & ~AutomationCondition.newly_requested() & ~not_in_progress.newly_true()
    ).with_label("not in progress at this evaluation nor at the previous one")
    request_answered = (
        ~AutomationCondition.newly_requested().since(newly_updated | settled) | failed
    ).with_label("no earlier request of it is still unanswered")
    inputs_blocked = AutomationCondition.any_deps_match(
        AutomationCondition.missing().with_label("missing") | failed.with_label("latest run failed")
    ).with_label("an upstream partition is missing or failed")
    return _Clauses(
        newly_updated, in_progress, failed, inputs_not_ready, inputs_blocked, request_answered
    )


def repair_sensor(
    target: AssetSelection, interval_seconds: int, running: bool = True
) -> AutomationConditionSensorDefinition:
    """The daemon's evaluator of the rule, RUNNING from the start (Dagster's default is off)
    unless the environment turns automation off (flower.yaml `environments.<env>.automation`)."""
    return AutomationConditionSensorDefinition(
        SENSOR_NAME,
        target=target,
        default_status=DefaultSensorStatus.RUNNING if running else DefaultSensorStatus.STOPPED,
        minimum_interval_seconds=interval_seconds,
        description=(
            "Re-runs weekly, monthly and other roll-up partitions once every partition they read "
            "is complete and healthy, after a repair or when their window closes."
        ),
    )
