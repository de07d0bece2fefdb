"""Before a backfill launches: are the partitions it reads there, and what will it re-run after?

A backfill of a roll-up whose days were never built cannot succeed: the source check stops its
run before dbt. So the admin looks first. For every partition of the range it asks the asset
graph which upstream partitions it reads (the same mapping the source check,
`flower_dagster.inputs`, and the repair rule use) and asks Dagster, through its GraphQL API,
whether each is materialized, failed or in progress. What is not healthy is named per model with
neighbouring partitions collapsed: `fct_orders 2024-02-01..2024-02-07 missing`.

The impact is `flower_dagster.impact.preview` as it is (no instance: the admin reads Dagster only
through GraphQL): which weeks, months and downstream models the repair rule re-runs after the
backfill, and which descendants it does not re-run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dagster import AssetKey

from flower_dagster.asset_graph import AssetGraph
from flower_dagster.impact import preview
from flower_dagster.inputs import Problem
from flower_dagster.partitions import key_ranges

# Dagster's partition range statuses, in the words of the source check.
_PROBLEM_OF = {"FAILED": Problem.FAILED, "MATERIALIZING": Problem.IN_PROGRESS}


@dataclass(frozen=True)
class InputGap:
    """Partitions of one upstream model that the backfill reads and that are not healthy."""

    model: str
    problem: Problem
    partitions: tuple[str, ...]  # empty for an unpartitioned model
    ranges: tuple[str, ...]

    def __str__(self) -> str:
        where = f"{self.model} {', '.join(self.ranges)}" if self.ranges else self.model
        return f"{where} {self.problem}"

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "problem": self.problem,
            "partitions": list(self.partitions),
            "ranges": list(self.ranges),
            "text": str(self),
        }


# (partitioned assets) -> {asset: {"start..end": STATUS}}; (unpartitioned) -> built ones.
StatusReader = Callable[[Sequence[str]], Mapping[str, Mapping[str, str]]]
BuiltReader = Callable[[Sequence[str]], set[str]]


def input_gaps(
    asset_graph: AssetGraph,
    model: str,
    partition_keys: Sequence[str],
    statuses: StatusReader,
    built: BuiltReader,
    skip: set[str] | frozenset[str] = frozenset(),
) -> list[InputGap]:
    """The upstream partitions the backfill reads that are missing, failed or in progress.

    Models in `skip` are built by the same backfill (included inputs) and are not checked."""
    key = AssetKey.from_user_string(model)
    wanted: dict[AssetKey, set[str]] = defaultdict(set)
    unpartitioned: set[AssetKey] = set()
    for partition in partition_keys:
        parents = asset_graph.get_parents_partitions(key, partition)
        for parent in [
            *parents.parent_partitions,
            *parents.required_but_nonexistent_parents_partitions,
        ]:
            name = parent.asset_key.to_user_string()
            if name in skip or not _managed(asset_graph, parent.asset_key):
                continue
            if parent.partition_key is None:
                unpartitioned.add(parent.asset_key)
            else:
                wanted[parent.asset_key].add(parent.partition_key)
    gaps: list[InputGap] = []
    if wanted:
        ranges = statuses([k.to_user_string() for k in wanted])
        for parent_key, keys in sorted(wanted.items()):
            name = parent_key.to_user_string()
            spans = ranges.get(name, {})
            by_problem: dict[str, list[str]] = defaultdict(list)
            for partition in sorted(keys):
                problem = _problem(partition, spans)
                if problem:
                    by_problem[problem].append(partition)
            partitions_def = asset_graph.get(parent_key).partitions_def
            for problem, found in by_problem.items():
                gaps.append(
                    InputGap(name, problem, tuple(found), tuple(key_ranges(found, partitions_def)))
                )
    if unpartitioned:
        names = sorted(k.to_user_string() for k in unpartitioned)
        present = built(names)
        gaps.extend(InputGap(n, Problem.MISSING, (), ()) for n in names if n not in present)
    return gaps


def _managed(asset_graph: AssetGraph, key: AssetKey) -> bool:
    # Sources (external assets) are never checked, as in the source check.
    return asset_graph.has(key) and asset_graph.get(key).is_materializable


def _problem(partition: str, spans: Mapping[str, str]) -> str | None:
    """The partition's problem from Dagster's ranges; keys of one grain compare as text."""
    for span, status in spans.items():
        start, _, end = span.partition("..")
        if start <= partition <= end:
            return _PROBLEM_OF.get(status)
    return Problem.MISSING


def impact_of(asset_graph: AssetGraph, model: str, partition_keys: Sequence[str]) -> dict[str, Any]:
    """What the repair rule re-runs after the backfill: per downstream model its grain and
    partition ranges, the partitions whose window has not ended, and what it does not re-run."""
    impact = preview(
        asset_graph,
        model,
        partition_keys,
        None,
        "the admin previews the graph; blockers are the inputs check's",
    )
    by_asset: dict[AssetKey, list[str]] = defaultdict(list)
    for item in impact.impacted:
        by_asset[item.asset].append(item.partition)
    rerun = []
    for key, keys in by_asset.items():
        partitions_def = impact.partitions_defs.get(key)
        rerun.append(
            {
                "model": key.to_user_string(),
                "grain": impact.grains.get(key, "?"),
                "partitions": len(keys),
                "ranges": key_ranges(keys, partitions_def),
            }
        )
    return {
        "reruns": rerun,
        "not_yet": [
            {
                "model": key.to_user_string(),
                "ranges": key_ranges(keys, impact.partitions_defs.get(key)),
            }
            for key, keys in impact.not_yet
        ],
        "not_rerun": [{"model": key.to_user_string(), "why": why} for key, why in impact.not_rerun],
    }


def describe_impact(impact: Mapping[str, Any]) -> list[str]:
    """The impact as lines for a terminal."""
    lines = []
    for item in impact["reruns"]:
        lines.append(
            f"  {item['model']} ({item['grain']}): {', '.join(item['ranges'])} "
            f"({item['partitions']} partition{'' if item['partitions'] == 1 else 's'})"
        )
    if not lines:
        lines.append("  nothing downstream")
    for item in impact["not_yet"]:
        lines.append(f"  not yet: {item['model']} {', '.join(item['ranges'])} (window not ended)")
    for item in impact["not_rerun"]:
        lines.append(f"  not re-run by the rule: {item['model']} ({item['why']})")
    return lines
