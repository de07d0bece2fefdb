"""The Dagster names flower-dagster needs that Dagster does not export publicly.

Every import of a private Dagster module (`dagster._...`) goes through here, so that an upgrade
of Dagster has one file to check. Each entry says why no public way exists. Tag names Dagster
writes on runs and events are plain strings of ours instead (`flower_dagster.dagster_tags`).
"""

from __future__ import annotations

# --- asset graph ---
# The type of the graph `Definitions.resolve_asset_graph()` and automation contexts hand out;
# Dagster exports no name for it. Used in annotations only.
from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph

# --- daemon state (ticks and backfills) ---
# The instance returns these from its public methods (`get_backfills`, `get_ticks`,
# `all_instigator_state`) and takes the enums as filters, but Dagster exports none of them.
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.scheduler.instigation import InstigatorTick, InstigatorType, TickStatus

__all__ = [
    "BaseAssetGraph",
    "BulkActionStatus",
    "InstigatorTick",
    "InstigatorType",
    "TickStatus",
]
