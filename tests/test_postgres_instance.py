"""The repair scenario on a Dagster instance stored in a real PostgreSQL server.

The instance is `deploy/dagster.yaml`, the production configuration, with its connection read
from the environment; the server is a throwaway one on 127.0.0.1 (tests/postgres_server.py).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from dagster import DagsterInstance
from dagster._core.scheduler.instigation import InstigatorTick, InstigatorType, TickStatus

from flower_dagster.automation import SENSOR_NAME
from flower_dagster.demo.story import (
    DemoSetup,
    prepare_demo,
    start_daemon,
    start_process,
    stop_daemon,
)
from flower_dagster.settings import REPO_ROOT
from tests.automation_support import Automation, days
from tests.conftest import Warehouse, private_warehouse
from tests.http_support import free_port, graphql
from tests.postgres_server import (
    STOCK_STORAGE_MODULES,
    PostgresServer,
    postgres_server,
    with_stock_storage,
)
from tests.test_pool import assert_one_slot_is_claimed_at_a_time

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


def test_the_production_instance_stores_everything_in_postgres(instance):
    storages = {
        type(instance.run_storage).__name__,
        type(instance.event_log_storage).__name__,
        type(instance.schedule_storage).__name__,
    }
    assert storages == {
        "PooledPostgresRunStorage",
        "PooledPostgresEventLogStorage",
        "PooledPostgresScheduleStorage",
    }
    # The three storages read one connection block, every setting of it, the password
    # included, from the environment.
    config = yaml.safe_load(PRODUCTION_INSTANCE.read_text())
    blocks = [config[name]["config"] for name in STOCK_STORAGE_MODULES]
    assert blocks[0] == blocks[1] == blocks[2]
    connection = blocks[0]["postgres_db"]
    assert {key: value for key, value in connection.items() if key != "scheme"} == {
        "hostname": {"env": "DAGSTER_PG_HOST"},
        "port": {"env": "DAGSTER_PG_PORT"},
        "username": {"env": "DAGSTER_PG_USER"},
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "db_name": {"env": "DAGSTER_PG_DB"},
    }


def _sessions(server: PostgresServer, database: str | None = None) -> int:
    """Connections ever opened to `database` (PostgreSQL counts them), by default the one the
    instance uses (then the count itself opens one)."""
    name = database or server.database
    return server.query(f"select sessions from pg_stat_database where datname = '{name}'")


def _queries(instance: DagsterInstance, times: int) -> None:
    for _ in range(times):
        instance.get_runs(limit=1)
        instance.event_log_storage.get_asset_records()


def test_the_instance_reuses_its_connections_where_stock_dagster_postgres_opens_one_per_query(
    instance, server
):
    _queries(instance, 1)
    before = _sessions(server)
    _queries(instance, 25)
    pooled = _sessions(server) - before - 1
    # The pool's connections were opened by the first queries: none since.
    assert pooled == 0

    with _stock_copy(instance) as stock:
        _queries(stock, 1)
        before = _sessions(server)
        _queries(stock, 25)
        per_query = _sessions(server) - before - 1
    assert per_query >= 50


@contextmanager
def _stock_copy(instance: DagsterInstance) -> Iterator[DagsterInstance]:
    """The same database through stock dagster-postgres's storage classes."""
    stock_home = Path(tempfile.mkdtemp(prefix="stock-", dir=Path(instance.root_directory).parent))
    shutil.copytree(instance.root_directory, stock_home, dirs_exist_ok=True)
    stock_config = with_stock_storage(yaml.safe_load(PRODUCTION_INSTANCE.read_text()))
    (stock_home / "dagster.yaml").write_text(yaml.safe_dump(stock_config))
    stock = DagsterInstance.from_config(str(stock_home))
    try:
        yield stock
    finally:
        stock.dispose()


def test_the_pool_survives_a_dropped_connection(instance, server):
    _queries(instance, 1)
    # The server ends every other session: the pool's idle connections are dead now.
    terminated = server.query(
        "select count(pg_terminate_backend(pid)) from pg_stat_activity "
        f"where datname = '{server.database}' and pid <> pg_backend_pid()",
    )
    assert terminated >= 1
    # Each connection is checked before reuse and replaced: the next queries just work.
    _queries(instance, 3)
    assert instance.get_runs(limit=1) is not None


def test_processes_that_claim_the_one_slot_at_once_get_it_one_at_a_time_on_postgres(instance):
    # dagster-postgres reads the free slot FOR UPDATE SKIP LOCKED, but in autocommit, so the
    # lock ends with the read: stock dagster-postgres fails this test (two claims in a round).
    assert_one_slot_is_claimed_at_a_time(instance, "postgres-warehouse")


def test_a_run_worker_rebuilds_the_pooled_storage_from_the_instance_ref(instance):
    rebuilt = DagsterInstance.from_ref(instance.get_ref())
    try:
        assert type(rebuilt.event_log_storage).__name__ == "PooledPostgresEventLogStorage"
        assert rebuilt.event_log_storage.pool == instance.event_log_storage.pool
        assert len(rebuilt.get_runs()) == len(instance.get_runs())
    finally:
        rebuilt.dispose()


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
    assert server.query("select count(*) from runs") == len(instance.get_run_records()) > 5
    assert (
        server.query(
            "select count(*) from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION'",
        )
        > 31
    )


def _repair_rule_ticks(instance: DagsterInstance) -> list[InstigatorTick]:
    for state in instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
        if state.instigator_name == SENSOR_NAME:
            return list(instance.get_ticks(state.instigator_origin_id, state.selector_id))
    return []


def _start_webserver(setup: DemoSetup, port: int) -> subprocess.Popen[bytes]:
    return start_process(
        setup,
        "dagster-webserver",
        ["-h", "127.0.0.1", "-p", str(port), "-w", str(setup.workspace)],
        setup.root / "webserver.log",
    )


def _daemon_health(port: int, deadline: float) -> dict[str, bool]:
    """What the webserver reads of the daemons' heartbeats (from PostgreSQL), once it serves."""
    query = "{ instance { daemonHealth { allDaemonStatuses { daemonType healthy } } } }"
    while time.monotonic() < deadline:
        try:
            statuses = graphql(port, query)["instance"]["daemonHealth"]
        except (OSError, KeyError, TypeError, ValueError):
            time.sleep(1)
            continue
        return {s["daemonType"]: s["healthy"] for s in statuses["allDaemonStatuses"]}
    raise AssertionError(f"the webserver on port {port} did not answer in time")


def test_the_real_daemon_and_webserver_run_on_the_pooled_storage(server, tmp_path):
    """`dagster-daemon run` on the production file: its threads (scheduler, sensors, the repair
    rule, the run queue) and its code server share each process's pool; every tick of the
    repair rule ends without an error, and the daemon does not open a connection per query.
    The webserver (which swaps in its own pooled engine) reads the daemons' heartbeats."""
    database = "daemon_check"
    server.query(f"create database {database}")
    env = {**server.env, "DAGSTER_PG_DB": database}
    setup = prepare_demo(
        tmp_path, interval_seconds=2, instance_yaml=PRODUCTION_INSTANCE, instance_env=env
    )
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        instance = DagsterInstance.from_config(str(setup.dagster_home))
    daemon = start_daemon(setup)
    try:
        deadline = time.monotonic() + 180
        ticks: list[InstigatorTick] = []
        sessions_at_first_tick = None
        while time.monotonic() < deadline:
            assert daemon.poll() is None, setup.daemon_log.read_text()[-3000:]
            ticks = [t for t in _repair_rule_ticks(instance) if t.status != TickStatus.STARTED]
            if ticks and sessions_at_first_tick is None:
                sessions_at_first_tick = (_sessions(server, database), len(ticks))
            if len(ticks) >= 6:
                break
            time.sleep(1)
        sessions_after = _sessions(server, database)
        port = free_port()
        webserver = _start_webserver(setup, port)
        try:
            health = _daemon_health(port, time.monotonic() + 120)
        finally:
            stop_daemon(webserver)
    finally:
        stop_daemon(daemon)
        instance.dispose()
    assert webserver.returncode is not None
    assert health.get("ASSET") is True, health
    failed = [t.error for t in ticks if t.status == TickStatus.FAILURE]
    assert not failed, failed
    assert len(ticks) >= 6, setup.daemon_log.read_text()[-3000:]
    assert sessions_at_first_tick is not None
    first_sessions, first_ticks = sessions_at_first_tick
    per_tick = (sessions_after - first_sessions) / (len(ticks) - first_ticks)
    print(
        f"sessions per tick: {per_tick:.1f} ({sessions_after - first_sessions} over "
        f"{len(ticks) - first_ticks} ticks)"
    )
    assert per_tick < 10
