"""`--changed-since REF`: the files a branch changed, as git sees them.

Changed means changed between the merge base of REF and HEAD and the working tree: committed
on the branch, staged, unstaged or new and untracked (what a PR will contain), not what
REF's branch changed meanwhile.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from flower_dagster.lint.errors import LintError


def _git(args: list[str], cwd: Path) -> str:
    try:
        result = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise LintError("--changed-since needs git, which is not installed") from None
    if result.returncode != 0:
        raise LintError(f"git {' '.join(args)} failed in {cwd}: {result.stderr.strip()}")
    return result.stdout


def changed_files(ref: str, cwd: Path) -> list[Path]:
    """Absolute paths of the files changed since the merge base of `ref` and HEAD."""
    root = Path(_git(["rev-parse", "--show-toplevel"], cwd).strip())
    try:
        base = _git(["merge-base", ref, "HEAD"], cwd).strip()
    except LintError as error:
        raise LintError(
            f"--changed-since {ref}: no merge base with HEAD (is '{ref}' a branch, tag or "
            f"commit here? in CI fetch the history: actions/checkout with fetch-depth: 0)\n"
            f"  {error}"
        ) from None
    names = _git(["diff", "--name-only", "--no-renames", "-z", base], cwd).split("\0")
    names += _git(["ls-files", "--others", "--exclude-standard", "--full-name", "-z"], cwd).split(
        "\0"
    )
    return sorted({(root / name).resolve() for name in names if name})
