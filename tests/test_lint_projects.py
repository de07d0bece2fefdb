"""`flower lint` on projects written as public dbt projects are: no false findings.

tests/fixtures/lint/packaged_project has seeds read through ref(), a snapshot, a versioned
model, an installed package (dbt_packages/, as `dbt deps` leaves it) whose macros take keyword
arguments and dispatch by adapter, models disabled by a var, by dbt_project.yml and by their
properties, and macros that introspect the warehouse. Only its `expect:` lines are findings.
No dbt runs: the whole file takes a few seconds.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from flower_dagster.cli import main
from flower_dagster.lint.errors import LintError
from flower_dagster.lint.project import load_project
from flower_dagster.lint.rules import Linter
from flower_dagster.lint.run import lint_project
from flower_dagster.lint.selection import selection_from
from flower_dagster.settings import DEMO_DBT_PROJECT_DIR
from tests.test_lint import FIXTURES, expected_findings, found

PACKAGED = FIXTURES / "packaged_project"
WAREHOUSE = {
    ("models/marts/orders_narrow.sql", "calendar_utils.star_except needs the warehouse "
     "(it calls adapter.get_columns_in_relation)"),
    ("models/marts/orders_without_amount.sql", "columns_except needs the warehouse "
     "(it calls adapter.get_columns_in_relation)"),
}  # fmt: skip


def _not_checked(result, root: Path = PACKAGED) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {(path.relative_to(root).as_posix(), why) for path, why in result.not_checked}


def test_packaged_project_has_only_its_real_findings_and_the_right_counts() -> None:
    result = lint_project(PACKAGED)
    assert found(result.findings, PACKAGED) == expected_findings(PACKAGED)
    assert {finding.rule for finding in result.findings} == {"FL003"}  # no FL008 at all
    assert result.disabled == 3  # legacy/ (a var), old_report (config()), retired (its yml)
    assert _not_checked(result) == WAREHOUSE
    models = len(list((PACKAGED / "models").rglob("*.sql")))
    assert result.models_checked == models - 3 - 2 == 14
    assert result.checked == (
        "14 models, 4 properties files checked; 3 disabled, 2 need the warehouse, not checked"
    )


def test_vars_switch_models_on_as_dbt_does() -> None:
    result = lint_project(PACKAGED, cli_vars={"enable_legacy": True, "enable_old_report": True})
    assert result.disabled == 1  # retired: disabled in its properties file
    # legacy_orders is enabled now: a ref to it is fine (its own SQL is broken)
    assert "models/marts/bad_ref_disabled.sql" not in {
        path for path, _line, _rule in found(result.findings, PACKAGED)
    }
    assert {("models/legacy/legacy_orders.sql", 1, "FL008"), ("models/marts/old_report.sql", 2,
            "FL008")} <= found(result.findings, PACKAGED)  # fmt: skip


def test_warehouse_models_exit_0_and_are_listed(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["lint", "--project-dir", str(PACKAGED), "--ignore", "FL003"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "orders_narrow.sql: not checked: calendar_utils.star_except needs the warehouse" in out
    assert out.splitlines()[-1] == (
        "flower lint: no problems (14 models, 4 properties files checked; 3 disabled, "
        "2 need the warehouse, not checked)"
    )


def test_package_macros_render_with_dispatch_and_keyword_arguments() -> None:
    project = load_project(PACKAGED)
    duckdb = Linter(project, "duckdb").analyse("calendar")
    spark = Linter(project, "spark").analyse("calendar")
    assert duckdb.rendered is not None and spark.rendered is not None
    # duckdb__date_spine for duckdb, default__date_spine (calling a sibling macro) for spark
    assert "from range(cast('2024-01-01' as date)" in duckdb.rendered.sql
    assert "explode(sequence(to_date('2024-01-01'), to_date('2024-12-31')))" in spark.rendered.sql
    by_day = Linter(project).analyse("orders_by_day")
    assert by_day.error is None and by_day.rendered is not None
    assert "date_diff('day', days.calendar_day, current_date) as days_ago" in by_day.rendered.sql
    # a macro whose name starts with `_` (Jinja would not export it from a module)
    pivot = Linter(project).analyse("payments_pivot").rendered
    assert pivot is not None and "as card_amount," in pivot.sql
    # dbt_project.yml's vars are rendered too (target and modules.datetime)
    recent = Linter(project).analyse("recent_orders").rendered
    assert recent is not None and "date '2024-06-01'" in recent.sql


def test_refs_to_seeds_resolve_without_packages(tmp_path: Path) -> None:
    # The tutorial case: staging models read seeds; no packages.yml.
    project = tmp_path / "shop"
    (project / "models").mkdir(parents=True)
    (project / "seeds").mkdir()
    (project / "dbt_project.yml").write_text("name: shop\n")
    (project / "seeds" / "raw_orders.csv").write_text("id\n1\n")
    (project / "models" / "stg_orders.sql").write_text("select * from {{ ref('raw_orders') }}\n")
    (project / "models" / "stg_typo.sql").write_text("select * from {{ ref('raw_order') }}\n")
    result = lint_project(project, selection=selection_from({"ignore": ["FL006"]}, None, "t"))
    assert found(result.findings, project) == {("models/stg_typo.sql", 1, "FL003")}


def test_project_configuration_selects_rules() -> None:
    # The fixture's pyproject ignores FL006; without it every model would have FL006.
    everything = lint_project(PACKAGED, selection=selection_from({}, PACKAGED, "t"))
    assert "FL006" in {finding.rule for finding in everything.findings}
    per_file = selection_from(
        {"ignore": ["FL006"], "per-file-ignores": {"models/marts/bad_*.sql": ["FL003"]}},
        PACKAGED,
        "t",
    )
    assert lint_project(PACKAGED, selection=per_file).findings == []
    only = selection_from({"select": ["FL008"]}, PACKAGED, "t")
    assert lint_project(PACKAGED, selection=only).findings == []
    with pytest.raises(LintError, match="unknown rule code 'FL009'"):
        selection_from({"ignore": ["FL009"]}, None, "pyproject.toml [tool.flower.lint]")


def test_flower_yaml_lint_section_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    project = shutil.copytree(PACKAGED, tmp_path / "packaged_project")
    (project / "pyproject.toml").unlink()
    (tmp_path / "flower.yaml").write_text(
        "dbt:\n  project_dir: packaged_project\n"
        "lint:\n  ignore: [FL006]\n  per_file_ignores:\n    bad_ref_typo.sql: [FL003]\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOWER_SETTINGS_FILE", raising=False)
    monkeypatch.delenv("FLOWER_DBT_PROJECT_DIR", raising=False)
    assert main(["lint"]) == 1
    out = capsys.readouterr().out
    assert "bad_package_ref.sql:1:41 FL003" in out and "bad_ref_typo" not in out
    (tmp_path / "flower.yaml").write_text(
        "dbt:\n  project_dir: packaged_project\nlint:\n  select: [FL0X]\n"
    )
    assert main(["lint"]) == 2
    assert "unknown rule code 'FL0X'" in capsys.readouterr().err


def test_a_misspelt_grain_is_reported_at_its_key_with_its_own_hint(tmp_path: Path) -> None:
    project = shutil.copytree(DEMO_DBT_PROJECT_DIR, tmp_path / "dbt_project")
    properties = project / "models" / "marts" / "agg_weekly_active_users.yml"
    text = properties.read_text()
    line = text.splitlines().index("          partition: weekly") + 1
    properties.write_text(text.replace("partition: weekly", "partition: weekely"))
    result = lint_project(project)
    assert [(f.path, f.line, f.rule) for f in result.findings] == [(properties, line, "FL002")]
    assert result.findings[0].hint == (
        "write one of hourly, daily, weekly, monthly as meta.flower.partition "
        "(did you mean 'weekly'?)"
    )


def test_config_findings_of_fl002_give_their_own_fix() -> None:
    broken = FIXTURES / "broken_project"
    result = lint_project(broken, paths=[broken / "models/marts/bad_partition_table.sql"])
    [finding] = result.findings
    assert finding.rule == "FL002" and "materialized 'table'" in finding.message
    assert finding.hint.startswith("set materialized: incremental")
