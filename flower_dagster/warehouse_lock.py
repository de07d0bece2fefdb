"""One writer at a time on a DuckDB file, across processes: an OS file lock beside it.

Upstream problem: DuckDB allows one writing process per file, and Dagster's pool (`warehouse`,
one slot) is what should make dbt steps take turns; but Dagster's SQLite storage (make dev's
instance) reads the free slot and takes it in separate statements, so two run workers claiming
at the same instant can both get it, and the second dbt then fails with "Could not set lock on
file". The pool stays (it is what shows queued runs in the UI); the guarantee is this lock,
which depends on no storage: every process that writes the DuckDB file (a dbt step, the demo
data loader) holds `fcntl.flock` on `<file>.lock` while it does, waiting for it if it must.
The kernel releases the lock when the holder exits, however it exits.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def lock_path_of(duckdb_path: str | Path) -> Path:
    """The lock file of a DuckDB file: `<warehouse>.duckdb.lock`, next to it."""
    path = Path(duckdb_path)
    return path.with_name(path.name + ".lock")


@contextmanager
def warehouse_lock(
    duckdb_path: str | Path, log: Callable[[str], None] = lambda message: None
) -> Iterator[None]:
    """Hold the lock of `duckdb_path` for the block; `log` hears when it waits, takes and
    releases it (a step's log then shows which step wrote when)."""
    lock = lock_path_of(duckdb_path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"waiting for the warehouse lock {lock}: another process writes {duckdb_path}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        log(f"holding the warehouse lock {lock}")
        try:
            yield
        finally:
            # Said before the unlock: said after, it could come later than the next holder's
            # "holding", and a step's log would show two writers at once.
            log(f"releasing the warehouse lock {lock}")
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
