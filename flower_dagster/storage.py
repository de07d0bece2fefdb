"""dagster-postgres's storages on a connection pool, and make dev's instance file.

Upstream problem: dagster-postgres's storages open a new connection (with its password
handshake) for every query outside the webserver: their SQLAlchemy engines use `NullPool`, so
that many short-lived processes do not each hold connections. The daemon is not short-lived: one
evaluation of the repair rule over a large project runs thousands of queries. The classes here
are dagster-postgres's storages with one change, a small queue pool whose connections are checked
before reuse (`pool_pre_ping`), so a restarted server or a dropped connection costs a reconnect,
not a failed tick. `deploy/dagster.yaml` names them. The configuration is dagster-postgres's
(`postgres_db` or `postgres_url`) plus three optional pool settings:

    pool_size              connections each storage keeps open per process (default 1)
    max_overflow           extra connections under load, closed after use (default 8)
    pool_recycle_seconds   reconnect a connection older than this (default 1800)

Every Dagster process that loads the instance (webserver, daemon, run workers, code servers)
holds at most `pool_size` idle connections per storage, three storages: size the server's
`max_connections` for 3 x `pool_size` x processes, plus `max_overflow` for the busiest ones.
The webserver replaces the engines with its own pooled ones, as with stock dagster-postgres.

The event log also hands out pool slots one at a time (`flower_dagster/slot_claims.py`).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy
from dagster import Field, IntSource
from dagster_postgres import (
    PostgresEventLogStorage,
    PostgresRunStorage,
    PostgresScheduleStorage,
)

from flower_dagster._compat import (
    ConfigurableClassData,
    UserConfigSchema,
    create_pg_engine,
    get_token_provider_from_config,
    pg_config,
    pg_url_from_config,
)
from flower_dagster.settings import REPO_ROOT
from flower_dagster.slot_claims import PoolSlotsOneAtATime

if TYPE_CHECKING:
    from dagster_postgres.auth import PgTokenProvider


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
        # dagster-postgres's storage (next in the MRO) creates its tables with a NullPool
        # engine, which holds no connection afterwards.
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)  # type: ignore[call-arg]
        per_query = self._engine
        self.pool = pool
        self._engine = create_pg_engine(postgres_url, token_provider, **pool.engine_kwargs())
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


class PooledPostgresRunStorage(_Pooled, PostgresRunStorage):
    """dagster-postgres's run storage on a connection pool."""


class PooledPostgresEventLogStorage(_Pooled, PoolSlotsOneAtATime, PostgresEventLogStorage):
    """dagster-postgres's event log storage on a connection pool, pool slots claimed one at a
    time."""


class PooledPostgresScheduleStorage(_Pooled, PostgresScheduleStorage):
    """dagster-postgres's schedule storage on a connection pool."""


# make dev's instance file: Dagster's SQLite storage under DAGSTER_HOME, and the run pools.
DEV_INSTANCE_FILE = REPO_ROOT / "dagster_home" / "dagster.yaml"


def write_instance_yaml(template: Path, home: Path) -> Path:
    """`template` as the dagster.yaml of the instance folder `home` (a test's, the demo's),
    returned."""
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    shutil.copyfile(template, target)
    return target
