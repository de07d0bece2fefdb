"""The preview as text for a terminal and as JSON for scripts: pure, from an `Impact`."""

from __future__ import annotations

import json
from collections import defaultdict

from dagster import AssetKey

from flower_dagster.impact.model import Impact, ImpactedPartition
from flower_dagster.partitions import key_ranges, next_key


def render_text(impact: Impact) -> str:
    model = impact.model.to_user_string()
    repaired = ", ".join(key_ranges(impact.partitions, impact.partitions_defs.get(impact.model)))
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
        ranges = ", ".join(key_ranges(keys, impact.partitions_defs.get(key)))
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
                and next_key(partitions_def, groups[-1][-1].partition) == item.partition
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
        parts.append(f"{asset} {', '.join(key_ranges(keys, partitions_def))} ({problem})")
    return ", ".join(parts)


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
