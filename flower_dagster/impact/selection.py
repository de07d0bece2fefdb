"""The model and its partitions as typed on the command line: found, or one helpful message."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from dagster import AssetKey, PartitionsDefinition, TimeWindowPartitionsDefinition

from flower_dagster.asset_graph import AssetGraph
from flower_dagster.errors import ModelSelectionError
from flower_dagster.partitions import GRAIN_TAG, place_key

_GRAIN_WORDS = {
    "hourly": "one partition per hour",
    "daily": "one partition per day",
    "monthly": "one partition per month, keyed by its first day",
}
_WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


def resolve_model(asset_graph: AssetGraph, name: str) -> AssetKey:
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
    asset_graph: AssetGraph, asset_key: AssetKey, partition_keys: Sequence[str]
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
