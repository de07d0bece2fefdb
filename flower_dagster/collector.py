"""CPython's cyclic garbage collector, tuned for Dagster's long-lived processes.

An automation tick makes and drops hundreds of thousands of small objects (a context per
condition node and partition subset, the cursor read and written as JSON), while the process
keeps a large heap for its whole life (the asset graph, the last cursor, imported modules). With
CPython's default thresholds (700, 10, 10) one tick after a day of updates at 1,000 models runs
about 1,200 collections, and the full ones walk the whole long-lived heap each time: 2.4-3.1 s
of a 10-13 s tick measured here, about a quarter (docs/benchmarks.md, optimisation (10)).

flower-dagster's instance storages (`flower_dagster.storage`, named by make dev's and the
deployment's dagster.yaml) call `tune_collector()` when a process loads the instance: the
daemon, the webserver, run workers, the CLI. The code location (`flower_dagster.definitions`)
calls it before building the definitions (a code server, a run worker). Young objects are then
collected after 10,000 net allocations instead of 700 and the old ones walked a tenth as often;
nothing is turned off, so cyclic garbage is still freed, only in larger batches.

At exit, the same processes skip CPython's last collection: `tune_collector()` registers
`gc.freeze()` with `atexit`, so the final collection that the interpreter's shutdown runs over
the whole heap finds nothing to walk. That collection took about 0.9 s at the end of every
`dagster asset materialize` of a 365-day backfill (docs/benchmarks.md, optimisation (15)), after
the run had finished. The memory goes back to the system with the process either way; what the
last collection would have done besides is run the finalizers of objects caught in reference
cycles, and nothing of Dagster's or flower-dagster's relies on them: logs are flushed, temporary
folders removed and files closed by `atexit` handlers and context managers, and SQLite and
PostgreSQL keep every committed transaction whether or not a connection is closed.

`FLOWER_GC_THRESHOLDS` chooses, in the environment of those processes:

    (unset)          10000,10,100, flower-dagster's default
    10000,10,100     any three positive integers, as `gc.set_threshold` takes them
    python           leave CPython's own thresholds (or the ones the process already set)
                     and its last collection at exit
"""

from __future__ import annotations

import atexit
import gc
import os
from collections.abc import Mapping
from functools import cache

from flower_dagster.errors import SettingsError

ENV_VAR = "FLOWER_GC_THRESHOLDS"
DEFAULT_THRESHOLDS = (10_000, 10, 100)
KEEP_PYTHONS = "python"

Thresholds = tuple[int, int, int]


def parse_thresholds(value: str | None) -> Thresholds | None:
    """The thresholds `value` asks for: the default when unset or empty, None for `python`
    (keep what the process has)."""
    if value is None or not value.strip():
        return DEFAULT_THRESHOLDS
    text = value.strip()
    if text.lower() == KEEP_PYTHONS:
        return None
    parts = [p.strip() for p in text.split(",")]
    if len(parts) == 3 and all(p.isdigit() and int(p) > 0 for p in parts):
        return int(parts[0]), int(parts[1]), int(parts[2])
    default = ",".join(str(t) for t in DEFAULT_THRESHOLDS)
    raise SettingsError(
        f"{ENV_VAR}={value!r} is not allowed: give three positive integers separated by commas "
        f"(the default is {default}), or '{KEEP_PYTHONS}' to keep CPython's own thresholds"
    )


def tune_collector(environ: Mapping[str, str] | None = None) -> Thresholds:
    """Set this process's collector thresholds from `FLOWER_GC_THRESHOLDS` (see the module) and
    return the thresholds in effect. Calling it again sets the same values."""
    wanted = parse_thresholds((os.environ if environ is None else environ).get(ENV_VAR))
    if wanted is not None:
        gc.set_threshold(*wanted)
        _freeze_at_exit()
    first, second, third = gc.get_threshold()
    return first, second, third


@cache
def _freeze_at_exit() -> None:
    """Have the interpreter's shutdown skip its last full collection (see the module), once."""
    atexit.register(gc.freeze)
