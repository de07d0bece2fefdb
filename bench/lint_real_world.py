"""`flower lint` on a public dbt project with its packages installed, as `dbt deps` would.

The project and each package come from git repositories on this machine (a clone, or a bare
mirror): the project's folder at a revision is exported to a temporary folder, each package's
repository at its release tag into that folder's dbt_packages/<name>/ (what `dbt deps` does from
the hub), then the whole project is linted once. Printed: the findings by rule, the models
disabled and the models that need the warehouse, and the time; `--json FILE` writes every
finding (to judge them one by one, as docs/lint.md reports).

    .venv/bin/python bench/lint_real_world.py \\
        --project mattermost-data-warehouse.git:transform/mattermost-analytics \\
        --package dbt_utils=dbt-utils.git@1.3.0 \\
        --package codegen=dbt-codegen.git@0.13.1 \\
        --package dbt_project_evaluator=dbt-project-evaluator.git@v0.14.3 \\
        --package dbt_snowflake_query_tags=dbt-snowflake-query-tags.git@v2.5.0 \\
        --dialect snowflake
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: `python bench/lint_real_world.py`
    sys.path.insert(0, str(REPO_ROOT))

from flower_dagster.lint.run import lint_project  # noqa: E402
from flower_dagster.lint.selection import selection_from  # noqa: E402


def export(git_dir: Path, rev: str, subdir: str, into: Path) -> None:
    """The files of `subdir` of a git repository at `rev`, written under `into`."""
    archive = subprocess.run(
        ["git", "--git-dir" if git_dir.name.endswith(".git") or (git_dir / "HEAD").is_file()
         else "-C", str(git_dir), "archive", "--format=tar", rev, *([subdir] if subdir else [])],
        capture_output=True,
        check=True,
    ).stdout  # fmt: skip
    into.mkdir(parents=True, exist_ok=True)
    prefix = f"{subdir.rstrip('/')}/" if subdir else ""
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            if not member.name.startswith(prefix) or not member.isfile():
                continue
            target = into / member.name[len(prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            if source is not None:
                target.write_bytes(source.read())


def _location(text: str) -> tuple[Path, str, str]:
    """`repo[:subdir][@rev]` -> (repo, rev, subdir)."""
    text, _, rev = text.partition("@")
    repo, _, subdir = text.partition(":")
    return Path(repo), rev or "HEAD", subdir


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", required=True, help="GIT_DIR[:SUBDIR][@REV]")
    parser.add_argument(
        "--package", action="append", default=[], help="NAME=GIT_DIR[@TAG], one per package"
    )
    parser.add_argument("--dialect", default="duckdb")
    parser.add_argument("--vars", default=None, help="dbt vars as YAML")
    parser.add_argument("--json", type=Path, default=None, help="write every finding here")
    args = parser.parse_args(argv)

    import yaml

    workdir = Path(tempfile.mkdtemp(prefix="flower-lint-real-"))
    repo, rev, subdir = _location(args.project)
    export(repo, rev, subdir, workdir)
    for spec in args.package:
        name, _, location = spec.partition("=")
        package_repo, package_rev, package_subdir = _location(location)
        export(package_repo, package_rev, package_subdir, workdir / "dbt_packages" / name)

    start = time.perf_counter()
    result = lint_project(
        workdir,
        dialect=args.dialect,
        cli_vars=yaml.safe_load(args.vars) if args.vars else None,
        selection=selection_from({}, workdir, "all rules"),
    )
    seconds = time.perf_counter() - start
    by_rule = collections.Counter(finding.rule for finding in result.findings)
    print(f"{workdir}: {result.checked} in {seconds:.1f} s")
    for rule, count in sorted(by_rule.items()):
        print(f"  {rule}: {count}")
    reasons = collections.Counter(why for _path, why in result.not_checked)
    for why, count in reasons.most_common():
        print(f"  not checked ({count}): {why}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "checked": result.checked,
                    "seconds": round(seconds, 2),
                    "by_rule": dict(sorted(by_rule.items())),
                    "not_checked": [
                        [str(path.relative_to(workdir)), why] for path, why in result.not_checked
                    ],
                    "findings": [
                        {
                            "path": str(finding.path.relative_to(workdir)),
                            "line": finding.line,
                            "rule": finding.rule,
                            "message": finding.message,
                        }
                        for finding in result.findings
                    ],
                },
                indent=2,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
