"""The multi-assets the dbt project becomes: each one's dbt selection is exactly its assets.

A multi-asset run that is not a subset runs `dbt build` with the selection in its op tags; if
that selection and the asset keys disagreed, dbt would build models Dagster does not expect (or
skip ones it does). Checked with dbt's own `dbt ls` on the demo project.
"""

from __future__ import annotations

import subprocess

from dagster_dbt.asset_utils import (
    DAGSTER_DBT_EXCLUDE_METADATA_KEY,
    DAGSTER_DBT_SELECT_METADATA_KEY,
)

from flower_dagster.dbt.project import dbt_executable
from tests.conftest import Warehouse


def _dbt_ls(warehouse: Warehouse, select: str, exclude: str | None) -> set[str]:
    command = [
        dbt_executable(),
        "--no-use-colors",
        "ls",
        "--quiet",
        "--project-dir",
        str(warehouse.project_dir),
        "--profiles-dir",
        str(warehouse.project_dir),
        "--resource-type",
        "model",
        "--resource-type",
        "seed",
        "--resource-type",
        "snapshot",
        "--output",
        "name",
        "--select",
        select,
        *(["--exclude", exclude] if exclude else []),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_each_multi_assets_dbt_selection_is_exactly_its_assets(warehouse: Warehouse):
    groups = {a.node_def.name: a for a in warehouse.defs.assets or []}
    # The unpartitioned models are split: what partitioned models read, and the rest.
    assert {k.to_user_string() for k in groups["dbt_unpartitioned_models"].keys} == {
        "stg_events",
        "stg_orders",
        "stg_payments",
        "stg_users",
    }
    assert {k.to_user_string() for k in groups["dbt_unpartitioned_downstream_models"].keys} == {
        "dim_users"
    }
    for name, assets_def in groups.items():
        tags = assets_def.op.tags
        selected = _dbt_ls(
            warehouse,
            tags[DAGSTER_DBT_SELECT_METADATA_KEY],
            tags.get(DAGSTER_DBT_EXCLUDE_METADATA_KEY),
        )
        assert selected == {k.to_user_string() for k in assets_def.keys}, name
