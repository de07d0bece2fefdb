"""flower.yaml and the FLOWER_* overrides: defaults, environments, one message per mistake."""

import re
import subprocess
import sys
import textwrap
from datetime import date, timedelta
from pathlib import Path

import pytest

from flower_dagster.errors import SettingsError
from flower_dagster.settings import DEMO_DBT_PROJECT_DIR, REPO_ROOT, load_settings


def _file(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "flower.yaml"
    path.write_text(textwrap.dedent(text))
    return {"FLOWER_SETTINGS_FILE": str(path)}


def _error(env: dict[str, str]) -> str:
    with pytest.raises(SettingsError) as raised:
        load_settings(env)
    return str(raised.value)


def test_the_repository_flower_yaml_gives_the_defaults():
    settings = load_settings({})
    assert settings.source == REPO_ROOT / "flower.yaml"
    assert settings.dbt_project_dir == DEMO_DBT_PROJECT_DIR
    assert settings.dbt_profiles_dir == DEMO_DBT_PROJECT_DIR
    assert (settings.schedule_hour, settings.timezone) == (7, "Asia/Seoul")
    assert settings.partition_start == date(2024, 1, 1)
    assert settings.environment.name == "dev"
    assert settings.dbt_target == "duckdb"
    assert (settings.environment.schedules, settings.environment.alerts) == (False, False)
    assert settings.environment.automation is True
    assert (settings.warehouse_pool, settings.automation_interval_seconds) == ("warehouse", 30)


def test_flower_env_picks_the_environment_and_its_target():
    prod = load_settings({"FLOWER_ENV": "prod"})
    assert prod.dbt_target == "prod"
    assert (prod.environment.schedules, prod.environment.alerts) == (True, True)
    assert load_settings({"FLOWER_ENV": "stage"}).dbt_target == "stage"


@pytest.mark.parametrize("hour", ["5", "7", "8"])
def test_the_batch_hour_can_be_overridden(hour):
    assert load_settings({"FLOWER_SCHEDULE_HOUR": hour}).schedule_hour == int(hour)


def test_a_file_sets_the_hour_and_paths_relative_to_itself(tmp_path):
    project = tmp_path / "analytics"
    project.mkdir()
    (project / "dbt_project.yml").write_text("name: analytics\n")
    env = _file(
        tmp_path,
        """
        schedule: {hour: 5, timezone: Europe/Berlin}
        dbt: {project_dir: analytics}
        environments:
          dev: {target: local}
        """,
    )
    settings = load_settings(env)
    assert (settings.schedule_hour, settings.timezone) == (5, "Europe/Berlin")
    assert settings.dbt_project_dir == project
    assert settings.dbt_profiles_dir is None  # the project has no profiles.yml: dbt's default
    assert settings.dbt_target == "local"


def test_a_project_chosen_by_the_environment_runs_its_profiles_default_target(tmp_path):
    (tmp_path / "dbt_project.yml").write_text("name: x\n")
    settings = load_settings({"FLOWER_DBT_PROJECT_DIR": str(tmp_path)})
    assert settings.dbt_project_dir == tmp_path
    assert settings.dbt_target is None
    assert (
        load_settings(
            {"FLOWER_DBT_PROJECT_DIR": str(tmp_path), "FLOWER_DBT_TARGET": "ci"}
        ).dbt_target
        == "ci"
    )


FUTURE = (date.today() + timedelta(days=3)).isoformat()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "schedule: {hour: 24}",
            "flower.yaml: schedule.hour is 24; allowed: a whole hour from 0 to 23, e.g. 5, 7 or 8",
        ),
        (
            "schedule: {hour: 7am}",
            "flower.yaml: schedule.hour is '7am'; allowed: a whole hour from 0 to 23",
        ),
        (
            "schedule: {timezone: Asia/Busan}",
            "flower.yaml: schedule.timezone is 'Asia/Busan'; allowed: an IANA time zone name",
        ),
        (
            f"partitions: {{start: {FUTURE}}}",
            f"flower.yaml: partitions.start is '{FUTURE}'",
        ),
        (
            "schedule: {hours: 7}",
            "flower.yaml: unknown key 'schedule.hours' in schedule; "
            "allowed: hour, late_after_hours, timezone",
        ),
        (
            "schedule: {late_after_hours: 0}",
            "flower.yaml: schedule.late_after_hours is 0; allowed: a whole number of hours",
        ),
        (
            "environments: {prod: {target: prod}, stage: {target: prod}}",
            "flower.yaml: environments.stage.target is 'prod', the target of prod; "
            "allowed: a target of its own, so stage never writes production data",
        ),
        (
            "schedules: {hour: 7}",
            "flower.yaml: unknown key 'schedules' in the top level; allowed: schedule, partitions",
        ),
        (
            "environments: {prod: {target: prod, alert: true}}",
            "flower.yaml: unknown key 'environments.prod.alert' in environments.prod; "
            "allowed: target, schedules, automation, alerts",
        ),
        (
            "environments: {prod: {schedules: yes please}}",
            "flower.yaml: environments.prod.schedules is 'yes please'; allowed: true or false",
        ),
        (
            "automation: {interval_seconds: 0}",
            "flower.yaml: automation.interval_seconds is 0; allowed: a whole number of seconds",
        ),
        ("dbt: {project_dir: nowhere}", "flower.yaml: dbt.project_dir is 'nowhere': no such"),
        ("schedule: [7]", "flower.yaml: schedule is [7]"),
        ("schedule: {hour: 7", "flower.yaml line 1: not valid YAML"),
    ],
)
def test_each_mistake_in_the_file_names_the_key_the_value_and_what_is_allowed(
    tmp_path, text, message
):
    assert message in _error(_file(tmp_path, text))


def test_all_mistakes_are_listed_at_once(tmp_path):
    text = "schedule: {hour: 25, timezone: Nowhere/Land}\nautomation: {interval_seconds: -1}"
    message = _error(_file(tmp_path, text))
    assert message.startswith("3 settings problems:")
    assert "schedule.hour is 25" in message and "schedule.timezone is 'Nowhere/Land'" in message


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FLOWER_ENV": "qa"}, "FLOWER_ENV is 'qa'; allowed: dev, stage, prod"),
        ({"FLOWER_SCHEDULE_HOUR": "24"}, "FLOWER_SCHEDULE_HOUR is 24; allowed: a whole hour"),
        ({"FLOWER_SCHEDULE_HOUR": "7am"}, "FLOWER_SCHEDULE_HOUR is '7am'; allowed: a whole hour"),
        (
            {"FLOWER_TIMEZONE": "Mars/Olympus"},
            "FLOWER_TIMEZONE is 'Mars/Olympus'; allowed: an IANA",
        ),
        ({"FLOWER_PARTITION_START": "2024-13-01"}, "FLOWER_PARTITION_START is '2024-13-01'"),
        ({"FLOWER_PARTITION_START": FUTURE}, "that is not in the future"),
        ({"FLOWER_AUTOMATION_INTERVAL_SECONDS": "fast"}, "FLOWER_AUTOMATION_INTERVAL_SECONDS is"),
        ({"FLOWER_DBT_PROJECT_DIR": "/nonexistent/flower"}, "FLOWER_DBT_PROJECT_DIR is '/nonex"),
        ({"FLOWER_SETTINGS_FILE": "/nonexistent/flower.yaml"}, "FLOWER_SETTINGS_FILE=/nonexistent"),
    ],
)
def test_each_bad_variable_is_named(env, message):
    assert message in _error(env)


def test_a_project_dir_without_dbt_project_yml(tmp_path):
    assert "no dbt_project.yml there" in _error({"FLOWER_DBT_PROJECT_DIR": str(tmp_path)})


@pytest.mark.slow
@pytest.mark.parametrize(
    ("text", "variables", "message"),
    [
        ("schedule: {hour: 24}", {}, "flower.yaml: schedule.hour is 24"),
        ("schedule: {hour: 7am}", {}, "flower.yaml: schedule.hour is '7am'"),
        ("schedule: {timezone: Asia/Busan}", {}, "flower.yaml: schedule.timezone is 'Asia/Busan'"),
        (f"partitions: {{start: {FUTURE}}}", {}, f"flower.yaml: partitions.start is '{FUTURE}'"),
        ("schedule: {hours: 7}", {}, "flower.yaml: unknown key 'schedule.hours' in schedule"),
        ("", {"FLOWER_ENV": "qa"}, "FLOWER_ENV is 'qa'; allowed: dev, stage, prod"),
        ("", {"FLOWER_SCHEDULE_HOUR": "7am"}, "FLOWER_SCHEDULE_HOUR is '7am'; allowed: a whole"),
    ],
)
def test_dagster_definitions_validate_fails_with_the_message(tmp_path, text, variables, message):
    env = {**_file(tmp_path, text), **variables}
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", "flower_dagster.definitions"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
    )
    assert result.returncode != 0
    assert message in result.stdout + result.stderr


def _team_repo(root: Path) -> Path:
    """A team's own repository: flower.yaml next to its dbt project and people files."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "analytics").mkdir()
    (root / "analytics" / "dbt_project.yml").write_text("name: analytics\n")
    (root / "flower.yaml").write_text(
        textwrap.dedent(
            """
            dbt: {project_dir: analytics}
            alerts: {platform_channel: "#data"}
            admin: {audit_log: logs/audit.jsonl}
            environments:
              dev: {target: local}
            """
        )
    )
    return root


def test_the_settings_file_is_found_in_the_current_directory(tmp_path):
    root = _team_repo(tmp_path / "team")
    settings = load_settings({}, cwd=root)
    assert settings.source == root / "flower.yaml"
    assert settings.dbt_project_dir == root / "analytics"
    assert settings.alerts is not None and settings.alerts.people_file == root / "people.yaml"
    assert settings.admin.access_file == root / "access.yaml"
    assert settings.admin.audit_log == root / "logs" / "audit.jsonl"


def test_flower_settings_file_paths_resolve_against_its_folder_not_the_cwd(tmp_path):
    root = _team_repo(tmp_path / "team")
    elsewhere = tmp_path / "elsewhere"
    _team_repo(elsewhere)  # a flower.yaml in the cwd loses to the variable
    settings = load_settings({"FLOWER_SETTINGS_FILE": str(root / "flower.yaml")}, cwd=elsewhere)
    assert settings.source == root / "flower.yaml"
    assert settings.dbt_project_dir == root / "analytics"
    assert settings.admin.access_file == root / "access.yaml"
    relative = load_settings({"FLOWER_SETTINGS_FILE": "team/flower.yaml"}, cwd=tmp_path)
    assert relative.source == root / "flower.yaml"


def test_without_a_settings_file_defaults_resolve_against_the_current_directory(tmp_path):
    (tmp_path / "dbt_project").mkdir()
    (tmp_path / "dbt_project" / "dbt_project.yml").write_text("name: x\n")
    settings = load_settings({}, cwd=tmp_path)
    assert settings.source is None
    assert settings.dbt_project_dir == tmp_path / "dbt_project"
    assert settings.admin.access_file == tmp_path / "access.yaml"
    assert settings.admin.audit_log == tmp_path / "admin-audit.jsonl"


def test_no_settings_file_and_no_project_says_what_was_looked_for(tmp_path):
    message = _error_in({}, tmp_path)
    assert message == (
        f"no flower.yaml in {tmp_path} and FLOWER_SETTINGS_FILE is not set; run flower from the "
        "folder that holds flower.yaml, or set FLOWER_SETTINGS_FILE=/path/to/flower.yaml"
    )
    assert "FLOWER_SETTINGS_FILE=missing.yaml: no such file" in _error_in(
        {"FLOWER_SETTINGS_FILE": "missing.yaml"}, tmp_path
    )


def _error_in(env: dict[str, str], cwd: Path) -> str:
    with pytest.raises(SettingsError) as raised:
        load_settings(env, cwd=cwd)
    return str(raised.value)


def _flower(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """The installed `flower` command, run from `cwd` with only these variables."""
    flower = Path(sys.executable).with_name("flower")
    return subprocess.run(
        [str(flower), *args],
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def test_flower_reads_the_team_files_from_where_it_runs(tmp_path):
    root = _team_repo(tmp_path / "team")
    result = _flower(["env"], root, {})
    assert result.returncode == 0, result.stderr
    rows = _rows(result.stdout)
    assert rows["settings file"] == str(root / "flower.yaml")
    assert rows["dbt project"] == str(root / "analytics")

    other = tmp_path / "other"
    other.mkdir()
    by_variable = _flower(["env"], other, {"FLOWER_SETTINGS_FILE": str(root / "flower.yaml")})
    assert by_variable.returncode == 0, by_variable.stderr
    assert _rows(by_variable.stdout)["dbt project"] == str(root / "analytics")

    missing = _flower(["env"], other, {})
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"flower: {_error_in({}, other)}"


def _rows(output: str) -> dict[str, str]:
    """`flower env`'s table: name, two or more spaces, value."""
    return dict(re.split(r"\s{2,}", line, maxsplit=1) for line in output.splitlines())


@pytest.mark.slow
def test_the_code_location_reads_the_settings_file_of_its_working_directory(tmp_path):
    (tmp_path / "flower.yaml").write_text("schedule: {hour: 24}\n")
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", "flower_dagster.definitions"],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "flower.yaml: schedule.hour is 24" in result.stdout + result.stderr
