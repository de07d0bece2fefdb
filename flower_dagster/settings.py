"""The settings flower-dagster runs with, validated once into one immutable object.

Today they come from environment variables (FLOWER_*); every bad value stops loading with one
message naming the variable, the value and what is allowed.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flower_dagster.errors import SettingsError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"

DEFAULT_TIMEZONE = "Asia/Seoul"
DEFAULT_PARTITION_START = date(2024, 1, 1)
# Every dbt asset claims a slot in this Dagster concurrency pool. The instance limits pools to
# one slot by default (dagster_home/dagster.yaml), which serializes writes to DuckDB.
DEFAULT_WAREHOUSE_POOL = "warehouse"
# How often the daemon evaluates the repair rule (Dagster's default for sensors is 30 s).
DEFAULT_AUTOMATION_INTERVAL_SECONDS = 30


@dataclass(frozen=True)
class Settings:
    dbt_project_dir: Path
    dbt_profiles_dir: Path | None
    dbt_target: str | None
    timezone: str
    partition_start: date
    warehouse_pool: str
    automation_interval_seconds: int = DEFAULT_AUTOMATION_INTERVAL_SECONDS

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the settings from `environ` (default: the process environment)."""
    env = os.environ if environ is None else environ

    project_dir = _directory(env, "FLOWER_DBT_PROJECT_DIR", DEMO_DBT_PROJECT_DIR)
    if not (project_dir / "dbt_project.yml").is_file():
        raise SettingsError(
            f"FLOWER_DBT_PROJECT_DIR={project_dir}: no dbt_project.yml there; "
            "point it at the folder that holds your dbt project's dbt_project.yml"
        )
    default_profiles = project_dir if (project_dir / "profiles.yml").is_file() else None
    profiles_dir = _directory(env, "FLOWER_DBT_PROFILES_DIR", default_profiles)
    if profiles_dir is not None and not (profiles_dir / "profiles.yml").is_file():
        raise SettingsError(
            f"FLOWER_DBT_PROFILES_DIR={profiles_dir}: no profiles.yml there; "
            "point it at the folder that holds profiles.yml, or unset it to use dbt's default"
        )

    return Settings(
        dbt_project_dir=project_dir,
        dbt_profiles_dir=profiles_dir,
        dbt_target=env.get("FLOWER_DBT_TARGET") or None,
        timezone=_timezone(env.get("FLOWER_TIMEZONE") or DEFAULT_TIMEZONE),
        partition_start=_start_date(env.get("FLOWER_PARTITION_START")),
        warehouse_pool=env.get("FLOWER_WAREHOUSE_POOL") or DEFAULT_WAREHOUSE_POOL,
        automation_interval_seconds=_interval(env.get("FLOWER_AUTOMATION_INTERVAL_SECONDS")),
    )


def _directory(env: Mapping[str, str], name: str, default: Path | None) -> Path | None:
    raw = env.get(name)
    if not raw:
        return default
    path = Path(raw).expanduser().resolve()
    if not path.is_dir():
        raise SettingsError(f"{name}={raw}: no such directory")
    return path


def _timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(
            f"FLOWER_TIMEZONE={value!r} is not a time zone; use an IANA name such as "
            "'Asia/Seoul', 'UTC' or 'Europe/Berlin'"
        ) from None
    return value


def _interval(value: str | None) -> int:
    if not value:
        return DEFAULT_AUTOMATION_INTERVAL_SECONDS
    if not value.strip().isdigit() or not 1 <= int(value) <= 3600:
        raise SettingsError(
            f"FLOWER_AUTOMATION_INTERVAL_SECONDS={value!r} is not allowed; use a whole number of "
            "seconds from 1 to 3600 (default 30)"
        )
    return int(value)


def _start_date(value: str | None) -> date:
    if not value:
        return DEFAULT_PARTITION_START
    try:
        start = date.fromisoformat(value)
    except ValueError:
        raise SettingsError(
            f"FLOWER_PARTITION_START={value!r} is not a date; use YYYY-MM-DD, e.g. 2024-01-01"
        ) from None
    if start > date.today():
        raise SettingsError(
            f"FLOWER_PARTITION_START={value} is in the future; the first partition must have "
            "started already"
        )
    return start
