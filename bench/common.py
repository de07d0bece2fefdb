"""Shared machinery of the benchmarks: progress lines, medians, child processes with their peak
memory, generated projects parsed once and reused, and the settings file that points
flower-dagster at a generated project.

Every measurement runs in a fresh child process (a clean interpreter, its own peak memory), one
after another: on a 2-core machine two measurements at once would time each other.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = REPO_ROOT / "bench" / "out"
# Generated projects and their manifests live outside the repository (hundreds of MB at 3,000).
DEFAULT_WORK_DIR = Path(os.environ.get("FLOWER_BENCH_WORK", "/tmp/flower-bench"))
# The "three years of daily partitions": every grain starts this long before today.
HISTORY_DAYS = 3 * 365

_T0 = time.perf_counter()


def progress(message: str) -> None:
    """One line per step, with the seconds since the bench started."""
    print(f"[{time.perf_counter() - _T0:7.1f}s] {message}", flush=True)


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


def summary(values: Sequence[float], digits: int = 3) -> dict[str, Any]:
    """The median of repeated runs, with every run kept for the record."""
    return {"median": round(median(values), digits), "runs": [round(v, digits) for v in values]}


def ratio(numerator: float, denominator: float) -> float | None:
    return round(numerator / denominator, 3) if denominator else None


def partition_start(today: date | None = None) -> date:
    """The first partition of every grain: three years before today."""
    return (today or date.today()) - timedelta(days=HISTORY_DAYS)


def bin_path(name: str) -> str:
    """An executable of this venv (dbt, dagster, flower), else the name on PATH."""
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.is_file() else name


def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def reference_seconds(runs: int = 3) -> float:
    """The machine's speed now: the best of `runs` timings of a fixed pure-Python workload
    (formatting, sorting and hashing about 300,000 strings, like much of Dagster's own work).
    The load average misses a virtual machine whose host is busy; this does not, so a document
    says how fast the machine was while its figures were taken."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        words = sorted(f"{i * 7919 % 1_000_003:x}" for i in range(300_000))
        counts: dict[int, int] = {}
        for word in words:
            key = hash(word) & 1023
            counts[key] = counts.get(key, 0) + 1
        best = min(best, time.perf_counter() - started)
    return round(best, 3)


def machine() -> dict[str, Any]:
    from importlib.metadata import version

    return {
        "cpus": os.cpu_count(),
        "load_average": load_average(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "dagster": version("dagster"),
        "dagster_dbt": version("dagster-dbt"),
        "dbt_core": version("dbt-core"),
        "dbt_duckdb": version("dbt-duckdb"),
    }


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a child: ours without FLOWER_*/DAGSTER_*/DBT_* settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWER_", "DAGSTER_", "DBT_"))}
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env["PYTHONUNBUFFERED"] = "1"
    # FLOWER_BENCH_CODE: a copy of the package to measure instead of this tree's (before/after).
    other_code = os.environ.get("FLOWER_BENCH_CODE")
    env["PYTHONPATH"] = os.pathsep.join(
        [
            *([other_code] if other_code else []),
            str(REPO_ROOT),
            *([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []),
        ]
    )
    if other_code:
        # `python -m bench.x` puts its working folder (the repository) first on sys.path, ahead
        # of PYTHONPATH: without this the copy would never be imported.
        env["PYTHONSAFEPATH"] = "1"
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class ChildResult:
    seconds: float  # wall time from spawn to exit
    cpu_seconds: float  # user + system time of the child and its reaped children
    peak_rss_mb: float  # the child's peak resident memory (with its own children)
    returncode: int
    stdout: str
    stderr: str

    def json_line(self) -> dict[str, Any]:
        """The last stdout line that is a JSON object: what a bench child reports."""
        for line in reversed(self.stdout.splitlines()):
            if line.startswith("{"):
                return json.loads(line)
        raise ValueError(f"no JSON line in the child's output:\n{self.tail()}")

    def tail(self, lines: int = 30) -> str:
        out = "\n".join(self.stdout.splitlines()[-lines:])
        err = "\n".join(self.stderr.splitlines()[-lines:])
        return f"{out}\n{err}".strip()


def run_child(
    command: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 1800,
    check: bool = True,
) -> ChildResult:
    """Run a command to its end: wall seconds, and its peak RSS from the kernel (wait4)."""
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(
            list(command),
            cwd=cwd or REPO_ROOT,
            env=dict(env) if env is not None else clean_env(),
            stdout=out,
            stderr=err,
            text=True,
        )
        deadline = started + timeout
        while True:
            # wait4 reports the child's own rusage (its peak RSS includes its reaped children).
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                os.wait4(proc.pid, 0)
                raise RuntimeError(f"{' '.join(command)} timed out after {timeout}s")
            time.sleep(0.02)
        seconds = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = ChildResult(
            seconds,
            usage.ru_utime + usage.ru_stime,
            round(usage.ru_maxrss / 1024, 1),
            proc.returncode,
            out.read(),
            err.read(),
        )
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}):\n{result.tail()}")
    return result


def peak_rss_mb() -> float:
    """This process's own peak resident memory, in MB (Linux reports KB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


# --- generated projects -------------------------------------------------------------------


@dataclass(frozen=True)
class Project:
    """A generated flower dbt project, parsed: what every step measures against."""

    models: int
    seed: int
    dir: Path
    counts: dict[str, int]
    parse_seconds: float | None  # None when an earlier bench's parse was reused
    digest: str  # of the generated files (see tree_digest)

    @property
    def manifest(self) -> Path:
        return self.dir / "target" / "manifest.json"

    @property
    def settings_file(self) -> Path:
        return self.dir.parent / f"{self.dir.name}.flower.yaml"

    def flower_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment of a child that loads flower-dagster on this project."""
        return clean_env(
            {
                "FLOWER_SETTINGS_FILE": str(self.settings_file),
                "FLOWER_DBT_PROJECT_DIR": str(self.dir),
                "FLOWER_DBT_PROFILES_DIR": str(self.dir),
                "FLOWER_DUCKDB_PATH": str(self.dir / "bench.duckdb"),
                **(extra or {}),
            }
        )


def settings_yaml(project_dir: Path, start: date) -> str:
    """A flower.yaml of its own for the bench: the repository's file is other people's work
    in progress, and its alerts and admin sections have nothing to do with loading models."""
    return (
        "# Written by bench/common.py: flower-dagster on a generated project.\n"
        f"partitions:\n  start: {start.isoformat()}\n"
        f"dbt:\n  project_dir: {project_dir}\n  profiles_dir: {project_dir}\n"
        "environments:\n"
        "  dev:\n    target: duckdb\n    schedules: false\n    automation: true\n"
        "    alerts: false\n"
    )


def tree_digest(root: Path) -> str:
    """A digest of every generated file (models, macros, project files), in path order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root)
        if rel.parts[0] in ("target", "logs") or path.suffix == ".duckdb":
            continue
        digest.update(str(rel).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def prepare_project(
    models: int, work: Path = DEFAULT_WORK_DIR, seed: int = 1, publish: bool = True
) -> Project:
    """Generate the project of `models` models and `dbt parse` it once.

    With `publish` it carries the product's write, audit, publish hooks (`p<models>`); without,
    its tables are written directly, the stock dbt way (`p<models>-direct`).
    The parse is reused while the generated files are byte-identical (a digest is kept next to
    the manifest): re-running the bench does not pay for a 3,000-model parse again.
    """
    from bench.generate_project import generate_project

    project_dir = work / (f"p{models}" if publish else f"p{models}-direct")
    counts = generate_project(project_dir, models, seed, publish=publish)
    settings = work / f"{project_dir.name}.flower.yaml"
    settings.write_text(settings_yaml(project_dir, partition_start()))
    digest = tree_digest(project_dir)
    stamp = project_dir / "target" / "bench_digest"
    manifest = project_dir / "target" / "manifest.json"
    if manifest.is_file() and stamp.is_file() and stamp.read_text() == digest:
        return Project(models, seed, project_dir, counts, None, digest)
    started = time.perf_counter()
    run_child(
        [bin_path("dbt"), "--no-use-colors", "parse", "--profiles-dir", str(project_dir)],
        env=clean_env({"FLOWER_DUCKDB_PATH": str(project_dir / "bench.duckdb")}),
        cwd=project_dir,
    )
    seconds = time.perf_counter() - started
    stamp.write_text(digest)
    return Project(models, seed, project_dir, counts, round(seconds, 2), digest)


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path
