"""The Dagster names flower-dagster needs that Dagster does not export publicly.

Every import of a private Dagster module (`dagster._...`) goes through here, so that an upgrade
of Dagster has one file to check. Each entry says why no public way exists. Tag names Dagster
writes on runs and events are plain strings of ours instead (`flower_dagster.dagster_tags`), and
the asset graph is typed by what we read of it (`flower_dagster.asset_graph`).
"""

from __future__ import annotations

# --- daemon state (ticks and backfills) ---
# The instance returns these from its public methods (`get_backfills`, `get_ticks`,
# `all_instigator_state`) and takes the enums as filters, but Dagster exports none of them.
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.scheduler.instigation import InstigatorTick, InstigatorType, TickStatus

__all__ = [
    "BulkActionStatus",
    "InstigatorTick",
    "InstigatorType",
    "TickStatus",
]
