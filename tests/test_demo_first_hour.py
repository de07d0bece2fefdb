"""A new user's first hour with the demo: what `flower env`, `flower impact` and the README say,
and what the Dagster UI greets them with. Each is a friction a first session ran into."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from flower_dagster.settings import REPO_ROOT
from tests.conftest import Warehouse


def _flower(*args: str, env: dict[str, str], cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flower_dagster.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _clean_env(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWER_", "DAGSTER_"))}
    env.update(DBT_SEND_ANONYMOUS_USAGE_STATS="false", **values)
    return env


def test_flower_env_says_the_environment_is_the_default_when_flower_env_is_not_set():
    unset = _flower("env", env=_clean_env())
    assert unset.returncode == 0, unset.stderr
    assert "dev (the default: FLOWER_ENV is not set)" in unset.stdout
    assert "none: up to the last ended window" in unset.stdout
    assert "(FLOWER_ENV)" not in unset.stdout.replace("FLOWER_ENV is not set", "")
    chosen = _flower("env", env=_clean_env(FLOWER_ENV="stage"))
    assert "stage (FLOWER_ENV)" in chosen.stdout


def test_flower_impact_as_the_readme_shows_it_reads_the_dev_instance(warehouse: Warehouse):
    # No DAGSTER_HOME, as in the README: the checkout's dev instance (make dev's) is read.
    env = _clean_env(
        FLOWER_DBT_PROJECT_DIR=str(warehouse.project_dir),
        FLOWER_DUCKDB_PATH=str(warehouse.duckdb_path),
    )
    result = _flower("impact", "fct_orders", "2024-01-10", env=env)
    assert result.returncode == 0, result.stderr
    assert "DAGSTER_HOME is not set" not in result.stdout
    assert "blocked by: unknown" not in result.stdout
    assert f"the dev instance {REPO_ROOT / 'dagster_home'}" in result.stderr
    assert "agg_weekly_revenue" in result.stdout


def test_the_dagster_ui_of_the_demo_shows_no_newsletter_pop_up():
    config = yaml.safe_load((REPO_ROOT / "dagster_home" / "dagster.yaml").read_text())
    assert config["nux"] == {"enabled": False}


def test_the_readme_names_every_model_of_the_demo():
    readme = (REPO_ROOT / "README.md").read_text()
    models = sorted(p.stem for p in (REPO_ROOT / "dbt_project" / "models").rglob("*.sql"))
    assert len(models) == 15
    missing = [m for m in models if not re.search(rf"\b{m}\b", readme)]
    assert missing == []


def test_the_readme_uses_the_words_of_this_dagster_ui():
    readme = (REPO_ROOT / "README.md").read_text()
    # One Automation list in Dagster 1.13: no "Automation → Schedules" page.
    assert "Automation → Schedules" not in readme
    # The UI says "Unsynced"; where the docs say stale, they say which the UI shows.
    if re.search(r"\bstale\b", readme, re.I):
        assert "Unsynced" in readme


def test_the_demo_calendar_ends_where_its_data_ends_so_the_uis_last_90_days_hold_data():
    from flower_dagster.demo.data import DEMO_END, DEMO_START
    from flower_dagster.partitions import Grain, partitions_for
    from flower_dagster.settings import load_settings

    planned = subprocess.run(
        ["make", "-n", "dev", "admin"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert planned.count(f"FLOWER_PARTITION_END={DEMO_END.isoformat()}") == 2
    settings = load_settings({"FLOWER_PARTITION_END": DEMO_END.isoformat()})
    assert settings.partition_end == DEMO_END
    days = partitions_for(
        Grain.DAILY, settings.partition_start, settings.timezone, settings.partition_end
    ).get_partition_keys()
    # What the UI opens on: the last 90 daily partitions, every one a day of demo data.
    assert days[-1] == DEMO_END.isoformat()
    assert all(DEMO_START.isoformat() <= day <= DEMO_END.isoformat() for day in days[-90:])
    # Without the variable (tests, a team's flower.yaml) the partitions run on to today.
    assert load_settings({}).partition_end is None
