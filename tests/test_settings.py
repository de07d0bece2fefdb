"""Settings from the environment: defaults and one clear message per bad value."""

from datetime import date, timedelta

import pytest

from flower_dagster.errors import SettingsError
from flower_dagster.settings import DEMO_DBT_PROJECT_DIR, load_settings


def test_defaults_point_at_the_demo_project():
    settings = load_settings({})
    assert settings.dbt_project_dir == DEMO_DBT_PROJECT_DIR
    assert settings.dbt_profiles_dir == DEMO_DBT_PROJECT_DIR
    assert settings.timezone == "Asia/Seoul"
    assert settings.partition_start == date(2024, 1, 1)
    assert settings.warehouse_pool == "warehouse"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FLOWER_TIMEZONE": "Mars/Olympus"}, "FLOWER_TIMEZONE='Mars/Olympus' is not a time zone"),
        ({"FLOWER_PARTITION_START": "2024-13-01"}, "FLOWER_PARTITION_START='2024-13-01' is not"),
        (
            {"FLOWER_PARTITION_START": (date.today() + timedelta(days=3)).isoformat()},
            "is in the future",
        ),
        ({"FLOWER_DBT_PROJECT_DIR": "/nonexistent/flower"}, "FLOWER_DBT_PROJECT_DIR="),
        ({"FLOWER_AUTOMATION_INTERVAL_SECONDS": "0"}, "from 1 to 3600"),
        (
            {"FLOWER_AUTOMATION_INTERVAL_SECONDS": "fast"},
            "FLOWER_AUTOMATION_INTERVAL_SECONDS='fast'",
        ),
    ],
)
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(SettingsError) as raised:
        load_settings(env)
    assert message in str(raised.value)


def test_project_dir_without_dbt_project_yml(tmp_path):
    with pytest.raises(SettingsError) as raised:
        load_settings({"FLOWER_DBT_PROJECT_DIR": str(tmp_path)})
    assert "no dbt_project.yml there" in str(raised.value)


def test_profiles_dir_defaults_to_dbts_own_when_the_project_has_none(tmp_path):
    (tmp_path / "dbt_project.yml").write_text("name: x\n")
    settings = load_settings({"FLOWER_DBT_PROJECT_DIR": str(tmp_path)})
    assert settings.dbt_profiles_dir is None
