"""Starting dbt for a step: a fork of the run's process when that is safe, else a new process.

dagster-dbt runs every dbt command as a new process (`dbt build ...`), which starts Python and
imports dbt-core before doing anything: about 1.8 s on the machine of docs/benchmarks.md. The
process that starts it, the run worker, has already imported most of dbt-core, because
dagster-dbt does at import. A child made with `os.fork()` inherits those modules and runs dbt's
own command-line entry point (`dbt.cli.main:cli`, what the `dbt` script runs) with the same
arguments, environment and working folder, its output on a pipe that dagster-dbt reads exactly
as it reads a subprocess's. dbt still runs in a process of its own: a failed or killed dbt does
not take the run worker with it, a step's interruption reaches dbt as SIGINT, and the warehouse
lock goes with dbt's exit. A 365-day backfill's run took about 2 s less (docs/benchmarks.md,
optimisation (16)).

A fork copies the parent's whole state, so flower-dagster forks only when nothing in that
state can trouble the child, and otherwise starts dbt the usual way:

- the platform is Linux (macOS's system libraries are not safe to use after a fork);
- the dbt to run is the one beside this Python (another dbt is another installation);
- no other thread runs in the process, but for the two every run worker launched by the
  daemon has (`HARMLESS_THREADS`): a fork copies only the calling thread, and a lock another
  thread held at that moment would stay locked forever in the child (a run worker runs its
  steps in its main thread; pytest, the webserver or a sensor may run others);
- DuckDB is not loaded in the process: DuckDB's databases are shared within a process and are
  not safe to use across a fork, and dbt-duckdb would open the same file.

In the child, before dbt runs: signal handlers the parent installed (Dagster's interrupt
handling) are put back to Python's defaults, the inherited heap is frozen so that the
collector never walks or frees it, stdout and stderr go to the pipe, and logging handlers
inherited from the parent are dropped. Other inherited file descriptors stay open, as in any
fork (Python objects of the parent's, such as multiprocessing's resource tracker, refer to
them); the child touches none of them. The child never returns into the parent's code: it
leaves with `os._exit` after flushing its output and running the multiprocessing finalizers
dbt registered, so no exit handler or finalizer of the parent's runs in it.

`FLOWER_DBT_START` chooses, in the environment of the Dagster processes:

    (unset), fork    a fork when it is safe (above), else a new process
    exec             always a new process, as dagster-dbt does
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, NoReturn

from flower_dagster.errors import SettingsError

ENV_VAR = "FLOWER_DBT_START"
FORK = "fork"
EXEC = "exec"
CHOICES = (FORK, EXEC)


# Threads a run worker launched by Dagster's daemon always has, which a fork leaves alone: each
# waits in a system call holding no library lock, and the child never touches their objects.
# `termination-handler` is Dagster's watcher of a stop request (a multiprocessing Event);
# `QueueFeederThread` is multiprocessing's writer of the queue that carries the run's events to
# the code server. Any other thread, whose locks nobody can vouch for, means a new process.
HARMLESS_THREADS = frozenset({"termination-handler", "QueueFeederThread"})


def start_choice(environ: Mapping[str, str] | None = None) -> str:
    """What `FLOWER_DBT_START` asks for: `fork` (the default) or `exec`."""
    value = (os.environ if environ is None else environ).get(ENV_VAR)
    if value is None or not value.strip():
        return FORK
    choice = value.strip().lower()
    if choice not in CHOICES:
        raise SettingsError(
            f"{ENV_VAR}={value!r} is not allowed: '{FORK}' (the default: start dbt as a fork "
            f"of the run's process when that is safe) or '{EXEC}' (always a new process)"
        )
    return choice


def is_local_dbt(executable: str) -> bool:
    """Whether `executable` is the dbt installed beside this Python (this environment's)."""
    return Path(executable) == Path(sys.executable).with_name("dbt")


def fork_blocker(executable: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Why dbt cannot be started as a fork of this process now, or None when it can."""
    if start_choice(environ) == EXEC:
        return f"{ENV_VAR}={EXEC}"
    if not sys.platform.startswith("linux"):
        return f"the platform is {sys.platform}, not Linux"
    if not is_local_dbt(executable):
        return f"{executable} is not the dbt beside this Python"
    others = sorted(
        t.name
        for t in threading.enumerate()
        if t is not threading.current_thread() and t.name not in HARMLESS_THREADS
    )
    if others:
        return f"other threads run in this process: {', '.join(others)}"
    if "duckdb" in sys.modules:
        return "DuckDB is loaded in this process"
    return None


class ForkedDbt:
    """A dbt command running in a fork of this process, with the part of `subprocess.Popen`'s
    interface dagster-dbt's `DbtCliInvocation` uses: `args`, `pid`, `stdout` (bytes, dbt's
    stdout and stderr together), `poll`, `wait`, `send_signal`, `terminate`, `kill` and
    `returncode` (negative: the signal that ended it)."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], cwd: str | Path) -> None:
        self.args = list(args)
        self.returncode: int | None = None
        read_end, write_end = os.pipe()
        # What this process has written but not flushed would otherwise be copied into the
        # child, and reach dbt's output when the child flushes it (multiprocessing does the same).
        _flush(sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
        try:
            pid = os.fork()
        except OSError:  # no memory or process slot for a child: the caller starts dbt anew
            os.close(read_end)
            os.close(write_end)
            raise
        if pid == 0:  # the child: never returns
            os.close(read_end)
            _run_dbt(self.args, dict(env), str(cwd), write_end)
        os.close(write_end)
        self.pid = pid
        self.stdout: IO[bytes] = open(read_end, "rb")  # noqa: SIM115 - dagster-dbt closes it

    def poll(self) -> int | None:
        if self.returncode is None:
            self._reap(os.WNOHANG)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if timeout is None:
            while self.returncode is None:
                self._reap(0)
            return self.returncode
        deadline = time.monotonic() + timeout
        delay = 0.005
        while self.poll() is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout)
            time.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.05)
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _reap(self, options: int) -> None:
        try:
            pid, status = os.waitpid(self.pid, options)
        except ChildProcessError:
            self.returncode = 0 if self.returncode is None else self.returncode  # as Popen does
            return
        if pid == self.pid:
            self.returncode = os.waitstatus_to_exitcode(status)


def _run_dbt(args: list[str], env: dict[str, str], cwd: str, pipe: int) -> NoReturn:
    """The forked child: become a fresh `dbt` process as far as dbt can tell, run it, exit."""
    code = 1
    try:
        _reset_signals()
        gc.freeze()  # the parent's heap: never collected, never copied for the collector
        os.dup2(pipe, 1)
        os.dup2(pipe, 2)
        os.close(pipe)
        os.chdir(cwd)
        os.environ.clear()
        os.environ.update(env)
        sys.stdout = _text_stream(1)
        sys.stderr = _text_stream(2)
        # Objects made before the fork may still hold the interpreter's own streams (now on the
        # pipe too): each line of theirs goes out as written, as dagster-dbt's PYTHONUNBUFFERED
        # makes a new dbt's do, instead of waiting in a buffer that fills at 8 KB.
        for stream in (sys.__stdout__, sys.__stderr__):
            with contextlib.suppress(Exception):
                stream.reconfigure(line_buffering=True, write_through=True)  # type: ignore[union-attr]
        sys.argv = list(args)
        _drop_log_handlers()
        from dbt.cli.main import cli

        cli()  # dbt's entry point; it ends with SystemExit
        code = 0
    except SystemExit as done:
        if isinstance(done.code, int):
            code = done.code
        elif done.code is None:
            code = 0
        else:
            print(done.code, file=sys.stderr)
            code = 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        _finalize_child()
        os._exit(code)


def _reset_signals() -> None:
    """Python's own handlers where the parent installed its own (Dagster's interrupt capture)."""
    for sig in signal.valid_signals():
        try:
            handler = signal.getsignal(sig)
        except (ValueError, OSError):
            continue
        if sig == signal.SIGINT:
            if handler is not signal.default_int_handler:
                signal.signal(sig, signal.default_int_handler)
        elif callable(handler):
            signal.signal(sig, signal.SIG_DFL)


def _finalize_child() -> None:
    """What a normal exit of dbt's process would still do that matters: flush its output, and
    run the multiprocessing finalizers dbt registered in this process (they release the named
    semaphores of its adapter's locks; left over, Python's resource tracker warns about them).
    Finalizers the parent registered are skipped by multiprocessing itself (they record their
    process id)."""
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is not None:
        with contextlib.suppress(Exception):
            mp_util._run_finalizers(0)
            mp_util._run_finalizers()
    _flush(sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)


def _flush(*streams: IO[str] | None) -> None:
    for stream in streams:
        with contextlib.suppress(Exception):
            stream.flush()  # type: ignore[union-attr]


def _text_stream(fd: int) -> io.TextIOWrapper:
    return io.TextIOWrapper(
        io.FileIO(fd, "w", closefd=False),
        encoding="utf-8",
        errors="backslashreplace",
        line_buffering=True,
        write_through=True,
    )


def _drop_log_handlers() -> None:
    """The parent's logging handlers write to its own files, streams and event log."""
    logging.root.handlers.clear()
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            logger.handlers.clear()
