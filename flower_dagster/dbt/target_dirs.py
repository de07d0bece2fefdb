"""dbt's per-invocation target folders: bounded on disk, with a partial parse per environment.

dagster-dbt gives every dbt invocation a folder `target/<op>-<run id[:7]>-<uuid>/` (so that
concurrent steps do not share artifacts) and never removes it: about 2.5 MB each, mostly the
manifest, the partial-parse file and the compiled SQL. flower-dagster keeps what is read after
a step, `run_results.json` (the alerts name failed tests from it) and `dbt.log` (dbt's own
errors when it stopped before writing results), and removes the rest when the step ends. Of
those slim folders it keeps the newest `FLOWER_DBT_TARGET_KEEP` (default 50); older ones are
removed, unless dbt may still be writing to them (no run_results.json yet, written to within
the hour: a long step of another run).

dbt re-parses the whole project when its partial-parse file was written under another profile
(another target, another DuckDB file). dagster-dbt seeds every invocation with the project's one
`target/partial_parse.msgpack`, which whichever environment parsed last wrote. flower-dagster
keeps one per environment, `target/partial_parse/<profile>-<target>-<hash>.msgpack`, seeds the
invocation with its environment's and stores it back after.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Mapping
from pathlib import Path

from dagster_dbt import DbtCliResource

from flower_dagster.dbt.profile import resolve_target
from flower_dagster.errors import FlowerError

KEEP_ENV = "FLOWER_DBT_TARGET_KEEP"
DEFAULT_KEEP = 50
PARTIAL_PARSE = "partial_parse.msgpack"
PARTIAL_PARSE_DIR = "partial_parse"
# What is read after a step: by failure_text and the alerts (run_results.json, dbt.log).
KEPT_FILES = frozenset({"run_results.json", "dbt.log"})
# A folder whose dbt.log changed this recently may belong to a running step: never removed.
BUSY_SECONDS = 3600.0


def invocation_dir(project_dir: Path, op_name: str, run_id: str) -> Path:
    """A new folder for one dbt invocation, named as dagster-dbt names it (the alerts find a
    run's folders by `*-<run id[:7]>-*`)."""
    return target_root(project_dir) / f"{op_name}-{run_id[:7]}-{str(uuid.uuid4())[:7]}"


def prepare_invocation(dbt: DbtCliResource, op_name: str, run_id: str) -> tuple[Path, str]:
    """The target folder for one step's dbt invocation, seeded with the partial parse of the
    resource's environment, and that environment's key."""
    project_dir = Path(dbt.project_dir)
    key = environment_key(
        project_dir, Path(dbt.profiles_dir) if dbt.profiles_dir else None, dbt.target
    )
    folder = invocation_dir(project_dir, op_name, run_id)
    seed_partial_parse(project_dir, key, folder)
    return folder, key


def target_root(project_dir: Path) -> Path:
    return Path(project_dir) / "target"


def environment_key(
    project_dir: Path,
    profiles_dir: Path | None,
    target: str | None,
    environ: Mapping[str, str] | None = None,
) -> str:
    """The profile, target and where it writes: what dbt's partial parse depends on here."""
    try:
        info = resolve_target(Path(project_dir), profiles_dir, target, environ)
    except FlowerError:
        return _safe(target or "default")
    where = "|".join(
        str(value)
        for value in (info.type, info.path, info.host, info.schema, info.database, info.method)
    )
    digest = hashlib.sha1(where.encode()).hexdigest()[:10]
    return _safe(f"{info.profile}-{info.name}-{digest}")


def stored_partial_parse(project_dir: Path, key: str) -> Path:
    return target_root(project_dir) / PARTIAL_PARSE_DIR / f"{key}.msgpack"


def seed_partial_parse(project_dir: Path, key: str, invocation: Path) -> None:
    """Put the environment's partial-parse file into the invocation's folder before dbt runs.

    Without one for this environment yet, dagster-dbt's default applies (the project's)."""
    stored = stored_partial_parse(project_dir, key)
    if stored.is_file():
        invocation.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(stored, invocation / PARTIAL_PARSE)


def store_partial_parse(project_dir: Path, key: str, folder: Path) -> None:
    """Keep the partial-parse file dbt left in `folder` as the environment's (atomically, so a
    concurrent step reads the old file or the new one)."""
    written = folder / PARTIAL_PARSE
    if not written.is_file():
        return
    stored = stored_partial_parse(project_dir, key)
    stored.parent.mkdir(parents=True, exist_ok=True)
    partial = stored.with_name(f".{stored.name}.{uuid.uuid4().hex[:8]}")
    shutil.copyfile(written, partial)
    os.replace(partial, stored)


def finish_invocation(project_dir: Path, key: str, invocation: Path) -> None:
    """After a step: store its partial parse, slim its folder, prune old folders."""
    if not invocation.is_dir():
        return
    store_partial_parse(project_dir, key, invocation)
    slim(invocation)
    prune(target_root(project_dir), keep=keep_count())


def slim(folder: Path) -> None:
    """Remove everything from an invocation folder but what is read after the step."""
    for item in folder.iterdir():
        if item.name in KEPT_FILES:
            continue
        if item.is_dir() and not item.is_symlink():
            shutil.rmtree(item, ignore_errors=True)
        else:
            item.unlink(missing_ok=True)


def prune(root: Path, keep: int, now: float | None = None) -> list[Path]:
    """Remove the invocation folders beyond the newest `keep`; return the removed ones."""
    now = time.time() if now is None else now
    folders = sorted(invocation_folders(root), key=_last_write, reverse=True)
    removed = []
    for folder in folders[keep:]:
        running = not (folder / "run_results.json").is_file()
        if running and now - _last_write(folder) < BUSY_SECONDS:
            continue  # dbt may still be writing to it
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def keep_count(environ: Mapping[str, str] | None = None) -> int:
    """FLOWER_DBT_TARGET_KEEP: how many invocation folders to keep (at least 1)."""
    env = os.environ if environ is None else environ
    raw = env.get(KEEP_ENV, "").strip()
    if not raw:
        return DEFAULT_KEEP
    try:
        value = int(raw)
    except ValueError:
        raise FlowerError(f"{KEEP_ENV} is {raw!r}; expected a whole number >= 1") from None
    if value < 1:
        raise FlowerError(f"{KEEP_ENV} is {value}; expected a whole number >= 1")
    return value


def invocation_folders(root: Path) -> list[Path]:
    """The per-invocation folders under a project's target folder (not partial_parse/)."""
    if not root.is_dir():
        return []
    return [p for p in root.iterdir() if p.is_dir() and _is_invocation(p)]


def _is_invocation(folder: Path) -> bool:
    """dagster-dbt's `<op>-<run id[:7]>-<uuid[:7]>` folders, not dbt's own (compiled, run)."""
    parts = folder.name.rsplit("-", 2)
    return len(parts) == 3 and all(len(part) == 7 for part in parts[1:])


def _last_write(folder: Path) -> float:
    log = folder / "dbt.log"
    return max(folder.stat().st_mtime, log.stat().st_mtime if log.is_file() else 0.0)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
