"""A concurrency pool's slots handed out one at a time, across processes, on PostgreSQL.

Upstream problem: Dagster's `claim_concurrency_slot` reads which slot is free and then takes it
in statements of their own, and dagster-postgres runs them in autocommit, so its `FOR UPDATE
SKIP LOCKED` lock ends with the read. Two run workers that claim at the same moment both read
the one free slot and both take it, and DuckDB then refuses the second writer ("Could not set
lock on file"). Here a claim or a release is one transaction that first takes a PostgreSQL
advisory transaction lock, and Dagster's statements inside it all run on that transaction's
connection.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy

from flower_dagster._compat import ConcurrencyClaimStatus

# The transaction-scoped advisory lock a pool claim takes (any 64-bit number no other client of
# the database locks).
POOL_CLAIM_LOCK_ID = 0x666C6F776572  # "flower"


class PoolSlotsOneAtATime:
    """Mixed in before dagster-postgres's event log storage: a claim or release runs inside
    `_locked_index`, and `_connect` hands Dagster's statements that transaction's connection
    while this thread is making one (`_held_index`)."""

    def __init__(self, *args: Any, **kwargs: Any):
        self._holding = threading.local()
        super().__init__(*args, **kwargs)

    @contextmanager
    def _connect(self) -> Iterator[sqlalchemy.engine.Connection]:
        held = self._held_index()
        if held is not None:
            yield held
            return
        with super()._connect() as conn:  # type: ignore[misc]
            yield conn

    @contextmanager
    def _locked_index(self) -> Iterator[sqlalchemy.engine.Connection]:
        """A connection in a transaction that holds the claims' advisory lock."""
        with super()._connect() as conn:  # type: ignore[misc]
            conn = conn.execution_options(isolation_level="READ COMMITTED")
            with conn.begin():
                conn.execute(
                    sqlalchemy.select(sqlalchemy.func.pg_advisory_xact_lock(POOL_CLAIM_LOCK_ID))
                )
                yield conn

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
