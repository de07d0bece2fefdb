"""The names flower-dagster needs that Dagster, dagster-dbt and dagster-postgres do not export.

Every import of a private or internal module of theirs goes through here, so an upgrade has one
file to check (`make test-latest` runs the suite on the newest releases). Each entry says why no
public way exists. Tag names Dagster writes on runs and events are plain strings of ours
(`flower_dagster.dagster_tags`, checked against Dagster's by tests/test_dagster_surface.py), and
the asset graph is typed by what we read of it (`flower_dagster.asset_graph`).
"""

# ruff: noqa: I001  (grouped by the code that needs them, not sorted)

from __future__ import annotations

import importlib
from typing import Any

# --- daemon state (ticks and backfills; demo/story.py) ---
# The instance returns these from its public methods (`get_backfills`, `get_ticks`,
# `all_instigator_state`) and takes the enums as filters, but Dagster exports none of them.
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.scheduler.instigation import InstigatorTick, InstigatorType, TickStatus

# --- storage (the pooled dagster-postgres subclasses; storage.py, slot_claims.py) ---
# The config schema type a ConfigurableClass returns from `config_type`; not exported.
from dagster._config.config_schema import UserConfigSchema

# dagster-postgres's own connection fields (postgres_db / postgres_url), so the pooled storages
# accept exactly its configuration; dagster-postgres exposes no public schema.
from dagster._core.storage.config import pg_config

# The instance data a storage class receives from dagster.yaml; ConfigurableClass's API.
from dagster._serdes import ConfigurableClassData

# The return type of `claim_concurrency_slot`, which the slot-claim fix overrides.
from dagster._utils.concurrency import ConcurrencyClaimStatus


# --- dbt assets (dbt/assets.py, dbt/run.py) ---
# The metadata keys dagster-dbt puts on each spec of `@dbt_assets`: the dbt unique id of an
# asset, and the selection a multi-asset runs. Our per-grain multi-assets are built from those
# specs and must carry the same keys for dagster-dbt's own `cli()` to select their nodes.
from dagster_dbt.asset_utils import (
    DAGSTER_DBT_EXCLUDE_METADATA_KEY,
    DAGSTER_DBT_SELECT_METADATA_KEY,
    DAGSTER_DBT_UNIQUE_ID_METADATA_KEY,
)

# How dagster-postgres builds its engine and URL from that configuration (token auth
# included): the pooled storages build theirs the same way. Not in dagster_postgres's __all__.
# Imported on first use (`__getattr__` below): importing dagster-postgres takes most of a
# second, and only the PostgreSQL instance needs it, not every load of the code location.
_LAZY = {
    "create_pg_engine": "dagster_postgres.utils",
    "get_token_provider_from_config": "dagster_postgres.utils",
    "pg_url_from_config": "dagster_postgres.utils",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# The lazy names of _LAZY are served by __getattr__ and not listed here.
__all__ = [
    "DAGSTER_DBT_EXCLUDE_METADATA_KEY",
    "DAGSTER_DBT_SELECT_METADATA_KEY",
    "DAGSTER_DBT_UNIQUE_ID_METADATA_KEY",
    "BulkActionStatus",
    "ConcurrencyClaimStatus",
    "ConfigurableClassData",
    "InstigatorTick",
    "InstigatorType",
    "TickStatus",
    "UserConfigSchema",
    "pg_config",
]
