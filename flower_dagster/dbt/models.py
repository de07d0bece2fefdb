"""What each dbt node says about its partitioning, read from the manifest and validated.

A model declares its grain in its own config, next to the model:

    models:
      - name: fct_orders
        config:
          materialized: incremental
          meta:
            flower:
              partition: daily            # hourly | daily | weekly | monthly; none = unpartitioned
              partition_column: order_date

Every mistake is reported at load time, all at once, each naming the model, its files, the bad
value and what is allowed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from flower_dagster.errors import ModelConfigError
from flower_dagster.partitions import GRAINS, Grain

META_KEY = "flower"
PARTITION_KEY = "partition"
PARTITION_COLUMN_KEY = "partition_column"
SCHEDULE_HOUR_KEY = "schedule_hour"
ALLOWED_KEYS = (PARTITION_KEY, PARTITION_COLUMN_KEY, SCHEDULE_HOUR_KEY)
# dbt resource types that become Dagster assets.
ASSET_RESOURCE_TYPES = ("model", "seed", "snapshot")
# Materializations that keep earlier partitions when a run writes one partition.
PARTITIONABLE_MATERIALIZATIONS = ("incremental",)


@dataclass(frozen=True)
class NodeGrain:
    """One dbt node as flower-dagster sees it."""

    unique_id: str
    name: str
    resource_type: str
    grain: Grain | None
    partition_column: str | None
    # The nearest partitioned ancestors (looking through ephemeral models), as unique ids.
    partitioned_parents: tuple[str, ...] = ()
    # The model's own batch hour (meta.flower.schedule_hour), instead of flower.yaml's.
    schedule_hour: int | None = None

    @property
    def partitioned(self) -> bool:
        return self.grain is not None

    @property
    def is_rollup(self) -> bool:
        """A partitioned model built from partitioned models: the repair rule applies to it."""
        return self.grain is not None and bool(self.partitioned_parents)


def grain_selector(grain: Grain) -> str:
    """The dbt selection of the models of one grain (as used by `dbt ls -s ...`)."""
    return f"config.meta.{META_KEY}.{PARTITION_KEY}:{grain.value}"


def flower_meta(node: Mapping[str, Any]) -> Any:
    """The node's `meta.flower` block (config.meta wins over the older top-level meta)."""
    config_meta = (node.get("config") or {}).get("meta") or {}
    if META_KEY in config_meta:
        return config_meta[META_KEY]
    return (node.get("meta") or {}).get(META_KEY)


def describe(node: Mapping[str, Any]) -> str:
    """`model fct_orders (models/marts/fct_orders.sql, properties models/marts/fct_orders.yml)`."""
    where = [node.get("original_file_path") or "?"]
    patch = node.get("patch_path")
    if patch:
        where.append("properties " + patch.split("://", 1)[-1])
    return f"{node.get('resource_type', 'node')} {node.get('name')} ({', '.join(where)})"


def read_grains(manifest: Mapping[str, Any]) -> dict[str, NodeGrain]:
    """Every asset-producing node of the manifest with its grain; raises ModelConfigError."""
    nodes: dict[str, Mapping[str, Any]] = {
        uid: node
        for uid, node in manifest["nodes"].items()
        if node.get("resource_type") in ASSET_RESOURCE_TYPES
    }
    problems: list[str] = []
    grains: dict[str, NodeGrain] = {}
    for uid, node in nodes.items():
        found = _node_grain(uid, node, problems)
        if found is not None:
            grains[uid] = found
    # Ephemeral models are inlined into their children; they are not assets but they still
    # carry their parents' partitioning to the model that reads them.
    ephemeral = {
        uid
        for uid, node in manifest["nodes"].items()
        if (node.get("config") or {}).get("materialized") == "ephemeral"
    }
    for uid, node_grain in list(grains.items()):
        if node_grain.grain is None:
            continue
        parents = _partitioned_parents(uid, manifest, grains, ephemeral)
        grains[uid] = replace(node_grain, partitioned_parents=tuple(sorted(parents)))
        for parent_uid in parents:
            parent = grains[parent_uid]
            assert parent.grain is not None
            if parent.grain.rank > node_grain.grain.rank:
                problems.append(
                    f"{describe(nodes[uid])}: meta.{META_KEY}.{PARTITION_KEY} is "
                    f"'{node_grain.grain}' but it reads {parent.name}, which is "
                    f"'{parent.grain}'; a model cannot be finer than a partitioned parent "
                    f"(allowed here: {_at_least(parent.grain)}, or read a finer parent)"
                )
    if problems:
        raise ModelConfigError(sorted(problems))
    return grains


def _node_grain(uid: str, node: Mapping[str, Any], problems: list[str]) -> NodeGrain | None:
    meta = flower_meta(node)
    materialized = (node.get("config") or {}).get("materialized")
    base = NodeGrain(uid, node["name"], node["resource_type"], None, None)
    if meta is None:
        return None if materialized == "ephemeral" else base
    where = describe(node)
    if not isinstance(meta, Mapping):
        problems.append(
            f"{where}: meta.{META_KEY} is {meta!r}; it must be a mapping with the keys "
            f"{', '.join(ALLOWED_KEYS)}"
        )
        return None
    unknown = sorted(set(meta) - set(ALLOWED_KEYS))
    if unknown:
        problems.append(
            f"{where}: unknown key{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(f'meta.{META_KEY}.{k}' for k in unknown)}; allowed: "
            f"{', '.join(ALLOWED_KEYS)}"
        )
    raw_grain = meta.get(PARTITION_KEY)
    if raw_grain is None:
        return None if materialized == "ephemeral" else base
    allowed = ", ".join(g.value for g in GRAINS)
    if not isinstance(raw_grain, str) or raw_grain.lower() not in {g.value for g in GRAINS}:
        problems.append(
            f"{where}: meta.{META_KEY}.{PARTITION_KEY} is {raw_grain!r}; allowed: {allowed} "
            "(or leave it out for an unpartitioned model)"
        )
        return None
    grain = Grain(raw_grain.lower())
    if node["resource_type"] != "model":
        problems.append(
            f"{where}: meta.{META_KEY}.{PARTITION_KEY} is '{grain}', but only models can be "
            f"partitioned, not a {node['resource_type']}; remove it"
        )
        return None
    if materialized not in PARTITIONABLE_MATERIALIZATIONS:
        hint = (
            "an ephemeral model is inlined into its readers and has no partitions of its own"
            if materialized == "ephemeral"
            else f"a '{materialized}' model would be rebuilt with only the latest partition"
        )
        problems.append(
            f"{where}: is partitioned '{grain}' but materialized '{materialized}'; "
            f"a partitioned model must be materialized 'incremental' ({hint}). "
            f"Make it incremental, or remove meta.{META_KEY}.{PARTITION_KEY}"
        )
        return None
    column = meta.get(PARTITION_COLUMN_KEY)
    if not isinstance(column, str) or not column.strip():
        problems.append(
            f"{where}: is partitioned '{grain}' but meta.{META_KEY}.{PARTITION_COLUMN_KEY} is "
            f"{column!r}; name the column that holds each row's partition (the last column "
            "of the select), e.g. order_date"
        )
        return None
    hour = meta.get(SCHEDULE_HOUR_KEY)
    if hour is not None and (
        isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23
    ):
        problems.append(
            f"{where}: meta.{META_KEY}.{SCHEDULE_HOUR_KEY} is {hour!r}; allowed: a whole hour "
            "from 0 to 23 (or leave it out to use the batch hour of flower.yaml)"
        )
        return None
    return NodeGrain(uid, node["name"], "model", grain, column.strip(), schedule_hour=hour)


def _partitioned_parents(
    uid: str,
    manifest: Mapping[str, Any],
    grains: Mapping[str, NodeGrain],
    ephemeral: set[str],
) -> set[str]:
    """The nearest partitioned ancestors of `uid`, looking through ephemeral models."""
    found: set[str] = set()
    seen: set[str] = set()
    stack = list(manifest["parent_map"].get(uid, ()))
    while stack:
        parent = stack.pop()
        if parent in seen:
            continue
        seen.add(parent)
        if parent in ephemeral:
            stack.extend(manifest["parent_map"].get(parent, ()))
        elif parent in grains and grains[parent].grain is not None:
            found.add(parent)
    return found


def _at_least(grain: Grain) -> str:
    return ", ".join(g.value for g in GRAINS if g.rank >= grain.rank)
