"""The dbt project flower-dagster runs, and its parsed manifest.

The manifest is built by `dbt parse` (`flower prepare`, run by `make dev` and `make test`, or by
an image build in production). Under `dagster dev` it is refreshed at every code load, so an
edited model shows up on reload; elsewhere an existing manifest is used as it is. When dbt cannot
parse the project, the error is dbt's own message with the file it names, not a stack trace.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson
from dagster_dbt import DbtProject

from flower_dagster.dbt.target_dirs import environment_key, store_partial_parse
from flower_dagster.errors import DbtParseError
from flower_dagster.settings import Settings

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TIMESTAMP = re.compile(r"^\d{2}:\d{2}:\d{2}\s+")


@dataclass(frozen=True)
class FlowerDbtProject:
    """A dbt project with its profile settings and the path of its manifest."""

    project_dir: Path
    profiles_dir: Path | None
    target: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> FlowerDbtProject:
        return cls(settings.dbt_project_dir, settings.dbt_profiles_dir, settings.dbt_target)

    @cached_property
    def dagster_project(self) -> DbtProject:
        return DbtProject(
            project_dir=self.project_dir,
            profiles_dir=self.profiles_dir,
            target=self.target,
        )

    @property
    def manifest_path(self) -> Path:
        return self.dagster_project.manifest_path

    def dbt_env(self) -> dict[str, str]:
        """The environment for a dbt subprocess of this project."""
        env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
        if self.profiles_dir is not None:
            env["DBT_PROFILES_DIR"] = str(self.profiles_dir)
        return env

    def target_args(self) -> list[str]:
        return ["--target", self.target] if self.target else []

    def parse(self) -> Path:
        """Run `dbt parse` (partial parsing keeps repeats fast); raise DbtParseError on failure."""
        result = subprocess.run(
            [dbt_executable(), "--no-use-colors", "parse", *self.target_args()],
            cwd=self.project_dir,
            env=self.dbt_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 or not self.manifest_path.is_file():
            raise DbtParseError(
                f"dbt could not parse the project in {self.project_dir}:\n"
                + dbt_error_text(result.stdout + result.stderr)
            )
        # The parse is this environment's partial parse from now on (target_dirs.py).
        store_partial_parse(
            self.project_dir,
            environment_key(self.project_dir, self.profiles_dir, self.target, self.dbt_env()),
            self.manifest_path.parent,
        )
        return self.manifest_path

    def ensure_manifest(self) -> Path:
        """The manifest path, parsing first when it is missing or when running `dagster dev`."""
        if not self.manifest_path.is_file() or os.environ.get("DAGSTER_IS_DEV_CLI"):
            self.parse()
        return self.manifest_path

    def load_manifest(self) -> dict[str, Any]:
        # orjson, as dagster-dbt reads it: faster than json on a large manifest.
        return orjson.loads(self.ensure_manifest().read_bytes())


def dbt_executable() -> str:
    """The `dbt` next to this Python (the project's venv), else the one on PATH."""
    beside = Path(sys.executable).with_name("dbt")
    if beside.is_file():
        return str(beside)
    found = shutil.which("dbt")
    if found is None:
        raise DbtParseError("dbt is not installed: run `make dev` or `pip install -e .`")
    return found


def dbt_error_text(output: str) -> str:
    """dbt's console output reduced to its error lines, without colours and timestamps."""
    lines = [_TIMESTAMP.sub("", _ANSI.sub("", line)).rstrip() for line in output.splitlines()]
    noise = (
        "Running with dbt=",
        "Registered adapter:",
        "Performance info:",
        "Encountered an error",
    )
    kept = [line for line in lines if line.strip() and not line.strip().startswith(noise)]
    return "\n".join(f"  {line}" for line in kept) or "  (dbt printed nothing)"
