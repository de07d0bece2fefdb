"""`flower-dbt`: dbt that dies with the run worker that started it (dagster-dbt's dbt executable).

A run worker killed with `kill -9` (or the OOM killer) cannot stop its children: its dbt went on,
wrote and committed rows while Dagster recorded the partition as failed, and, with the run
worker's warehouse lock released by the kernel, alongside the next writer. On Linux this
program asks the kernel to SIGKILL it when its parent dies (`PR_SET_PDEATHSIG`, kept across
`exec`), then replaces itself with dbt: same pid, so dagster-dbt's own stop (SIGINT on a
terminated run, which lets dbt cancel its queries) reaches dbt directly. SIGKILL, not SIGINT,
for a dead parent: nobody is left to wait for a graceful stop, and DuckDB drops the transaction
dbt had not committed.

The kernel sends the signal when the *thread* that started dbt ends; dagster-dbt starts dbt in
the step's thread, which reads dbt's output until it exits. Elsewhere than Linux, dbt runs as is.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import NoReturn

from flower_dagster.dbt.project import dbt_executable
from flower_dagster.errors import DbtParseError

# The console script of `main` (pyproject.toml).
GUARD_SCRIPT = "flower-dbt"

# prctl(2) option: the signal this process gets when its parent thread exits (<linux/prctl.h>).
PR_SET_PDEATHSIG = 1


def die_with_parent(signum: int = signal.SIGKILL) -> bool:
    """Ask Linux to send `signum` to this process when its parent dies; False where it cannot."""
    if not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signum, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    return True


def guarded_dbt_executable() -> str:
    """`flower-dbt` next to this Python (the project's venv), else the one on PATH."""
    beside = Path(sys.executable).with_name(GUARD_SCRIPT)
    if beside.is_file():
        return str(beside)
    found = shutil.which(GUARD_SCRIPT)
    if found is None:
        raise DbtParseError(
            f"{GUARD_SCRIPT} is not installed: run `make setup` or `pip install -e .` "
            "(flower-dagster's entry points)"
        )
    return found


def main() -> NoReturn:
    parent = os.getppid()
    if die_with_parent() and os.getppid() != parent:
        # The parent died before the request took effect: nobody is waiting for this dbt.
        sys.exit(1)
    dbt = dbt_executable()
    os.execv(dbt, [dbt, *sys.argv[1:]])


if __name__ == "__main__":
    main()
