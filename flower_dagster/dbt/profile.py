"""Where an environment writes: its dbt target, resolved from profiles.yml without running dbt.

`flower env` shows it before a release (the environment guard: dev and stage must not write
where prod does), and `flower demo load` loads the demo data into the file the target uses.
Values are rendered the way dbt renders profiles.yml for these keys: `env_var('NAME',
'default')` from the environment; a relative DuckDB path is relative to the dbt project folder
(where dbt runs).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from flower_dagster.errors import SettingsError
from flower_dagster.settings import Settings, read_yaml_mapping

_MISSING = object()


@dataclass(frozen=True)
class TargetInfo:
    """One output of a dbt profile, with the keys that say where it writes."""

    profile: str
    name: str
    type: str
    schema: str | None
    database: str | None
    path: Path | None  # the database file of file-based adapters (DuckDB)
    host: str | None
    method: str | None = None  # how dbt-spark connects: session, thrift, http, odbc

    @property
    def location(self) -> str:
        """Where it writes, in one line: `duckdb state/prod.duckdb, schema main`."""
        if self.method == "session":
            where = "in-process session"
        else:
            where = str(self.path) if self.path else self.host or self.database or "?"
        schema = f", schema {self.schema}" if self.schema else ""
        return f"{self.type} {where}{schema}"


def resolve_target(
    project_dir: Path,
    profiles_dir: Path | None,
    target: str | None,
    environ: Mapping[str, str] | None = None,
) -> TargetInfo:
    """The target `target` (None: the profile's default) of the project's dbt profile."""
    env = os.environ if environ is None else environ
    project = _load_yaml(project_dir / "dbt_project.yml")
    profile_name = project.get("profile")
    if not profile_name:
        raise SettingsError(f"{project_dir / 'dbt_project.yml'}: no `profile:` key")
    profiles_path = (profiles_dir or Path.home() / ".dbt") / "profiles.yml"
    if not profiles_path.is_file():
        raise SettingsError(f"{profiles_path}: no such file (dbt's profiles.yml)")
    profiles = _load_yaml(profiles_path)
    profile = profiles.get(profile_name)
    if not isinstance(profile, dict):
        raise SettingsError(
            f"{profiles_path}: no profile {profile_name!r} (named by dbt_project.yml); "
            f"allowed: {', '.join(k for k in profiles if k != 'config') or 'none defined'}"
        )
    outputs = profile.get("outputs") or {}
    name = target or _render(profile.get("target"), env)
    if name not in outputs:
        raise SettingsError(
            f"{profiles_path}: profile {profile_name!r} has no target {name!r}; "
            f"allowed: {', '.join(outputs)}"
        )
    output = {key: _render(value, env) for key, value in outputs[name].items()}
    path = output.get("path")
    file = None
    if path and path != ":memory:":
        file = Path(str(path)).expanduser()
        file = file if file.is_absolute() else (project_dir / file)
    return TargetInfo(
        profile=profile_name,
        name=name,
        type=str(output.get("type", "?")),
        schema=_text(output.get("schema")),
        database=_text(output.get("database") or output.get("dbname")),
        path=file,
        host=_text(output.get("host")),
        method=_text(output.get("method")),
    )


def target_of(settings: Settings) -> TargetInfo:
    """The dbt target the settings' environment runs."""
    return resolve_target(settings.dbt_project_dir, settings.dbt_profiles_dir, settings.dbt_target)


def _load_yaml(path: Path) -> dict[str, Any]:
    return read_yaml_mapping(path, "dbt settings", label=str(path))


def _render(value: Any, env: Mapping[str, str]) -> Any:
    if not isinstance(value, str) or "{{" not in value:
        return value

    def env_var(name: str, default: Any = _MISSING) -> Any:
        if name in env:
            return env[name]
        if default is _MISSING:
            raise SettingsError(f"profiles.yml reads env_var({name!r}), which is not set")
        return default

    return jinja2.Environment().from_string(value).render(env_var=env_var)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
