"""Impact preview: what a repair of some partitions re-runs downstream, and what blocks it now.

`flower impact fct_orders 2024-01-10` runs nothing. It walks the asset graph from the repaired
partitions the way the repair rule (`flower_dagster.automation`) will: along every edge to a
partitioned asset that carries an automation condition, through Dagster's own partition mapping
of that edge (a day reaches its week and its month, a week reaches every month it overlaps), and
on from there. Unpartitioned descendants are not re-run by the rule; they are listed apart.

For each partition reached it then asks the Dagster instance what would hold it back today, with
the source check's own words (`flower_dagster.inputs.input_problems`). The repaired partitions,
and the partitions the rule will re-run after them, count as healthy: a repair of a failed day
fixes that day. A partition is blocked by the OTHER partitions it reads that are missing, failed
or in progress, by itself being in progress, or — when every partition that would trigger it is
blocked — by those (`blocked`): it waits for them.
"""

from __future__ import annotations

import difflib
import json
import os
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dagster import AssetKey, DagsterInstance, partition_loading_context
from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph
from dagster._core.definitions.partitions.definition import (
    PartitionsDefinition,
    TimeWindowPartitionsDefinition,
)
from dagster._core.definitions.partitions.subset import PartitionsSubset
from dagster._core.storage.partition_status_cache import AssetPartitionStatus

from flower_dagster.dbt.translator import GRAIN_TAG, UNPARTITIONED
from flower_dagster.errors import ModelSelectionError
from flower_dagster.inputs import Problem, input_problems
from flower_dagster.partitions import place_key

# An impacted partition that waits for an impacted upstream partition which is blocked itself.
BLOCKED = "blocked"
# How far ahead to look for downstream partitions whose window has not ended yet: further than
# the coarsest grain (a month), and a week overlapping two months.
_LOOKAHEAD = timedelta(days=400)
_GRAIN_WORDS = {
    "hourly": "one partition per hour",
    "daily": "one partition per day",
    "monthly": "one partition per month, keyed by its first day",
}
_WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


@dataclass(frozen=True, order=True)
class Blocker:
    """An upstream partition (or the partition itself) that holds an impacted partition back."""

    asset: str
    partition: str | None
    problem: str  # missing | failed | in progress (inputs.Problem) | blocked

    def __str__(self) -> str:
        where = f"{self.asset} {self.partition}" if self.partition else self.asset
        return f"{where} ({self.problem})"


@dataclass(frozen=True)
class ImpactedPartition:
    asset: AssetKey
    partition: str
    # None when unknown (no Dagster instance); empty when nothing blocks it.
    blockers: tuple[Blocker, ...] | None = None

    @property
    def blocked(self) -> bool | None:
        return None if self.blockers is None else bool(self.blockers)


@dataclass(frozen=True)
class Impact:
    """The whole preview of one repair, ready to render."""

    model: AssetKey
    partitions: tuple[str, ...]
    impacted: tuple[ImpactedPartition, ...]
    # Descendants the rule does not re-run, with why (`unpartitioned`, `no automation condition`).
    not_rerun: tuple[tuple[AssetKey, str], ...] = ()
    # Downstream partitions that do not exist yet: their window has not ended.
    not_yet: tuple[tuple[AssetKey, tuple[str, ...]], ...] = ()
    # Why blockers are unknown (None when they were read from an instance).
    blockers_unknown: str | None = None
    grains: Mapping[AssetKey, str] = field(default_factory=dict)
    partitions_defs: Mapping[AssetKey, PartitionsDefinition | None] = field(default_factory=dict)


# --- the walk: pure, on the asset graph only ---------------------------------------------------


def impacted_partitions(
    asset_graph: BaseAssetGraph,
    asset_key: AssetKey,
    partition_keys: Sequence[str],
    current_time: datetime | None = None,
) -> list[tuple[AssetKey, list[str]]]:
    """Every downstream asset partition the repair rule re-runs after a repair of `partition_keys`.

    Follows each edge to a partitioned asset with an automation condition through the edge's
    partition mapping, transitively; the repaired partitions themselves are not included. In
    topological order (finer grains first within a level), partitions sorted. Partitions whose
    window has not ended at `current_time` (default: now) do not exist yet and are left out.
    """
    with partition_loading_context(effective_dt=current_time):
        reached, _ = _walk(asset_graph, asset_key, partition_keys)
    return reached


def not_rerun_descendants(
    asset_graph: BaseAssetGraph, asset_key: AssetKey, partition_keys: Sequence[str]
) -> list[tuple[AssetKey, str]]:
    """Children of the repaired or re-run assets that the repair rule does not re-run, with why."""
    _, skipped = _walk(asset_graph, asset_key, partition_keys, include_empty=True)
    return skipped


def not_yet_partitions(
    asset_graph: BaseAssetGraph,
    asset_key: AssetKey,
    partition_keys: Sequence[str],
    current_time: datetime | None = None,
) -> list[tuple[AssetKey, list[str]]]:
    """Downstream partitions the repair reaches once their window has ended (none exist yet)."""
    with partition_loading_context(effective_dt=current_time) as context:
        now = context.effective_dt
        reached_now, _ = _walk(asset_graph, asset_key, partition_keys)
    with partition_loading_context(effective_dt=now + _LOOKAHEAD):
        reached_later, _ = _walk(asset_graph, asset_key, partition_keys)
    existing = {(key, p) for key, keys in reached_now for p in keys}
    found = [(key, [p for p in keys if (key, p) not in existing]) for key, keys in reached_later]
    return [(key, keys) for key, keys in found if keys]


def _walk(
    asset_graph: BaseAssetGraph,
    root: AssetKey,
    partition_keys: Sequence[str],
    include_empty: bool = False,
) -> tuple[list[tuple[AssetKey, list[str]]], list[tuple[AssetKey, str]]]:
    """The partitions reached from `root`, and the children the rule skips, with why.

    `include_empty` also walks on from assets reached with no partition that exists yet, to
    find every child the rule skips.
    """
    root_def = asset_graph.get(root).partitions_def
    assert root_def is not None, f"{root.to_user_string()} is not partitioned"
    subsets: dict[AssetKey, PartitionsSubset] = {
        root: root_def.subset_with_partition_keys(list(dict.fromkeys(partition_keys)))
    }
    skipped: dict[AssetKey, str] = {}
    order: list[AssetKey] = []
    for level in asset_graph.toposorted_asset_keys_by_level:
        for key in sorted(level, key=lambda k: (_grain_length(asset_graph, k), k.to_user_string())):
            subset = subsets.get(key)
            if subset is None or (subset.is_empty and not include_empty):
                continue
            order.append(key)
            parent_def = asset_graph.get(key).partitions_def
            for child in sorted(asset_graph.get(key).child_keys):
                node = asset_graph.get(child)
                if not node.is_materializable:
                    continue
                if node.partitions_def is None:
                    skipped.setdefault(child, UNPARTITIONED)
                    continue
                if node.automation_condition is None:
                    skipped.setdefault(child, "no automation condition")
                    continue
                mapping = asset_graph.get_partition_mapping(child, key)
                below = mapping.get_downstream_partitions_for_partitions(
                    subset, parent_def, node.partitions_def
                )
                subsets[child] = subsets[child] | below if child in subsets else below
    reached = [
        (key, sorted(subsets[key].get_partition_keys()))
        for key in order
        if key != root and not subsets[key].is_empty
    ]
    return reached, sorted(skipped.items())


def _grain_length(asset_graph: BaseAssetGraph, key: AssetKey) -> float:
    """Seconds in one partition of the asset (finer first when sorting a level); 0 if unknown."""
    partitions_def = asset_graph.get(key).partitions_def
    if isinstance(partitions_def, TimeWindowPartitionsDefinition):
        window = partitions_def.get_first_partition_window()
        if window is not None:
            return (window.end - window.start).total_seconds()
    return 0.0


# --- the model and its partitions as typed on the command line ---------------------------------


def resolve_model(asset_graph: BaseAssetGraph, name: str) -> AssetKey:
    """The asset key of a model named on the command line, or one message with close matches."""
    names = {
        key.to_user_string(): key
        for key in asset_graph.get_all_asset_keys()
        if asset_graph.get(key).is_materializable
    }
    if name in names:
        return names[name]
    by_lower = {n.lower(): n for n in names}
    if name.lower() in by_lower:
        return names[by_lower[name.lower()]]
    close = [by_lower[m] for m in difflib.get_close_matches(name.lower(), list(by_lower), n=5)]
    hint = f"did you mean {', '.join(close)}?" if close else "`flower models` lists the models"
    raise ModelSelectionError(f"unknown model {name!r}; {hint}")


def check_partitions(
    asset_graph: BaseAssetGraph, asset_key: AssetKey, partition_keys: Sequence[str]
) -> list[str]:
    """The partition keys, deduplicated; one message naming every bad key and the valid ones."""
    node = asset_graph.get(asset_key)
    name = asset_key.to_user_string()
    partitions_def = node.partitions_def
    if partitions_def is None:
        raise ModelSelectionError(
            f"{name} is not partitioned, so it has no partitions to repair; the repair rule "
            "re-runs the partitions of partitioned models built from a repaired partition "
            "(`flower models` shows each model's grain)"
        )
    keys = list(dict.fromkeys(partition_keys))
    bad = [key for key in keys if not partitions_def.has_partition_key(key)]
    if not bad:
        return keys
    reasons = [f"{key!r} {_why_not(partitions_def, key)}" for key in bad]
    allowed = _describe_partitions(partitions_def, node.tags.get(GRAIN_TAG))
    if len(reasons) == 1:
        raise ModelSelectionError(f"{name} has no partition {reasons[0]}; {name} {allowed}")
    lines = "\n".join(f"  - {reason}" for reason in reasons)
    raise ModelSelectionError(f"{name} has no partition:\n{lines}\n{name} {allowed}")


def _why_not(partitions_def: PartitionsDefinition, key: str) -> str:
    if not isinstance(partitions_def, TimeWindowPartitionsDefinition):
        return "(not one of its partitions)"
    placed = place_key(partitions_def, key)
    if not placed.valid:
        return f"(not a valid date of the form {_human_format(partitions_def.fmt)})"
    if placed.before_first:
        return f"(before the first partition, {partitions_def.get_first_partition_key()})"
    if (containing := placed.containing) != key:
        return f"(not the start of a partition: the partition that contains it is {containing})"
    if placed.after_last:
        latest = partitions_def.get_last_partition_key() or "none yet"
        return f"(after the last partition, {latest}: a partition exists once its window has ended)"
    return "(not one of its partitions)"


def _describe_partitions(partitions_def: PartitionsDefinition, grain: str | None) -> str:
    """`is weekly: one partition per week, keyed by its Monday (YYYY-MM-DD), from ... to ...`."""
    if not isinstance(partitions_def, TimeWindowPartitionsDefinition):
        return f"has {partitions_def.get_num_partitions()} partitions"
    first = partitions_def.get_first_partition_key()
    last = partitions_def.get_last_partition_key()
    span = f"from {first} to {last}" if first and last else "none yet"
    where = f"({_human_format(partitions_def.fmt)}), {span}, {partitions_def.timezone}"
    if grain == "weekly":
        weekday = _WEEKDAYS[(partitions_def.day_offset or 0) % 7]
        return f"is weekly: one partition per week, keyed by its {weekday} {where}"
    if grain in _GRAIN_WORDS:
        return f"is {grain}: {_GRAIN_WORDS[grain]} {where}"
    return f"has partitions keyed {where}"


def _human_format(fmt: str) -> str:
    for code, text in (("%Y", "YYYY"), ("%m", "MM"), ("%d", "DD"), ("%H", "HH"), ("%M", "MM")):
        fmt = fmt.replace(code, text)
    return fmt


# --- blockers: what the Dagster instance says today ------------------------------------------


def find_blockers(
    instance: DagsterInstance,
    asset_graph: BaseAssetGraph,
    asset_key: AssetKey,
    partition_keys: Sequence[str],
    impacted: Sequence[tuple[AssetKey, Sequence[str]]],
) -> list[ImpactedPartition]:
    """Each impacted partition with what blocks it now, the repair itself counting as done.

    The repaired partitions, and impacted partitions that nothing blocks, count as updated: they
    are not reported as missing or failed. Impacted partitions must come in topological order.
    """
    root = asset_key.to_user_string()
    repaired = {(root, key) for key in partition_keys}
    updated = set(repaired)
    reached = set(repaired) | {(k.to_user_string(), p) for k, keys in impacted for p in keys}
    found: list[ImpactedPartition] = []
    for key, keys in impacted:
        name = key.to_user_string()
        problems = input_problems(instance, asset_graph, key, list(keys))
        own = _statuses(instance, asset_graph, key, keys)
        for partition in keys:
            blockers = {
                Blocker(item.asset, item.partition, str(item.problem))
                for item in problems.get(partition, [])
                if (item.asset, item.partition) not in updated
            }
            if own.get(partition) == AssetPartitionStatus.IN_PROGRESS:
                blockers.add(Blocker(name, partition, str(Problem.IN_PROGRESS)))
            # The upstream partitions whose update triggers this one: if none of them is
            # updated (all blocked), it waits for them even when their old data is healthy.
            parents = asset_graph.get_parents_partitions(key, partition).parent_partitions
            triggers = {
                (p.asset_key.to_user_string(), p.partition_key)
                for p in parents
                if (p.asset_key.to_user_string(), p.partition_key) in reached
            }
            if not triggers & updated:
                listed = {(b.asset, b.partition) for b in blockers}
                blockers |= {Blocker(a, p, BLOCKED) for a, p in triggers if (a, p) not in listed}
            if not blockers:
                updated.add((name, partition))
            found.append(ImpactedPartition(key, partition, tuple(sorted(blockers))))
    return found


def _statuses(
    instance: DagsterInstance,
    asset_graph: BaseAssetGraph,
    key: AssetKey,
    partition_keys: Sequence[str],
) -> Mapping[str, AssetPartitionStatus]:
    partitions_def = asset_graph.get(key).partitions_def
    assert partitions_def is not None
    return instance.get_status_by_partition(key, list(partition_keys), partitions_def) or {}


# --- the preview, end to end -------------------------------------------------------------------


def preview(
    asset_graph: BaseAssetGraph,
    model: str,
    partition_keys: Sequence[str],
    instance: DagsterInstance | None,
    blockers_unknown: str | None = None,
    current_time: datetime | None = None,
) -> Impact:
    """Resolve the model and partitions, walk the graph, and read blockers from `instance`."""
    with partition_loading_context(effective_dt=current_time) as context:
        asset_key = resolve_model(asset_graph, model)
        keys = check_partitions(asset_graph, asset_key, partition_keys)
        reached = impacted_partitions(asset_graph, asset_key, keys)
        not_yet = not_yet_partitions(asset_graph, asset_key, keys, context.effective_dt)
        skipped = not_rerun_descendants(asset_graph, asset_key, keys)
        if instance is not None:
            impacted = find_blockers(instance, asset_graph, asset_key, keys, reached)
        else:
            impacted = [ImpactedPartition(k, p) for k, ps in reached for p in ps]
            blockers_unknown = blockers_unknown or "no Dagster instance was given"
    mentioned = {asset_key, *(i.asset for i in impacted), *(k for k, _ in not_yet)}
    mentioned |= {
        AssetKey.from_user_string(b.asset) for i in impacted for b in i.blockers or () if b.asset
    }
    return Impact(
        model=asset_key,
        partitions=tuple(keys),
        impacted=tuple(impacted),
        not_rerun=tuple(skipped),
        not_yet=tuple((k, tuple(ps)) for k, ps in not_yet),
        blockers_unknown=None if instance is not None else blockers_unknown,
        grains={k: _grain(asset_graph, k) for k in mentioned | {k for k, _ in skipped}},
        partitions_defs={k: asset_graph.get(k).partitions_def for k in mentioned},
    )


def _grain(asset_graph: BaseAssetGraph, key: AssetKey) -> str:
    node = asset_graph.get(key)
    tagged = node.tags.get(GRAIN_TAG)
    if tagged:
        return tagged
    if node.partitions_def is None:
        return UNPARTITIONED
    return type(node.partitions_def).__name__.removesuffix("PartitionsDefinition").lower()


@contextmanager
def instance_from_environment() -> Iterator[tuple[DagsterInstance | None, str | None]]:
    """The Dagster instance of DAGSTER_HOME, or None and why blockers cannot be known."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        yield (
            None,
            (
                "DAGSTER_HOME is not set, so there is no Dagster instance to read partition "
                "statuses from (`make dev` uses DAGSTER_HOME=dagster_home)"
            ),
        )
        return
    try:
        instance = DagsterInstance.get()
    except Exception as error:  # DagsterHomeException, a bad dagster.yaml, ...
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        yield None, f"the Dagster instance of DAGSTER_HOME={home} could not be opened: {first_line}"
        return
    try:
        yield instance, None
    finally:
        instance.dispose()


def run_impact(model: str, partition_keys: Sequence[str], output_format: str = "text") -> str:
    """`flower impact`: the definitions from the settings, the instance from DAGSTER_HOME."""
    from flower_dagster.defs import build_definitions

    asset_graph = build_definitions().resolve_asset_graph()
    with instance_from_environment() as (instance, why_unknown):
        impact = preview(asset_graph, model, partition_keys, instance, why_unknown)
    return render_json(impact) if output_format == "json" else render_text(impact)


# --- rendering --------------------------------------------------------------------------------


def render_text(impact: Impact) -> str:
    model = impact.model.to_user_string()
    repaired = ", ".join(_ranges(impact.partitions, impact.partitions_defs.get(impact.model)))
    count = len(impact.impacted)
    assets = len({i.asset for i in impact.impacted})
    lines = []
    if count:
        lines.append(
            f"A repair of {model} {repaired} re-runs {count} partition{_s(count)} of "
            f"{assets} model{_s(assets)} under the repair rule (preview: nothing was run):"
        )
        lines.append("")
        lines.extend(_table(impact))
    else:
        lines.append(
            f"A repair of {model} {repaired} re-runs nothing downstream under the repair rule "
            "(preview: nothing was run)."
        )
    notes = []
    if impact.blockers_unknown is not None and count:
        notes.append(f"blocked by: unknown (?) - {impact.blockers_unknown}.")
    elif count:
        notes.append(
            "A blocked partition is re-run once what blocks it is materialized; the repaired "
            "partitions count as done."
        )
    for key, keys in impact.not_yet:
        ranges = ", ".join(_ranges(keys, impact.partitions_defs.get(key)))
        notes.append(
            f"Not yet: {key.to_user_string()} {ranges} - its window has not ended; the rule "
            "builds it once it has."
        )
    if impact.not_rerun:
        names = ", ".join(f"{k.to_user_string()} ({why})" for k, why in impact.not_rerun)
        notes.append(
            f"Not re-run by the repair rule: {names}; materialize "
            f"{'it' if len(impact.not_rerun) == 1 else 'them'} yourself if it should see the "
            "repair."
        )
    if notes:
        lines.append("")
        lines.extend(notes)
    return "\n".join(lines)


def _table(impact: Impact) -> list[str]:
    rows: list[tuple[str, str, str, str]] = []
    by_asset: dict[AssetKey, list[ImpactedPartition]] = defaultdict(list)
    for item in impact.impacted:
        by_asset[item.asset].append(item)
    for key, items in by_asset.items():
        partitions_def = impact.partitions_defs.get(key)
        # Neighbouring partitions with the same blockers share one row.
        groups: list[list[ImpactedPartition]] = []
        for item in items:
            if (
                groups
                and groups[-1][-1].blockers == item.blockers
                and _next_key(partitions_def, groups[-1][-1].partition) == item.partition
            ):
                groups[-1].append(item)
            else:
                groups.append([item])
        for group in groups:
            first, last = group[0].partition, group[-1].partition
            span = first if len(group) == 1 else f"{first}..{last} ({len(group)})"
            rows.append(
                (
                    key.to_user_string(),
                    impact.grains.get(key, "?"),
                    span,
                    _blocked_by(impact, group[0]),
                )
            )
    header = ("asset", "grain", "partitions", "blocked by")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]


def _blocked_by(impact: Impact, item: ImpactedPartition) -> str:
    if item.blockers is None:
        return "?"
    if not item.blockers:
        return "-"
    grouped: dict[tuple[str, str], list[str]] = defaultdict(list)
    parts = []
    for blocker in item.blockers:
        if blocker.asset == item.asset.to_user_string() and blocker.partition == item.partition:
            parts.append(f"itself ({blocker.problem})")
        elif blocker.partition is None:
            parts.append(str(blocker))
        else:
            grouped[(blocker.asset, blocker.problem)].append(blocker.partition)
    for (asset, problem), keys in grouped.items():
        partitions_def = impact.partitions_defs.get(AssetKey.from_user_string(asset))
        parts.append(f"{asset} {', '.join(_ranges(keys, partitions_def))} ({problem})")
    return ", ".join(parts)


def _ranges(keys: Sequence[str], partitions_def: PartitionsDefinition | None) -> list[str]:
    """`2024-01-01..2024-01-09`, `2024-01-11`: neighbouring partitions as one range."""
    runs: list[list[str]] = []
    for key in sorted(set(keys)):
        if runs and _next_key(partitions_def, runs[-1][-1]) == key:
            runs[-1].append(key)
        else:
            runs.append([key])
    return [run[0] if len(run) == 1 else f"{run[0]}..{run[-1]}" for run in runs]


def _next_key(partitions_def: PartitionsDefinition | None, key: str) -> str | None:
    if not isinstance(partitions_def, TimeWindowPartitionsDefinition):
        return None
    try:
        return partitions_def.get_next_partition_key(key)
    except Exception:  # a key outside the definition (nonexistent upstream partitions)
        return None


def render_json(impact: Impact) -> str:
    def blockers(item: ImpactedPartition) -> list[dict[str, str | None]] | None:
        if item.blockers is None:
            return None
        return [
            {"asset": b.asset, "partition": b.partition, "problem": b.problem}
            for b in item.blockers
        ]

    document = {
        "model": impact.model.to_user_string(),
        "partitions": list(impact.partitions),
        "blockers_known": impact.blockers_unknown is None,
        "blockers_unknown_reason": impact.blockers_unknown,
        "impacted": [
            {
                "asset": item.asset.to_user_string(),
                "grain": impact.grains.get(item.asset),
                "partition": item.partition,
                "blocked": item.blocked,
                "blocked_by": blockers(item),
            }
            for item in impact.impacted
        ],
        "not_yet": [
            {"asset": key.to_user_string(), "partitions": list(keys)}
            for key, keys in impact.not_yet
        ],
        "not_rerun": [
            {"asset": key.to_user_string(), "reason": why} for key, why in impact.not_rerun
        ],
    }
    return json.dumps(document, indent=2)


def _s(count: int) -> str:
    return "" if count == 1 else "s"
