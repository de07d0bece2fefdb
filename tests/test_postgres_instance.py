"""The repair scenario on a Dagster instance stored in a real PostgreSQL server.

The instance is `deploy/dagster.yaml`, the production configuration, with its connection read
from the environment; the server is a throwaway one on 127.0.0.1 (tests/postgres_server.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import psycopg2
import pytest
import yaml
from dagster import DagsterInstance

from flower_dagster.settings import REPO_ROOT
from tests.automation_support import Automation, days
from tests.conftest import Warehouse, private_warehouse
from tests.postgres_server import PostgresServer, postgres_server

pytestmark = pytest.mark.slow

PRODUCTION_INSTANCE = REPO_ROOT / "deploy" / "dagster.yaml"


@pytest.fixture(scope="module")
def server() -> Iterator[PostgresServer]:
    with postgres_server() as running:
        yield running


@pytest.fixture(scope="module")
def instance(server: PostgresServer, tmp_path_factory) -> Iterator[DagsterInstance]:
    home = tmp_path_factory.mktemp("postgres_home")
    shutil.copy(PRODUCTION_INSTANCE, home / "dagster.yaml")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in server.env.items():
            patch.setenv(name, value)
        instance = DagsterInstance.from_config(str(home))
        yield instance
        instance.dispose()


@pytest.fixture(scope="module")
def own_warehouse(warehouse: Warehouse, tmp_path_factory) -> Iterator[Warehouse]:
    yield from private_warehouse(warehouse, tmp_path_factory, "postgres_instance")


def _count(server: PostgresServer, sql: str) -> int:
    with (
        psycopg2.connect(
            host=server.host,
            port=server.port,
            user=server.user,
            password=server.password,
            dbname=server.database,
        ) as connection,
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
        return cursor.fetchone()[0]


def test_the_production_instance_stores_everything_in_postgres(instance):
    storages = {
        type(instance.run_storage).__name__,
        type(instance.event_log_storage).__name__,
        type(instance.schedule_storage).__name__,
    }
    assert storages == {"PostgresRunStorage", "PostgresEventLogStorage", "PostgresScheduleStorage"}
    # Every connection setting, the password included, is read from the environment.
    connection = yaml.safe_load(PRODUCTION_INSTANCE.read_text())["storage"]["postgres"][
        "postgres_db"
    ]
    assert {key: value for key, value in connection.items() if key != "scheme"} == {
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "port": {"env": "DAGSTER_PG_PORT"},
        "username": {"env": "DAGSTER_PG_USER"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "db_name": {"env": "DAGSTER_PG_DB"},
    }


def test_a_repair_reruns_its_week_and_month_on_postgres(own_warehouse, instance, server):
    automation = Automation(own_warehouse.defs, instance)
    assert automation.tick() == {}
    assert automation.materialize_unpartitioned()
    assert automation.materialize(["fct_orders", "fct_sessions"], "2024-01-01", "2024-01-31")
    loaded = automation.settle()
    assert loaded["agg_weekly_revenue"] == {"2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22"}
    assert loaded["agg_monthly_revenue"] == {"2024-01-01"}
    assert loaded["agg_daily_revenue"] == days("2024-01-01", "2024-01-31")

    # A repair of one day re-runs exactly its week and month, once.
    assert automation.materialize(["fct_orders"], "2024-01-17")
    assert automation.settle() == {
        "agg_weekly_revenue": {"2024-01-15"},
        "agg_monthly_revenue": {"2024-01-01"},
        "agg_daily_revenue": {"2024-01-17"},
    }
    assert set(automation.requested_counts.values()) == {1}
    # It all went through PostgreSQL: the runs and their materializations are rows there.
    assert _count(server, "select count(*) from runs") == len(instance.get_run_records()) > 5
    assert (
        _count(
            server,
            "select count(*) from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION'",
        )
        > 31
    )
