"""The embedded instance's storage (flower_dagster/storage.py, `PooledSqliteStorage`) on real
SQLite files: Dagster's files and tables, each file's connection kept in a process, and never a
write into a file that was deleted under it."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import sqlalchemy
import yaml
from dagster import (
    AssetKey,
    AssetMaterialization,
    DagsterInstance,
    DailyPartitionsDefinition,
    asset,
    materialize,
)

from flower_dagster.storage import (
    DEV_INSTANCE_FILE,
    PooledSqliteEventLogStorage,
    PooledSqliteRunStorage,
    PooledSqliteScheduleStorage,
    PooledSqliteStorage,
    write_instance_yaml,
)

DAYS = ["2024-01-01", "2024-01-02", "2024-01-03"]


@asset(partitions_def=DailyPartitionsDefinition("2024-01-01"))
def orders() -> int:
    return 1


def pooled(home: Path) -> DagsterInstance:
    write_instance_yaml(DEV_INSTANCE_FILE, home)
    return DagsterInstance.from_config(str(home))


def stock(home: Path) -> DagsterInstance:
    """Dagster's default storage in `home` (no storage block)."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return DagsterInstance.from_config(str(home))


@contextmanager
def sqlite_connections() -> Iterator[list[str]]:
    """Every SQLite connection opened meanwhile, by the file it opened."""
    opened: list[str] = []

    def on_connect(dbapi_connection, _record) -> None:
        opened.append(dbapi_connection.execute("pragma database_list").fetchone()[2])

    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "connect", on_connect)
    try:
        yield opened
    finally:
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "connect", on_connect)


def test_the_dev_instance_uses_the_pooled_storage_with_dagsters_files(tmp_path):
    config = yaml.safe_load(DEV_INSTANCE_FILE.read_text())
    assert config["storage"]["custom"] == {
        "module": "flower_dagster.storage",
        "class": "PooledSqliteStorage",
        "config": {"base_dir": {"env": "DAGSTER_HOME"}},
    }
    home = tmp_path / "home"
    with pooled(home) as instance:
        assert isinstance(instance.run_storage, PooledSqliteRunStorage)
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        assert isinstance(instance.schedule_storage, PooledSqliteScheduleStorage)
        materialize([orders], instance=instance, partition_key=DAYS[0])
        run_id = instance.get_runs()[0].run_id
    files = {p.relative_to(home).as_posix() for p in home.rglob("*.db")}
    # The layout of Dagster's own `storage: sqlite`, so either can open the other's folder.
    assert files == {
        "history/runs.db",
        f"history/runs/{run_id}.db",
        "history/runs/index.db",
        "schedules/schedules.db",
    }
    # The copy names the folder itself: it opens without DAGSTER_HOME set.
    written = yaml.safe_load((home / "dagster.yaml").read_text())
    assert written["storage"]["custom"]["config"] == {"base_dir": str(home)}
    assert written["concurrency"] == config["concurrency"]


def test_an_instance_made_with_dagsters_default_storage_keeps_its_history(tmp_path):
    home = tmp_path / "home"
    with stock(home) as instance:
        for day in DAYS[:2]:
            materialize([orders], instance=instance, partition_key=day)
    with pooled(home) as instance:
        assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
        assert instance.get_materialized_partitions(AssetKey("orders")) == set(DAYS[:2])
        assert len(instance.get_runs()) == 2
        materialize([orders], instance=instance, partition_key=DAYS[2])
    with stock(home) as instance:  # and back
        assert instance.get_materialized_partitions(AssetKey("orders")) == set(DAYS)


def test_queries_reuse_one_connection_per_file_where_dagsters_storage_opens_one_each(tmp_path):
    counts = {}
    for name, make in (("stock", stock), ("pooled", pooled)):
        with make(tmp_path / name) as instance:
            materialize([orders], instance=instance, partition_key=DAYS[0])
            with sqlite_connections() as opened:
                for _ in range(20):
                    instance.get_runs()
                    instance.get_latest_materialization_event(AssetKey("orders"))
                    instance.get_materialized_partitions(AssetKey("orders"))
                    instance.get_instigator_state("origin", "selector")
            counts[name] = opened
    assert len(counts["stock"]) >= 60
    # The runs, the event log's index and the schedules: one connection each, kept.
    assert len(counts["pooled"]) <= 3, counts["pooled"]


def test_a_file_deleted_under_a_kept_connection_is_opened_again_not_written_through(tmp_path):
    """A wipe deletes each run's event file while this process holds a connection to one: the
    next events of that run land in the file on disk, where every reader finds them, not in
    the deleted file through the old connection."""
    home = tmp_path / "home"
    with pooled(home) as instance:
        run_id = materialize([orders], instance=instance, partition_key=DAYS[0]).run_id
        events = instance.all_logs(run_id)  # read through the run file's kept connection
        assert len(events) > 2
        run_file = home / "history" / "runs" / f"{run_id}.db"
        instance.event_log_storage.wipe()
        assert not run_file.exists()
        for event in events[:2]:
            instance.event_log_storage.store_event(event)
        assert run_file.exists()
        assert len(instance.all_logs(run_id)) == 2
    with pooled(home) as reader:
        assert [e.message for e in reader.all_logs(run_id)] == [e.message for e in events[:2]]


def test_events_written_by_another_process_are_read_through_a_kept_connection(tmp_path):
    home = tmp_path / "home"
    with pooled(home) as instance:
        assert instance.get_materialized_partitions(AssetKey("orders")) == set()
        script = (
            "import sys\n"
            "from dagster import AssetMaterialization, DagsterInstance\n"
            "with DagsterInstance.from_config(sys.argv[1]) as instance:\n"
            "    for day in sys.argv[2:]:\n"
            "        instance.report_runless_asset_event(\n"
            "            AssetMaterialization('orders', partition=day))\n"
        )
        subprocess.run([sys.executable, "-c", script, str(home), *DAYS[:2]], check=True)
        assert instance.get_materialized_partitions(AssetKey("orders")) == set(DAYS[:2])
        subprocess.run([sys.executable, "-c", script, str(home), DAYS[2]], check=True)
        assert instance.get_materialized_partitions(AssetKey("orders")) == set(DAYS)


def test_threads_share_the_storage_without_errors(tmp_path):
    with pooled(tmp_path / "home") as instance:
        errors: list[BaseException] = []

        def work(day: str) -> None:
            try:
                for _ in range(10):
                    event = AssetMaterialization("orders", partition=day)
                    instance.report_runless_asset_event(event)
                    instance.get_runs()
                    instance.get_materialized_partitions(AssetKey("orders"))
            except BaseException as error:
                errors.append(error)

        threads = [threading.Thread(target=work, args=(day,)) for day in DAYS]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        records = instance.fetch_materializations(AssetKey("orders"), limit=100).records
        assert len(records) == 30


def _child_reads(home: str, queue) -> None:
    with DagsterInstance.from_config(home) as instance:
        queue.put(sorted(instance.get_materialized_partitions(AssetKey("orders"))))


def test_a_forked_child_opens_its_own_connections(tmp_path):
    home = tmp_path / "home"
    with pooled(home) as instance:
        instance.report_runless_asset_event(AssetMaterialization("orders", partition=DAYS[0]))
        storage = instance.event_log_storage
        assert storage._engines.kept >= 1
        context = multiprocessing.get_context("fork")
        queue = context.Queue()

        def child() -> None:
            # The parent's engines are dropped in the child, not shared with it.
            queue.put(storage._engines.kept)
            queue.put(sorted(instance.get_materialized_partitions(AssetKey("orders"))))

        process = context.Process(target=child)
        process.start()
        process.join(60)
        assert process.exitcode == 0
        assert queue.get(timeout=5) == 0
        assert queue.get(timeout=5) == [DAYS[0]]
        # The parent's connections still work.
        instance.report_runless_asset_event(AssetMaterialization("orders", partition=DAYS[1]))
        assert instance.get_materialized_partitions(AssetKey("orders")) == set(DAYS[:2])


def test_a_run_worker_rebuilds_the_pooled_storage_from_the_instance_reference(tmp_path):
    with pooled(tmp_path / "home") as instance:
        materialize([orders], instance=instance, partition_key=DAYS[0])
        ref = instance.get_ref()
    with DagsterInstance.from_ref(ref) as rebuilt:
        assert isinstance(rebuilt.event_log_storage, PooledSqliteEventLogStorage)
        assert rebuilt.get_materialized_partitions(AssetKey("orders")) == {DAYS[0]}


def test_the_storage_folder_is_required(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        yaml.safe_dump(
            {
                "storage": {
                    "custom": {
                        "module": "flower_dagster.storage",
                        "class": PooledSqliteStorage.__name__,
                        "config": {},
                    }
                }
            }
        )
    )
    with pytest.raises(Exception, match="base_dir"):
        DagsterInstance.from_config(str(home))
