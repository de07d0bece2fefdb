"""`flower lint` side by side with sqlfluff on the same generated models.

Generates a flower project of N models (bench/generate_project.py), then times, as fresh
processes on the same files:

- `flower lint --project-dir P` (all rules: renders Jinja itself, parses with sqlglot);
- `sqlfluff lint P/models` with sqlfluff's **jinja** templater (dbt's templater would need a
  dbt profile, a warehouse connection and a `dbt compile` of the project), the project's macros
  loaded, dbt builtins on, dialect duckdb, its default rules, one process.

Each is run `--runs` times (default 3; sqlfluff `--sqlfluff-runs` times if given) and the
median wall time is printed as a table; the JSON of the figures goes to
bench/out/lint_<N>.json.

    .venv/bin/python bench/lint.py --models 1000        # needs the `bench` extra (sqlfluff)
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: `python bench/lint.py`
    sys.path.insert(0, str(REPO_ROOT))

from bench.generate_project import generate_project  # noqa: E402

SQLFLUFF_CONFIG = """\
[sqlfluff]
dialect = duckdb
templater = jinja
max_line_length = 100

[sqlfluff:templater:jinja]
apply_dbt_builtins = True
load_macros_from_path = macros
"""


def _bin(name: str) -> str:
    beside = Path(sys.executable).with_name(name)
    return str(beside) if beside.is_file() else name


def time_command(command: Sequence[str], cwd: Path, runs: int) -> tuple[list[float], int]:
    """Wall times of `runs` runs of a command, and its last exit code."""
    times = []
    code = 0
    for _ in range(runs):
        start = time.perf_counter()
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
        code = result.returncode
        if code not in (0, 1):
            raise SystemExit(f"{' '.join(command)} failed ({code}):\n{result.stderr[-2000:]}")
    return times, code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--sqlfluff-runs", type=int, default=None, help="runs of sqlfluff (default: --runs)"
    )
    parser.add_argument("--out", type=Path, default=None, help="project folder (default: temp)")
    args = parser.parse_args(argv)
    if shutil.which(_bin("sqlfluff")) is None:
        raise SystemExit("sqlfluff is not installed: uv sync --extra bench (make bench does)")

    workdir = args.out or Path(tempfile.mkdtemp(prefix="flower-lint-bench-"))
    generate_project(workdir, args.models)
    (workdir / ".sqlfluff").write_text(SQLFLUFF_CONFIG)
    files = len(list((workdir / "models").rglob("*.sql")))

    contenders = {
        "flower lint (all rules)": [_bin("flower"), "lint", "--project-dir", str(workdir)],
        "sqlfluff lint (jinja templater)": [
            _bin("sqlfluff"),
            "lint",
            "models",
            "--processes",
            "1",
            "--disable-progress-bar",
        ],
    }
    runs = {name: args.runs for name in contenders}
    runs["sqlfluff lint (jinja templater)"] = args.sqlfluff_runs or args.runs
    rows = []
    for name, command in contenders.items():
        times, code = time_command(command, workdir, runs[name])
        median = statistics.median(times)
        rows.append(
            {
                "tool": name,
                "median_s": round(median, 2),
                "runs_s": [round(t, 2) for t in times],
                "models_per_s": round(files / median, 1),
                "exit_code": code,
            }
        )

    counts = " and ".join(sorted({str(n) for n in runs.values()}))
    print(f"{files} models, median of {counts} runs, wall time of a fresh process:\n")
    header = f"{'tool':<34}{'median':>10}{'models/s':>12}  runs"
    print(header)
    print("-" * len(header))
    for row in rows:
        runs = ", ".join(f"{t:.2f}" for t in row["runs_s"])
        print(f"{row['tool']:<34}{row['median_s']:>9.2f}s{row['models_per_s']:>12.1f}  {runs}")
    ratio = rows[1]["median_s"] / rows[0]["median_s"] if rows[0]["median_s"] else float("inf")
    print(f"\nflower lint is {ratio:.0f}x faster on these files.")
    out = REPO_ROOT / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"lint_{args.models}.json").write_text(
        json.dumps({"models": files, "runs": runs, "results": rows}, indent=2)
    )
    if args.out is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
