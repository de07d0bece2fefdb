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
    AssetCheckResult,
    AssetKey,
    AssetMaterialization,
    BackfillPolicy,
    DagsterInstance,
    DailyPartitionsDefinition,
    MaterializeResult,
    asset,
    asset_check,
    materialize,
)
from dagster._core.event_api import EventRecordsFilter
from dagster._core.events import DagsterEventType
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from dagster_shared.serdes import serialize_value

import flower_dagster.storage as storage_module
from flower_dagster.errors import SettingsError
from flower_dagster.storage import (
    DEV_INSTANCE_FILE,
    EVENT_BATCH_ENV,
    EVENT_BATCH_SIZE,
    PooledSqliteEventLogStorage,
    PooledSqliteRunStorage,
    PooledSqliteScheduleStorage,
    PooledSqliteStorage,
    enable_event_batches,
    write_instance_yaml,
)
from tests.test_collector import fresh_python

DAYS = ["2024-01-01", "2024-01-02", "2024-01-03"]


@asset(partitions_def=DailyPartitionsDefinition("2024-01-01"))
def orders() -> int:
    return 1


@asset(
    partitions_def=DailyPartitionsDefinition("2024-01-01"),
    backfill_policy=BackfillPolicy.single_run(),
)
def daily_totals() -> MaterializeResult:
    return MaterializeResult(metadata={"rows": 1})


@asset_check(asset=daily_totals)
def daily_totals_positive() -> AssetCheckResult:
    return AssetCheckResult(passed=True)


@asset_check(asset=daily_totals, partitions_def=DailyPartitionsDefinition("2024-01-01"))
def daily_totals_each_day() -> AssetCheckResult:
    return AssetCheckResult(passed=True)


RANGE_TAGS = {ASSET_PARTITION_RANGE_START_TAG: DAYS[0], ASSET_PARTITION_RANGE_END_TAG: DAYS[-1]}


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


def test_asset_events_ask_the_schema_once_where_dagsters_storage_asks_at_every_event(tmp_path):
    """Dagster's event log asks at every asset event whether the tags table and the asset-key
    columns exist (schema queries, `PRAGMA`s on SQLite); its SQLite storage opens a new
    connection to `index.db` for the first."""
    opened, asked = {}, {}

    def on_execute(conn, cursor, statement, *_args) -> None:
        if statement.lstrip().upper().startswith("PRAGMA"):
            pragmas.append(statement)

    for name, make in (("stock", stock), ("pooled", pooled)):
        with make(tmp_path / name) as instance:
            for _ in range(2):  # the first makes the files, and asks, the first time
                tags = {"dagster/data_version": "v"}  # a tag Dagster indexes
                event = AssetMaterialization("orders", partition=DAYS[0], tags=tags)
                instance.report_runless_asset_event(event)
            pragmas: list[str] = []
            sqlalchemy.event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", on_execute)
            try:
                with sqlite_connections() as connections:
                    for i in range(20):
                        tags = {"dagster/data_version": f"v{i}"}
                        event = AssetMaterialization("orders", partition=DAYS[i % 3], tags=tags)
                        instance.report_runless_asset_event(event)
            finally:
                sqlalchemy.event.remove(
                    sqlalchemy.engine.Engine, "before_cursor_execute", on_execute
                )
            opened[name], asked[name] = connections, pragmas
            records = instance.fetch_materializations(AssetKey("orders"), limit=100).records
            assert len(records) == 22
            assert records[0].asset_materialization.tags["dagster/data_version"] == "v19"
    assert len(opened["stock"]) >= 60  # the run file, index.db and has_table's, per event
    assert len(asked["stock"]) >= 40
    assert opened["pooled"] == [] and asked["pooled"] == [], (opened, asked)


def test_event_batches_are_on_unless_the_environment_says_otherwise():
    env: dict[str, str] = {}
    assert enable_event_batches(env) == EVENT_BATCH_SIZE
    assert env == {EVENT_BATCH_ENV: str(EVENT_BATCH_SIZE)}
    assert enable_event_batches({EVENT_BATCH_ENV: "0"}) == 0  # off, as the person chose
    assert enable_event_batches({EVENT_BATCH_ENV: " 25 "}) == 25
    for bad in ("many", "-1", "2.5", ""):
        with pytest.raises(SettingsError, match=f"{EVENT_BATCH_ENV}=.*0 to store every event"):
            enable_event_batches({EVENT_BATCH_ENV: bad})


# Loads the instance in argv[1] in a fresh interpreter, as every Dagster process does, and
# prints the batch size Dagster reads from the environment then.
BATCH_LOADER = (
    "import os, sys\n"
    "from dagster import DagsterInstance\n"
    "with DagsterInstance.from_config(sys.argv[1]) as instance:\n"
    "    instance.get_runs(limit=1)\n"
    f"print(os.environ.get({EVENT_BATCH_ENV!r}))\n"
)


def load_for_batches(
    home: Path, value: str | None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Load the instance in `home` in a fresh interpreter with DAGSTER_EVENT_BATCH_SIZE set to
    `value` (None: unset)."""
    chosen = {} if value is None else {EVENT_BATCH_ENV: value}
    return fresh_python(
        BATCH_LOADER,
        str(home),
        env={**(env or {}), **chosen},
        timeout=120,
        unset=(EVENT_BATCH_ENV,),
    )


def test_loading_make_devs_instance_turns_batches_on_and_a_bad_value_stops_it(tmp_path):
    write_instance_yaml(DEV_INSTANCE_FILE, tmp_path)
    for value, expected in ((None, str(EVENT_BATCH_SIZE)), ("0", "0"), ("50", "50")):
        loaded = load_for_batches(tmp_path, value)
        assert loaded.returncode == 0, loaded.stderr
        assert loaded.stdout.split()[-1] == expected
    refused = load_for_batches(tmp_path, "many")
    assert refused.returncode != 0
    assert f"SettingsError: {EVENT_BATCH_ENV}='many' is not allowed" in refused.stderr


# Columns the database fills with its own clock when a row is inserted: not the event's.
INSERTION_TIMES = {"create_timestamp", "update_timestamp", "migration_completed"}


def _tables(base_dir: Path) -> dict[str, list[tuple]]:
    """Every row of every table of every SQLite file under `base_dir`, by file and table, but
    for the columns that record when the row was inserted."""
    found = {}
    for path in sorted(base_dir.glob("*.db")):
        engine = sqlalchemy.create_engine(f"sqlite:///{path}")
        with engine.connect() as conn:
            inspector = sqlalchemy.inspect(conn)
            for table in inspector.get_table_names():
                columns = [
                    c["name"]
                    for c in inspector.get_columns(table)
                    if c["name"] not in INSERTION_TIMES
                ]
                listed = ", ".join(f'"{c}"' for c in columns)
                rows = conn.execute(sqlalchemy.text(f"select {listed} from {table}")).fetchall()
                found[f"{path.name}/{table}"] = sorted(map(tuple, rows), key=repr)
        engine.dispose()
    return found


def test_a_batch_is_stored_exactly_as_dagster_stores_its_events_one_by_one(tmp_path):
    """A real run's events (a range of three partitions, an asset check, run status changes,
    logs) stored by Dagster's `store_event` one at a time and as one batch: the same rows in
    the run's file and in index.db, ids and all."""
    with pooled(tmp_path / "home") as instance:
        result = materialize(
            [daily_totals, daily_totals_positive], instance=instance, tags=RANGE_TAGS
        )
        events = instance.all_logs(result.run_id)
    kinds = {e.dagster_event_type for e in events if e.is_dagster_event}
    assert {
        DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
        DagsterEventType.ASSET_MATERIALIZATION,
        DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
        DagsterEventType.ASSET_CHECK_EVALUATION,
        DagsterEventType.RUN_START,
        DagsterEventType.RUN_SUCCESS,
    } <= kinds
    one_by_one = PooledSqliteEventLogStorage(str(tmp_path / "one_by_one"))
    batched = PooledSqliteEventLogStorage(str(tmp_path / "batched"))
    for event in events:
        SqliteEventLogStorage.store_event(one_by_one, event)
    batched.store_event_batch(events)
    one_by_one.dispose()
    batched.dispose()
    expected = _tables(tmp_path / "one_by_one")
    assert expected["index.db/asset_event_tags"]  # the materializations' data-version tags
    assert expected["index.db/asset_check_executions"]
    assert len(expected[f"{result.run_id}.db/event_logs"]) == len(events)
    assert _tables(tmp_path / "batched") == expected


def test_a_planned_check_of_a_range_is_recorded_as_dagsters_storage_records_it(
    tmp_path, monkeypatch
):
    """A partitioned check planned over three partitions: one `asset_check_executions` row per
    partition, as Dagster's storage writes them (it serializes the event for each row, the
    pooled storage once)."""
    with pooled(tmp_path / "home") as instance:
        result = materialize(
            [daily_totals, daily_totals_each_day], instance=instance, tags=RANGE_TAGS
        )
        events = instance.all_logs(result.run_id)
    (planned,) = [
        e for e in events if e.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED
    ]
    subset = planned.dagster_event.asset_check_planned_data.partitions_subset
    assert subset is not None and sorted(subset.get_partition_keys()) == DAYS
    ours = PooledSqliteEventLogStorage(str(tmp_path / "ours"))
    dagsters = SqliteEventLogStorage(str(tmp_path / "dagsters"))
    serialized = []
    monkeypatch.setattr(
        storage_module, "serialize_value", lambda v: serialized.append(v) or serialize_value(v)
    )
    for event in events:
        ours.store_event(event)
        dagsters.store_event(event)
    assert serialized == [planned]  # once for the three rows
    ours.dispose()
    dagsters.dispose()
    expected = _tables(tmp_path / "dagsters")
    rows = expected["index.db/asset_check_executions"]
    assert sorted(row[3] for row in rows if "PLANNED" in row) == DAYS  # (id, key, name, partition
    assert _tables(tmp_path / "ours") == expected


def test_a_range_run_records_its_partitions_in_a_transaction_per_batch(tmp_path, monkeypatch):
    """With batches (the default once the instance loads), a run of three partitions writes
    its planned materializations, and its materializations, to index.db in one transaction
    each; with DAGSTER_EVENT_BATCH_SIZE=0 in one per event. Either way the same is recorded."""
    commits = {}
    for batch_size in ("0", None):
        monkeypatch.delenv(EVENT_BATCH_ENV, raising=False)
        if batch_size is not None:
            monkeypatch.setenv(EVENT_BATCH_ENV, batch_size)
        with pooled(tmp_path / f"home-{batch_size}") as instance:
            assert enable_event_batches() == int(batch_size or EVENT_BATCH_SIZE)
            seen: list[str] = []

            def on_commit(conn, seen=seen) -> None:
                if (conn.engine.url.database or "").endswith("index.db"):
                    seen.append(conn.engine.url.database)

            sqlalchemy.event.listen(sqlalchemy.engine.Engine, "commit", on_commit)
            try:
                materialize([daily_totals], instance=instance, tags=RANGE_TAGS)
            finally:
                sqlalchemy.event.remove(sqlalchemy.engine.Engine, "commit", on_commit)
            assert instance.get_materialized_partitions(AssetKey("daily_totals")) == set(DAYS)
            planned = instance.get_event_records(
                EventRecordsFilter(DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
            )
            assert sorted(r.event_log_entry.dagster_event.partition for r in planned) == DAYS
            commits[batch_size] = len(seen)
    # Three planned and three materialized partitions: six transactions become two.
    assert commits["0"] - commits[None] == 4, commits


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


def test_the_prepared_asset_queries_answer_as_dagsters_own_including_after_a_wipe(tmp_path):
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

    materialized = DagsterEventType.ASSET_MATERIALIZATION
    instance = pooled(tmp_path / "home")
    wiped, kept = AssetKey("wiped"), AssetKey("kept")
    for day in DAYS:
        for key in (wiped, kept):
            instance.report_runless_asset_event(AssetMaterialization(key, partition=day))
    storage = instance.event_log_storage
    assert isinstance(storage, PooledSqliteEventLogStorage)

    def ids_now() -> list[int]:
        return [
            record.storage_id
            for key in (wiped, kept)
            for record in SqliteEventLogStorage.get_asset_event_summary_records(
                storage, materialized, asset_key=key
            )
        ]

    before_wipe = ids_now()
    # The wipe as on PostgreSQL (Dagster's SQL storages): the asset's wipe time is recorded and
    # its events stay, filtered by time. (SQLite's own wipe also deletes them from the index.)
    SqlEventLogStorage.wipe_asset(storage, wiped)
    instance.report_runless_asset_event(AssetMaterialization(wiped, partition=DAYS[0]))
    every_id = sorted({*before_wipe, *ids_now(), 10_000})  # and an id no event has
    assert len(every_id) == 2 * len(DAYS) + 2
    answers = {}
    for key in (wiped, kept):
        for ascending in (False, True):
            for ids in (every_id, [], every_id[:2]):
                # As the automation tick asks: limit = the number of ids (and without a limit).
                for limit in (len(ids), None):
                    shape = {"storage_ids": ids, "ascending": ascending, "limit": limit}
                    prepared = storage.get_asset_event_summary_records(
                        materialized, asset_key=key, **shape
                    )
                    stock = SqliteEventLogStorage.get_asset_event_summary_records(
                        storage, materialized, asset_key=key, **shape
                    )
                    assert prepared == stock
                answers[key, ascending, len(ids)] = prepared
    # The wipe hides the three events before it; the one after it is kept, in either order.
    assert [r.partition for r in answers[wiped, False, len(every_id)]] == [DAYS[0]]
    assert [r.partition for r in answers[kept, True, len(every_id)]] == DAYS
    keys = [wiped, kept, AssetKey("never"), wiped]
    details = storage._get_assets_details(keys)
    assert details == SqliteEventLogStorage._get_assets_details(storage, keys)
    assert details[0] is not None and details[0].last_wipe_timestamp and details[1:3] == [None] * 2
    # Other shapes are Dagster's own method: a limit below the number of ids cuts rows.
    for shape in ({"limit": 1}, {"storage_ids": every_id, "limit": 2}):
        assert storage.get_asset_event_summary_records(
            materialized, asset_key=kept, **shape
        ) == SqliteEventLogStorage.get_asset_event_summary_records(
            storage, materialized, asset_key=kept, **shape
        )
    assert (
        len(storage.get_asset_event_summary_records(materialized, kept, None, every_id, limit=2))
        == 2
    )
