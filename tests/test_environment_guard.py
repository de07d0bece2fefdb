"""The environment guard: each environment writes where its own dbt target says, and shows it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from flower_dagster.dbt.profile import resolve_target
from flower_dagster.errors import SettingsError
from flower_dagster.settings import DEMO_DBT_PROJECT_DIR, load_settings
from tests.conftest import copy_demo_project


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    return {**env, **extra}


def test_each_demo_environment_writes_its_own_duckdb_file():
    files = {}
    for name in ("dev", "stage", "prod"):
        settings = load_settings({"FLOWER_ENV": name})
        target = resolve_target(
            settings.dbt_project_dir, settings.dbt_profiles_dir, settings.dbt_target, environ={}
        )
        assert target.type == "duckdb" and target.schema == "main"
        files[name] = target.path
    assert files == {
        "dev": DEMO_DBT_PROJECT_DIR / "state" / "warehouse.duckdb",
        "stage": DEMO_DBT_PROJECT_DIR / "state" / "stage.duckdb",
        "prod": DEMO_DBT_PROJECT_DIR / "state" / "prod.duckdb",
    }


def test_the_profile_is_rendered_with_the_environment(tmp_path):
    target = resolve_target(
        DEMO_DBT_PROJECT_DIR,
        DEMO_DBT_PROJECT_DIR,
        "prod",
        environ={"FLOWER_DUCKDB_PATH": str(tmp_path / "x.duckdb")},
    )
    assert target.path == tmp_path / "x.duckdb"
    assert target.location == f"duckdb {tmp_path / 'x.duckdb'}, schema main"


def test_an_unknown_target_names_the_profile_and_what_is_allowed():
    with pytest.raises(SettingsError) as error:
        resolve_target(DEMO_DBT_PROJECT_DIR, DEMO_DBT_PROJECT_DIR, "production", environ={})
    assert str(error.value) == (
        f"{DEMO_DBT_PROJECT_DIR / 'profiles.yml'}: profile 'flower_demo' has no target "
        "'production'; allowed: duckdb, stage, prod, spark"
    )


def test_a_required_env_var_that_is_not_set_is_named(tmp_path):
    project = tmp_path / "p"
    project.mkdir()
    (project / "dbt_project.yml").write_text("name: p\nprofile: p\n")
    (project / "profiles.yml").write_text(
        "p:\n  target: prod\n  outputs:\n    prod:\n      type: postgres\n"
        "      host: \"{{ env_var('PGHOST') }}\"\n      schema: analytics\n"
    )
    with pytest.raises(SettingsError, match="env_var\\('PGHOST'\\), which is not set"):
        resolve_target(project, project, None, environ={})
    target = resolve_target(project, project, None, environ={"PGHOST": "db.internal"})
    assert target.location == "postgres db.internal, schema analytics"


def _flower(*args: str, env: dict[str, str], cwd: Path | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "flower_dagster.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def _rows(output: str) -> dict[str, str]:
    return {line[:16].strip(): line[18:] for line in output.splitlines()}


def test_flower_env_shows_where_each_environment_writes_and_what_is_on():
    stage = _rows(_flower("env", env=_clean_env(FLOWER_ENV="stage")))
    prod = _rows(_flower("env", env=_clean_env(FLOWER_ENV="prod")))
    assert stage["environment"] == "stage (FLOWER_ENV)"
    assert stage["writes to"].startswith(f"duckdb {DEMO_DBT_PROJECT_DIR}/state/stage.duckdb")
    assert (stage["schedules"], stage["alerts"]) == ("off", "off")
    assert prod["writes to"].startswith(f"duckdb {DEMO_DBT_PROJECT_DIR}/state/prod.duckdb")
    assert (prod["schedules"], prod["alerts"]) == ("on", "on")


def test_demo_load_fills_the_file_of_the_chosen_environment(tmp_path):
    project = copy_demo_project(tmp_path / "dbt_project")
    settings_file = tmp_path / "flower.yaml"
    settings_file.write_text(
        "dbt: {project_dir: dbt_project}\n"
        "environments:\n"
        "  dev: {target: duckdb}\n"
        "  stage: {target: stage}\n"
        "  prod: {target: prod, schedules: true, alerts: true}\n"
    )
    env = _clean_env(FLOWER_SETTINGS_FILE=str(settings_file), FLOWER_ENV="stage")
    output = _flower("demo", "load", env=env)
    stage_file = project / "state" / "stage.duckdb"
    assert f"into {stage_file}" in output
    with duckdb.connect(str(stage_file), read_only=True) as db:
        assert db.execute("select count(*) from raw.orders").fetchone()[0] > 0
    assert not (project / "state" / "prod.duckdb").exists()
    assert not (project / "state" / "warehouse.duckdb").exists()
