"""One model materializes alone: a test that needs a model the run does not build is not run.

dbt's default (eager) indirect selection runs every test that touches a selected model, so
building `stg_users` alone also ran the relationships tests of `stg_orders` and `stg_events`
(they refer to `stg_users`), and on a fresh warehouse those failed: their models did not exist.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dagster import AssetCheckKey, AssetKey, DagsterInstance, materialize

from tests.conftest import Warehouse, private_warehouse

pytestmark = pytest.mark.slow


@pytest.fixture
def fresh(warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """The demo project on a warehouse holding raw data only: no model has been built."""
    yield from private_warehouse(warehouse, tmp_path_factory, "fresh")


def test_one_staging_model_materializes_alone_on_a_fresh_warehouse(fresh: Warehouse):
    assert fresh.query(
        "select count(*) from information_schema.tables where table_name = 'stg_orders'"
    ) == [(0,)]
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            list(fresh.defs.assets or []),
            selection=[AssetKey("stg_users")],
            instance=instance,
            resources=fresh.defs.resources,
            raise_on_error=False,
        )
        failures = [
            str(event.event_specific_data.error) for event in result.all_events if event.is_failure
        ]
        assert result.success, failures
        assert {e.asset_key for e in result.get_asset_materialization_events()} == {
            AssetKey("stg_users")
        }
        assert fresh.query("select count(*) > 0 from stg_users") == [(True,)]
        evaluated = {
            AssetCheckKey(e.asset_key, e.check_name): e.passed
            for e in result.get_asset_check_evaluations()
        }
        # stg_users's own tests ran and passed; none of another model's ran.
        assert evaluated
        assert all(evaluated.values()), evaluated
        assert {key.asset_key for key in evaluated} == {AssetKey("stg_users")}
        # The relationships checks of stg_orders were not evaluated: no execution in the
        # instance, which the UI shows as "not evaluated" (never as passed or failed).
        orders_checks = [
            key
            for key in fresh.defs.get_repository_def().asset_graph.asset_check_keys
            if key.asset_key == AssetKey("stg_orders")
        ]
        assert any("relationships" in key.name for key in orders_checks)
        for key in orders_checks:
            assert instance.event_log_storage.get_asset_check_execution_history(key, 1) == []
