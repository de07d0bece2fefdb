"""Every import of Dagster's private modules that flower-dagster makes, in one place.

When Dagster or dagster-dbt is upgraded, this file is where a moved or renamed name shows up
first; each import says why no public name does the job. Imports are grouped by the code that
needs them, not sorted.
"""

# ruff: noqa: I001

# --- storage (dagster-postgres subclasses) ---

# The config schema type a ConfigurableClass returns from `config_type`; not exported publicly.
from dagster._config.config_schema import UserConfigSchema

# dagster-postgres's own connection fields (postgres_db / postgres_url), so the pooled
# storages accept exactly its configuration; dagster-postgres exposes no public schema.
from dagster._core.storage.config import pg_config

# The instance data a storage class receives from dagster.yaml; ConfigurableClass's API.
from dagster._serdes import ConfigurableClassData

# The return type of `claim_concurrency_slot`, which the slot-claim fix overrides.
from dagster._utils.concurrency import ConcurrencyClaimStatus

# --- dbt step (flower_dagster/dbt/run.py) ---

# The tag Dagster puts on a backfill's runs ("dagster/backfill"), copied onto the per-partition
# materializations; Dagster exports no public constant for it.
from dagster._core.storage.tags import BACKFILL_ID_TAG

__all__ = [
    "BACKFILL_ID_TAG",
    "ConcurrencyClaimStatus",
    "ConfigurableClassData",
    "UserConfigSchema",
    "pg_config",
]
