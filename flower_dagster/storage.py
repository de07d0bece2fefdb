"""Dagster's storage with connections kept open in every process: SQLite and PostgreSQL.

Dagster's storages open a new database connection for every query outside the webserver
(their SQLAlchemy engines use `NullPool`, so that many short-lived processes do not each hold
connections; the SQLite ones also build a new engine, and so compile every statement again, per
query). The daemon is not short-lived: one evaluation of the repair rule over a 1,000-model
project runs about 8,000 queries, and a backfill run writes two events per partition. The
classes here are Dagster's own storages with one change, an engine that keeps its connections
(docs/benchmarks.md has the figures):

- `PooledSqliteStorage`, the embedded default (`dagster_home/dagster.yaml`, what `make dev`
  runs): the files and tables of Dagster's SQLite storage (`runs.db`, one event log file per
  run plus `index.db`, `schedules.db`, all under `base_dir`), each file's engine kept while the
  file on disk is the same file. A file replaced under it (a wipe, another process deleting a
  run) is opened afresh, never written through a connection to the deleted one.
- `PooledPostgresRunStorage`, `PooledPostgresEventLogStorage`, `PooledPostgresScheduleStorage`,
  for a deployment (`deploy/dagster.yaml`): dagster-postgres's storages on a small queue pool
  whose connections are checked before reuse (`pool_pre_ping`), so a restarted server or a
  dropped connection costs a reconnect, not a failed tick. The configuration is
  dagster-postgres's (`postgres_db` or `postgres_url`, from the environment) plus three
  optional pool settings:

    pool_size              connections each storage keeps open per process (default 1)
    max_overflow           extra connections under load, closed after use (default 8)
    pool_recycle_seconds   reconnect a connection older than this (default 1800)

  Every Dagster process that loads the instance (webserver, daemon, run workers, code servers)
  holds at most `pool_size` idle connections per storage, three storages: size the server's
  `max_connections` for 3 x `pool_size` x processes, plus `max_overflow` for the busiest ones.
  The webserver replaces the engines with its own pooled ones, as with stock dagster-postgres.

Both also write a run's events with fewer round trips. A run of N partitions records 2N events
(N planned materializations when it starts, N materializations when its dbt step ends), and
Dagster writes each alone, in its own transactions (on SQLite: one in the run's file and one in
`index.db`, each a commit), unless `DAGSTER_EVENT_BATCH_SIZE` is a positive number: then it
hands the storage a run's planned events together, and the materializations it makes from one
step output (flower-dagster's dbt steps log their per-partition materializations as such a batch
too: `logged_as_one_batch` in flower_dagster/dbt/run.py). Loading either storage sets it to
`EVENT_BATCH_SIZE` in its process when it is unset (`0` turns batches off); the SQLite storage
writes a batch in one transaction per file, dagster-postgres's its materializations in one
statement. Both keep the answers to the schema questions Dagster's event log asks at every
asset event (`_KnownSchema`), and record a planned asset check's partitions with the event
serialized once, not once per partition (`_PlannedChecksSerializedOnce`).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy
import yaml
from dagster import Field, IntSource, StringSource
from dagster._config.config_schema import UserConfigSchema
from dagster._core.assets import AssetDetails
from dagster._core.definitions.events import AssetKey
from dagster._core.errors import DagsterInvariantViolationError
from dagster._core.event_api import AssetEventType
from dagster._core.events import ASSET_CHECK_EVENTS, ASSET_EVENTS, EVENT_TYPE_TO_PIPELINE_RUN_STATUS
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.config import pg_config
from dagster._core.storage.event_log.base import AssetEventSummaryRecord
from dagster._core.storage.event_log.schema import (
    AssetCheckExecutionsTable,
    AssetKeyTable,
    SqlEventLogStorageTable,
)
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SqliteEventLogStorage,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlalchemy_compat import db_result, db_select
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import (
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClass, ConfigurableClassData
from dagster._time import utc_datetime_from_naive
from dagster._utils import mkdir_p
from dagster._utils.concurrency import ConcurrencyClaimStatus
from dagster_postgres.event_log import PostgresEventLogStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
)
from dagster_shared.serdes import deserialize_value, serialize_value
from sqlalchemy.pool import NullPool, QueuePool

from flower_dagster.collector import tune_collector
from flower_dagster.errors import SettingsError
from flower_dagster.settings import REPO_ROOT

if TYPE_CHECKING:
    from dagster_postgres.auth import PgTokenProvider


EVENT_BATCH_ENV = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = 1000  # events per batch: a backfill's year of daily partitions is one


def enable_event_batches(environ: MutableMapping[str, str] | None = None) -> int:
    """Ask Dagster to hand this process's storage events in batches (see the module), unless
    `DAGSTER_EVENT_BATCH_SIZE` says otherwise; return the batch size in effect (0: off).

    Dagster reads the variable at every event and would fail on a malformed value at the first
    event of a run; it is checked here, when the instance loads, instead."""
    env = os.environ if environ is None else environ
    value = env.setdefault(EVENT_BATCH_ENV, str(EVENT_BATCH_SIZE)).strip()
    if not value.isdigit():
        raise SettingsError(
            f"{EVENT_BATCH_ENV}={value!r} is not allowed: give the number of events Dagster "
            f"hands the storage at once (flower-dagster's default is {EVENT_BATCH_SIZE}), or 0 "
            "to store every event alone"
        )
    return int(value)


@dataclass(frozen=True)
class PoolSettings:
    """How many connections a process keeps open and for how long."""

    size: int = 1
    max_overflow: int = 8
    recycle_seconds: int = 1800

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PoolSettings:
        """The pool part of a storage's configuration, defaults for what it leaves out."""
        default = cls()
        settings = cls(
            size=config.get("pool_size", default.size),
            max_overflow=config.get("max_overflow", default.max_overflow),
            recycle_seconds=config.get("pool_recycle_seconds", default.recycle_seconds),
        )
        for name, value, least in (
            ("pool_size", settings.size, 1),
            ("max_overflow", settings.max_overflow, 0),
            ("pool_recycle_seconds", settings.recycle_seconds, 1),
        ):
            if value < least:
                raise ValueError(
                    f"dagster.yaml: storage config `{name}` is {value}; it must be {least} or more"
                )
        return settings

    def engine_kwargs(self) -> dict[str, Any]:
        """SQLAlchemy engine arguments: a queue pool, each connection checked before reuse."""
        return {
            "isolation_level": "AUTOCOMMIT",
            "pool_size": self.size,
            "max_overflow": self.max_overflow,
            "pool_recycle": self.recycle_seconds,
            "pool_pre_ping": True,
        }


def pooled_config() -> UserConfigSchema:
    """dagster-postgres's storage configuration and the three pool settings."""
    default = PoolSettings()
    return {
        **pg_config(),
        "pool_size": Field(IntSource, is_required=False, default_value=default.size),
        "max_overflow": Field(IntSource, is_required=False, default_value=default.max_overflow),
        "pool_recycle_seconds": Field(
            IntSource, is_required=False, default_value=default.recycle_seconds
        ),
    }


def pooled_engine(
    postgres_url: str, token_provider: PgTokenProvider | None, pool: PoolSettings
) -> sqlalchemy.engine.Engine:
    return create_pg_engine(postgres_url, token_provider, **pool.engine_kwargs())


class _Pooled:
    """What the three storages share: dagster-postgres's constructor, then the per-query engine
    swapped for a pooled one; the pool settings in the configuration; the pool's connections
    closed when the instance is disposed."""

    _engine: sqlalchemy.engine.Engine

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
        token_provider: PgTokenProvider | None = None,
        pool: PoolSettings = PoolSettings(),
    ):
        tune_collector()
        enable_event_batches()
        # dagster-postgres's storage (the next class in the MRO) creates its tables with a
        # NullPool engine, which holds no connection afterwards.
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)  # type: ignore[call-arg]
        per_query = self._engine
        self.pool = pool
        self._engine = pooled_engine(postgres_url, token_provider, pool)
        per_query.dispose()

    @classmethod
    def config_type(cls) -> UserConfigSchema:
        return pooled_config()

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> Any:
        return cls(
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            inst_data=inst_data,
            token_provider=get_token_provider_from_config(config_value),
            pool=PoolSettings.from_config(config_value),
        )

    def dispose(self) -> None:
        super().dispose()  # type: ignore[misc]
        self._engine.dispose()


# Two event-log queries Dagster builds afresh on every call, written once with bound parameters.
# The automation tick asks for them thousands of times (the since-trigger's per-partition times:
# one summary-records call per roll-up and parent, each first reading the asset's wipe time),
# and building the SQLAlchemy statement, its cache key and a second connection cost ~4x the
# queries themselves (docs/benchmarks.md, optimisation (11)).
_DETAILS_BY_KEYS = db_select([AssetKeyTable.c.asset_key, AssetKeyTable.c.asset_details]).where(
    AssetKeyTable.c.asset_key.in_(sqlalchemy.bindparam("asset_keys", expanding=True))
)
_EVENTS = SqlEventLogStorageTable.c
_BY_IDS = (
    db_select([_EVENTS.id, _EVENTS.run_id, _EVENTS.asset_key, _EVENTS.partition, _EVENTS.timestamp])
    .where(_EVENTS.dagster_event_type == sqlalchemy.bindparam("event_type"))
    .where(_EVENTS.asset_key == sqlalchemy.bindparam("asset_key"))
    .where(_EVENTS.id.in_(sqlalchemy.bindparam("storage_ids", expanding=True)))
)
_AFTER_WIPE = _EVENTS.timestamp > sqlalchemy.bindparam("wiped_at", type_=sqlalchemy.DateTime)
# By (the asset was wiped, ascending): the four statements Dagster's method can build here.
_SUMMARIES_BY_IDS = {
    (wiped, ascending): (_BY_IDS.where(_AFTER_WIPE) if wiped else _BY_IDS).order_by(
        _EVENTS.id.asc() if ascending else _EVENTS.id.desc()
    )
    for wiped in (False, True)
    for ascending in (False, True)
}


def _details(conn: sqlalchemy.engine.Connection, keys: Sequence[str]) -> list[AssetDetails | None]:
    """The details (wipe time) of each asset key string, None where there are none."""
    rows = conn.execute(_DETAILS_BY_KEYS, {"asset_keys": list(keys)}).fetchall()
    found = {key: deserialize_value(raw, AssetDetails) if raw else None for key, raw in rows}
    return [found.get(key) for key in keys]


class _PreparedAssetQueries:
    """Dagster's `_get_assets_details` and, for one asset's events by storage id (the shape the
    automation tick uses, `limit` the number of ids; every other shape is Dagster's own),
    `get_asset_event_summary_records`: the same SQL and the same results, from statements built
    once."""

    def _get_assets_details(self, asset_keys: Sequence[AssetKey]) -> Sequence[AssetDetails | None]:
        strings = [key.to_string() for key in asset_keys]
        with self.index_connection() as conn:  # type: ignore[attr-defined]
            return _details(conn, strings)

    def get_asset_event_summary_records(
        self,
        event_type: AssetEventType,
        asset_key: AssetKey | None = None,
        run_id: str | None = None,
        storage_ids: Sequence[int] | None = None,
        after_storage_id: int | None = None,
        before_storage_id: int | None = None,
        limit: int | None = None,
        ascending: bool = False,
    ) -> Sequence[AssetEventSummaryRecord]:
        other_shape = (run_id, after_storage_id, before_storage_id) != (None, None, None)
        # A limit of at least as many rows as ids asked for (Dagster's own call) limits nothing.
        cuts_rows = bool(limit and storage_ids is not None and limit < len(storage_ids))
        if asset_key is None or storage_ids is None or other_shape or cuts_rows:
            return super().get_asset_event_summary_records(  # type: ignore[misc]
                event_type,
                asset_key,
                run_id,
                storage_ids,
                after_storage_id,
                before_storage_id,
                limit,
                ascending,
            )
        key = asset_key.to_string()
        params: dict[str, Any] = {
            "event_type": event_type.value,
            "asset_key": key,
            "storage_ids": list(storage_ids),
        }
        with self.index_connection() as conn:  # type: ignore[attr-defined]
            (details,) = _details(conn, [key])  # on the same connection as the events
            wiped_at = details.last_wipe_timestamp if details else None
            if wiped_at:
                # As Dagster's method compares: a naive UTC datetime.
                params["wiped_at"] = datetime.fromtimestamp(wiped_at, UTC).replace(tzinfo=None)
            statement = _SUMMARIES_BY_IDS[(bool(wiped_at), ascending)]
            rows = conn.execute(statement, params).fetchall()
        return [
            AssetEventSummaryRecord(
                storage_id=storage_id,
                run_id=row_run_id,
                asset_key=asset_key,
                partition=partition,
                timestamp=utc_datetime_from_naive(timestamp).timestamp(),
            )
            for storage_id, row_run_id, _, partition, timestamp in rows
        ]


class _PlannedChecksSerializedOnce:
    """Dagster's `_store_asset_check_evaluation_planned`: one `asset_check_executions` row per
    planned partition, each holding the planned event, which Dagster serializes again for every
    row (365 times for a check of a year's range, twice per run for a model with two tests).
    The rows are the same; the event is serialized once."""

    def _store_asset_check_evaluation_planned(
        self, event: EventLogEntry, event_id: int | None
    ) -> None:
        dagster_event = event.dagster_event
        assert dagster_event is not None
        planned = dagster_event.asset_check_planned_data
        partition_keys = (
            planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        )
        common = {
            "asset_key": planned.asset_key.to_string(),
            "check_name": planned.check_name,
            "run_id": event.run_id,
            "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
            "evaluation_event": serialize_value(event),
            "evaluation_event_timestamp": self._event_insert_timestamp(event),  # type: ignore[attr-defined]
            "evaluation_event_storage_id": event_id,
        }
        with self.index_connection() as conn:  # type: ignore[attr-defined]
            conn.execute(
                AssetCheckExecutionsTable.insert().values(
                    [{**common, "partition": partition_key} for partition_key in partition_keys]
                )
            )


class _KnownSchema:
    """Schema questions answered once. At every asset event Dagster's event log asks whether the
    tags table exists (`has_table`; on SQLite through a new engine and connection each time)
    and, on SQLite, twice whether an asset-key column does, each a schema query. A table or
    column, once there, stays while the process lives (migrations add them; a wiped SQLite file
    is made again with the whole schema), so a yes is kept; a no is asked again, in case a
    migration ran since."""

    def has_table(self, table_name: str) -> bool:
        present = self.__dict__.setdefault("_tables_present", set())
        if table_name not in present and super().has_table(table_name):  # type: ignore[misc]
            present.add(table_name)
        return table_name in present

    def _has_asset_key_col_on_connection(
        self, conn: sqlalchemy.engine.Connection, column_name: str
    ) -> bool:
        present = self.__dict__.setdefault("_asset_key_columns_present", set())
        if column_name not in present and super()._has_asset_key_col_on_connection(  # type: ignore[misc]
            conn, column_name
        ):
            present.add(column_name)
        return column_name in present


class PooledPostgresRunStorage(_Pooled, PostgresRunStorage):
    """dagster-postgres's run storage on a connection pool."""


class _PoolSlotsOneAtATime:
    """A pool's slots handed out one at a time, across processes.

    Dagster's claim reads which slot is free and then takes it, in statements of their own: on
    SQLite the read locks nothing, and dagster-postgres runs it in autocommit, so its `FOR
    UPDATE SKIP LOCKED` lock ends with the read. Two run workers that claim at the same moment
    both read the one free slot and both take it (measured with Dagster's own storages: 8
    double claims in 15 trials of two processes on SQLite; on PostgreSQL too), and DuckDB then
    refuses the second writer ("Could not set lock on file"). Here a claim or a release is one
    transaction that first takes a lock (`_locked_index`), and Dagster's statements inside it
    all run on that transaction's connection (`_held_index`).
    """

    def __init__(self, *args: Any, **kwargs: Any):
        self._holding = threading.local()
        super().__init__(*args, **kwargs)

    def _locked_index(self) -> AbstractContextManager[sqlalchemy.engine.Connection]:
        """A connection to the asset index in a transaction that holds the claims' lock."""
        raise NotImplementedError

    def _held_index(self) -> sqlalchemy.engine.Connection | None:
        """The connection of the claim this thread is making, if it is making one."""
        return getattr(self._holding, "conn", None)

    @contextmanager
    def _one_at_a_time(self) -> Iterator[None]:
        with self._locked_index() as conn:
            self._holding.conn = conn
            try:
                yield
            finally:
                self._holding.conn = None

    def claim_concurrency_slot(
        self, concurrency_key: str, run_id: str, step_key: str, priority: int | None = None
    ) -> ConcurrencyClaimStatus:
        with self._one_at_a_time():
            return super().claim_concurrency_slot(concurrency_key, run_id, step_key, priority)  # type: ignore[misc]

    def free_concurrency_slot_for_step(self, run_id: str, step_key: str) -> None:
        with self._one_at_a_time():
            super().free_concurrency_slot_for_step(run_id, step_key)  # type: ignore[misc]

    def free_concurrency_slots_for_run(self, run_id: str) -> None:
        with self._one_at_a_time():
            super().free_concurrency_slots_for_run(run_id)  # type: ignore[misc]


# The transaction-scoped advisory lock the pooled PostgreSQL event log takes for a pool claim
# (any 64-bit number no other client of the database locks).
POOL_CLAIM_LOCK_ID = 0x666C6F776572  # "flower"


class PooledPostgresEventLogStorage(
    _Pooled,
    _PoolSlotsOneAtATime,
    _KnownSchema,
    _PreparedAssetQueries,
    _PlannedChecksSerializedOnce,
    PostgresEventLogStorage,
):
    """dagster-postgres's event log storage on a connection pool."""

    @contextmanager
    def _connect(self) -> Iterator[sqlalchemy.engine.Connection]:
        held = self._held_index()
        if held is not None:
            yield held
            return
        with super()._connect() as conn:
            yield conn

    @contextmanager
    def _locked_index(self) -> Iterator[sqlalchemy.engine.Connection]:
        with self._connect() as conn:
            conn = conn.execution_options(isolation_level="READ COMMITTED")
            with conn.begin():
                conn.execute(
                    sqlalchemy.select(sqlalchemy.func.pg_advisory_xact_lock(POOL_CLAIM_LOCK_ID))
                )
                yield conn


class PooledPostgresScheduleStorage(_Pooled, PostgresScheduleStorage):
    """dagster-postgres's schedule storage on a connection pool."""


# --- SQLite: the embedded default -------------------------------------------------------------

# Engines a process keeps per storage: the run history, the schedules, the event log's index and
# the run files it touched last (a run worker writes one; the webserver reads a few at a time).
SQLITE_KEPT_FILES = 8
# Connections an engine keeps idle, and how many more threads may hold one at the same time.
SQLITE_POOL_SIZE = 1
SQLITE_MAX_OVERFLOW = 8


def _file_identity(path: str) -> tuple[int, int] | None:
    """The file at `path` (device and inode), or None when there is none."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


class SqliteEngines:
    """One engine per SQLite file, kept while `path` is still the file it was opened on.

    Before each use the file's device and inode are compared with those of the file the engine
    was made for: a file deleted and created again (a wipe, a deleted run, another process) gets
    a new engine, and the old one is closed. The comparison is sound because a kept connection
    keeps its file's inode in use, so a new file cannot get the same number while one is open.
    A file that does not exist yet is opened by a throwaway engine (which creates it), as
    Dagster's own storage does; only the `limit` most recently used files keep an engine.
    """

    def __init__(
        self, connect_args: Mapping[str, Any] | None = None, limit: int = SQLITE_KEPT_FILES
    ):
        self._connect_args = {**(connect_args or {}), "check_same_thread": False}
        self._limit = limit
        self._engines: OrderedDict[str, tuple[tuple[int, int], sqlalchemy.engine.Engine]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()
        _ALL_ENGINES.add(self)

    @contextmanager
    def engine(self, conn_string: str, path: str) -> Iterator[sqlalchemy.engine.Engine]:
        """The engine of `conn_string`, the SQLite file at `path`."""
        identity = _file_identity(path)
        if identity is None:
            throwaway = sqlalchemy.create_engine(
                conn_string, poolclass=NullPool, connect_args=self._connect_args
            )
            try:
                yield throwaway
            finally:
                throwaway.dispose()
            return
        yield self._kept(conn_string, identity)

    def _kept(self, conn_string: str, identity: tuple[int, int]) -> sqlalchemy.engine.Engine:
        with self._lock:
            entry = self._engines.get(conn_string)
            if entry is not None and entry[0] == identity:
                self._engines.move_to_end(conn_string)
                return entry[1]
            if entry is not None:  # the file was replaced: never write through the old one
                entry[1].dispose()
            engine = sqlalchemy.create_engine(
                conn_string,
                poolclass=QueuePool,
                pool_size=SQLITE_POOL_SIZE,
                max_overflow=SQLITE_MAX_OVERFLOW,
                connect_args=self._connect_args,
            )
            self._engines[conn_string] = (identity, engine)
            self._engines.move_to_end(conn_string)
            while len(self._engines) > self._limit:
                _, (_, oldest) = self._engines.popitem(last=False)
                oldest.dispose()
            return engine

    @property
    def kept(self) -> int:
        """How many files have an engine now."""
        return len(self._engines)

    def dispose(self) -> None:
        with self._lock:
            for _, engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def _forget_after_fork(self) -> None:
        """In a forked child: drop the parent's connections without closing them (they are
        the parent's), so the child opens its own."""
        self._lock = threading.Lock()
        for _, engine in self._engines.values():
            engine.dispose(close=False)
        self._engines.clear()


_ALL_ENGINES: weakref.WeakSet[SqliteEngines] = weakref.WeakSet()


def _forget_engines_after_fork() -> None:
    for engines in list(_ALL_ENGINES):
        engines._forget_after_fork()


os.register_at_fork(after_in_child=_forget_engines_after_fork)


class _KeptEngine:
    """What the run and schedule storages share: Dagster's storage on one file
    (`_conn_string`), its engine kept."""

    _conn_string: str

    def __init__(self, conn_string: str, inst_data: ConfigurableClassData | None = None):
        super().__init__(conn_string, inst_data)  # type: ignore[call-arg]
        self._engines = SqliteEngines()
        self._path = sqlalchemy.engine.make_url(conn_string).database or ""

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> Any:
        return cls.from_local(inst_data=inst_data, **config_value)  # type: ignore[attr-defined]

    @contextmanager
    def connect(self) -> Iterator[sqlalchemy.engine.Connection]:
        with (
            self._engines.engine(self._conn_string, self._path) as engine,
            engine.connect() as conn,
            conn.begin(),
        ):
            yield conn

    def dispose(self) -> None:
        super().dispose()  # type: ignore[misc]
        self._engines.dispose()


class PooledSqliteRunStorage(_KeptEngine, SqliteRunStorage):
    """Dagster's SQLite run storage (`runs.db`) on a kept engine."""


class PooledSqliteScheduleStorage(_KeptEngine, SqliteScheduleStorage):
    """Dagster's SQLite schedule storage (`schedules.db`: ticks, cursors) on a kept engine."""


class PooledSqliteEventLogStorage(
    _PoolSlotsOneAtATime,
    _KnownSchema,
    _PreparedAssetQueries,
    _PlannedChecksSerializedOnce,
    SqliteEventLogStorage,
):
    """Dagster's SQLite event log (one file per run, `index.db` for assets) on kept engines."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engines = SqliteEngines({"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
        super().__init__(base_dir, inst_data)
        # A pool claim holds the lock for its whole transaction; should Dagster's claim ever
        # touch a run's file inside it, the same thread may take the lock again.
        self._db_lock = threading.RLock()

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Any
    ) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[sqlalchemy.engine.Connection]:
        # As Dagster's: one connection at a time per storage, each shard's tables made on first
        # use in this process; only the engine outlives the call. During a pool claim the
        # index is the connection that holds the lock (this thread already has `_db_lock`).
        held = self._held_index()
        if shard == INDEX_SHARD_NAME and held is not None:
            yield held
            return
        with (
            self._db_lock,
            self._engines.engine(
                self.conn_string_for_shard(shard), self.path_for_shard(shard)
            ) as engine,
        ):
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    @contextmanager
    def _locked_index(self) -> Iterator[sqlalchemy.engine.Connection]:
        with self._connect(INDEX_SHARD_NAME) as conn:
            # pysqlite opens a transaction only before a write, so Dagster's reads would run
            # outside it; beginning it here takes the write lock first and makes them part of it.
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        """Dagster's `store_event` for each event, in order, with one transaction in the run's
        file and one in `index.db` for the whole batch instead of one each per event.

        Dagster's batches hold asset events (materializations, observations, planned ones) and
        planned asset checks; an event that Dagster's `store_event` also records elsewhere (an
        asset check's result or plan, a run's status change) is stored alone, in its turn.

        As with Dagster's `store_event`, the run's file is written before `index.db`. If
        `index.db` cannot be written (locked past SQLite's busy timeout), the batch fails with
        the run's file written, and Dagster stores the batch again one event at a time: the
        run's log then lists those events twice, the asset index each once."""
        together: list[EventLogEntry] = []
        for event in events:
            if _recorded_elsewhere(event):
                self._store_together(together)
                together = []
                self.store_event(event)
            else:
                together.append(event)
        self._store_together(together)

    def _store_together(self, events: Sequence[EventLogEntry]) -> None:
        # Each run's consecutive events: that run's file.
        for run_id, of_run in groupby(events, key=lambda event: event.run_id):
            statements = [(e, self.prepare_insert_event(e)) for e in of_run]
            with self.run_connection(run_id) as conn:
                for _, statement in statements:
                    conn.execute(statement)
            indexed = [
                (e, statement)
                for e, statement in statements
                if e.is_dagster_event and e.dagster_event_type in ASSET_EVENTS
            ]
            if indexed:
                with self.index_transaction() as conn:
                    for event, statement in indexed:
                        with db_result(conn, statement) as result:
                            event_id = result.inserted_primary_key[0]
                        if event_id is None:
                            raise DagsterInvariantViolationError(
                                "Cannot store asset event tags for null event id."
                            )
                        self._store_asset_event_tags(conn, [event], [event_id])
                        self._store_asset_event(conn, event, event_id)

    def dispose(self) -> None:
        super().dispose()
        self._engines.dispose()


def _recorded_elsewhere(event: EventLogEntry) -> bool:
    """Whether Dagster's SQLite `store_event` writes `event` somewhere besides the run's file
    and the asset index (asset check records, the run status mirror in `index.db`)."""
    return event.is_dagster_event and (
        event.dagster_event_type in ASSET_CHECK_EVENTS
        or event.dagster_event_type in EVENT_TYPE_TO_PIPELINE_RUN_STATUS
    )


class PooledSqliteStorage(DagsterStorage, ConfigurableClass):
    """Dagster's SQLite storage (the files of `storage: sqlite`, under `base_dir`) with its
    engines kept: name it in dagster.yaml as `storage: custom:` with `base_dir` the instance's
    folder (`{env: DAGSTER_HOME}`). An instance made with Dagster's default storage in the same
    folder keeps its runs, events and schedules."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        tune_collector()
        enable_event_batches()
        self.base_dir = os.path.abspath(base_dir)
        mkdir_p(self.base_dir)
        self._run_storage = PooledSqliteRunStorage.from_local(_runs_directory(self.base_dir))
        self._event_log_storage = PooledSqliteEventLogStorage(_event_logs_directory(self.base_dir))
        self._schedule_storage = PooledSqliteScheduleStorage.from_local(
            _schedule_directory(self.base_dir)
        )
        self._inst_data = inst_data
        super().__init__()

    @property
    def inst_data(self) -> ConfigurableClassData | None:
        return self._inst_data

    @classmethod
    def config_type(cls) -> UserConfigSchema:
        return {"base_dir": StringSource}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Any
    ) -> PooledSqliteStorage:
        return cls(config_value["base_dir"], inst_data=inst_data)

    def register_instance(self, instance: Any) -> None:
        super().register_instance(instance)
        for storage in (self._run_storage, self._event_log_storage, self._schedule_storage):
            if not storage.has_instance:
                storage.register_instance(instance)

    @property
    def event_log_storage(self) -> PooledSqliteEventLogStorage:
        return self._event_log_storage

    @property
    def run_storage(self) -> PooledSqliteRunStorage:
        return self._run_storage

    @property
    def schedule_storage(self) -> PooledSqliteScheduleStorage:
        return self._schedule_storage

    def dispose(self) -> None:
        self._event_log_storage.dispose()
        self._run_storage.dispose()
        self._schedule_storage.dispose()


# make dev's instance file: the embedded default's storage and run pools.
DEV_INSTANCE_FILE = REPO_ROOT / "dagster_home" / "dagster.yaml"


def write_instance_yaml(template: Path, home: Path) -> Path:
    """`template` as the dagster.yaml of the instance folder `home`, returned.

    `dagster_home/dagster.yaml` reads its storage folder from DAGSTER_HOME, which `make dev`
    and every process Dagster starts have set. A copy for another folder (a test's instance,
    the demo's) gets that folder written in instead, so a process that opens it without
    DAGSTER_HOME set, or set to another folder, reads and writes the same files. Any other
    file is copied as it is."""
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    config = yaml.safe_load(template.read_text()) or {}
    custom = (config.get("storage") or {}).get("custom") or {}
    storage_config = custom.get("config") or {}
    if custom.get("class") == PooledSqliteStorage.__name__ and storage_config.get("base_dir") == {
        "env": "DAGSTER_HOME"
    }:
        storage_config["base_dir"] = str(home)
        target.write_text(yaml.safe_dump(config, sort_keys=False))
    else:
        target.write_text(template.read_text())
    return target
