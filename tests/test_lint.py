"""`flower lint`: the demo project lints clean, every broken model is found at its line.

No dbt runs here: the linter reads files, renders Jinja itself and parses with sqlglot, so the
whole file takes seconds. Broken models live in tests/fixtures/lint/broken_project, each marked
with the findings it must produce (`-- expect: FL001` on the line); a vendored copy of
dbt-labs/jaffle-shop checks a real public project.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from bench.generate_project import generate_project
from flower_dagster.cli import _parser, main
from flower_dagster.lint import sql
from flower_dagster.lint.findings import RULES, Finding
from flower_dagster.lint.noqa import silenced_rules
from flower_dagster.lint.pr_body import check_pr_body
from flower_dagster.lint.render import Renderer
from flower_dagster.lint.report import escape_data, escape_property, github_line
from flower_dagster.lint.rules import GRAIN_RANK
from flower_dagster.lint.run import lint_project
from flower_dagster.partitions import Grain
from flower_dagster.settings import DEMO_DBT_PROJECT_DIR, REPO_ROOT
from tests.conftest import copy_demo_project

FIXTURES = Path(__file__).parent / "fixtures" / "lint"
BROKEN = FIXTURES / "broken_project"
JAFFLE = FIXTURES / "jaffle_shop"
TEMPLATE = REPO_ROOT / ".github" / "pull_request_template.md"
_EXPECT = re.compile(r"(?:--|#)[^\n]*?expect:\s*(?P<rules>[A-Z0-9, ]+)")


def expected_findings(project: Path) -> set[tuple[str, int, str]]:
    """(file, line, rule) for every `expect: RULE` comment of a fixture project."""
    expected = set()
    for path in sorted(project.rglob("*")):
        if path.suffix not in (".sql", ".yml"):
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = _EXPECT.search(line)
            if match:
                for rule in match.group("rules").replace(",", " ").split():
                    expected.add((path.relative_to(project).as_posix(), number, rule))
    return expected


def found(findings: list[Finding], project: Path) -> set[tuple[str, int, str]]:
    return {(f.path.relative_to(project).as_posix(), f.line, f.rule) for f in findings}


# -- the demo project and the broken models ---------------------------------------------------


def test_demo_project_lints_clean(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["lint", "--project-dir", str(DEMO_DBT_PROJECT_DIR)])
    out = capsys.readouterr().out
    assert code == 0, out
    models = len(list((DEMO_DBT_PROJECT_DIR / "models").rglob("*.sql")))
    assert f"no problems ({models} models" in out


def test_every_broken_model_is_reported_with_its_rule_and_line() -> None:
    expected = expected_findings(BROKEN)
    # The fixtures cover every model rule, and their good twins (good_*) have no expectation.
    assert {rule for _, _, rule in expected} == {f"FL00{n}" for n in range(1, 9)}
    result = lint_project(BROKEN)
    assert found(result.findings, BROKEN) == expected
    assert result.models_checked == len(list((BROKEN / "models").rglob("*.sql")))


def test_broken_project_exits_1_and_prints_file_line_col_rule_hint(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(BROKEN)
    assert main(["lint", "--project-dir", ".", "models/marts/bad_no_window.sql"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (
        "models/marts/bad_no_window.sql:6:14 FL001 reads partitioned 'fct_events' (daily) "
        "without the partition window: filter it with flower_in_window('event_date') "
        f"(hint: {RULES['FL001'].hint})"
    )
    assert out[-1].startswith("flower lint: 1 problem in 1 file (1 models")


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["lint", "--project-dir", str(BROKEN), str(tmp_path / "nothing.sql")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["lint", "--project-dir", str(tmp_path)]) == 2
    assert "flower: " in capsys.readouterr().err
    assert main(["lint", "--project-dir", str(BROKEN), "--dialect", "no-such-sql"]) == 2
    with pytest.raises(SystemExit) as exit_info:
        main(["lint", "--format", "xml"])
    assert exit_info.value.code == 2


def test_noqa_comments() -> None:
    assert silenced_rules("from x  -- noqa") == set()
    assert silenced_rules("from x  -- noqa: FL001, fl003") == {"FL001", "FL003"}
    assert silenced_rules("  - name: a  # noqa: FL006") == {"FL006"}
    assert silenced_rules("from x  -- no qa here") is None


def test_dialect_picks_the_parser(tmp_path: Path) -> None:
    project = tmp_path / "spark_project"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: spark_project\n")
    (project / "models" / "m.sql").write_text(
        "select `order id`, named_struct('a', 1) as s from {{ ref('m2') }}\n"
    )
    (project / "models" / "m2.sql").write_text("select 1 as x\n")
    by_dialect = {
        dialect: {f.rule for f in lint_project(project, dialect=dialect).findings}
        for dialect in ("duckdb", "spark")
    }
    assert "FL008" in by_dialect["duckdb"]
    assert by_dialect["spark"] == {"FL006"}  # only the missing properties files


# -- rendering and SQL helpers ---------------------------------------------------------------


def test_rendering_keeps_the_lines_of_the_file() -> None:
    renderer = Renderer("p", [], {})
    template = (
        "{{\n  config(materialized='incremental')\n}}\n"  # lines 1-3
        "{% for c in ['a', 'b'] %}\n{{ c }},\n{% endfor %}\n"  # lines 4-6
        "select * from {{ ref('parent') }}\n"  # line 7
        "where {{ flower_in_window('day') }}\n"  # line 8
    )
    rendered = renderer.render("m", template, {})
    assert rendered.config == {"materialized": "incremental"}
    marker = next(m for m, call in rendered.relations.items() if call.name == "parent")
    assert rendered.position(rendered.sql.index(marker))[0] == 7
    assert rendered.position(rendered.sql.index("flower_in_window(day)"))[0] == 8
    assert rendered.window_calls == 1


def test_cte_scopes_and_final_columns() -> None:
    import sqlglot

    tree = sqlglot.parse_one(
        "with recursive t as (select 1 as n union all select n + 1 from t), "
        "u as (select * from t) select u.*, 2 as last_one from u",
        read="duckdb",
    )
    tables = {table.name: table for table in sql.relations(tree)}
    assert sql.visible_cte(tables["t"]) is not None  # recursive: visible in its own body
    columns = sql.final_columns(tree)
    assert [column.name for column in columns or []] == ["n", "last_one"]


def test_grain_order_matches_the_partitions_module() -> None:
    assert sorted(GRAIN_RANK, key=GRAIN_RANK.get) == sorted(
        (g.value for g in Grain), key=lambda value: Grain(value).rank
    )


# -- outputs -------------------------------------------------------------------------------


_ANNOTATION = re.compile(
    r"^::error file=(?P<file>[^,:]+),line=(?P<line>\d+),col=(?P<col>\d+),"
    r"title=(?P<title>[^,:]+)::(?P<message>[^\r\n]+)$"
)


def test_github_format_matches_the_workflow_command_syntax(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(BROKEN)
    assert main(["lint", "--project-dir", ".", "--format", "github"]) == 1
    lines = capsys.readouterr().out.splitlines()
    annotations = [_ANNOTATION.match(line) for line in lines[:-1]]
    assert all(annotations), [line for line, m in zip(lines, annotations, strict=False) if not m]
    assert len(annotations) == len(expected_findings(BROKEN))
    files = {m.group("file") for m in annotations if m}
    assert all((BROKEN / file).is_file() for file in files)
    assert not lines[-1].startswith("::")


def test_github_escaping() -> None:
    assert escape_data("50%\r\nnext") == "50%25%0D%0Anext"
    assert escape_property("a:b,c%") == "a%3Ab%2Cc%25"
    finding = Finding(Path("/x/models/a,b.sql"), 3, 4, "FL003", "two\nlines: 100%")
    line = github_line(finding, base=Path("/x"))
    assert line.startswith("::error file=models/a%2Cb.sql,line=3,col=4,title=FL003 ")
    assert "two%0Alines: 100%25" in line and "\n" not in line


def test_json_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lint", "--project-dir", str(BROKEN), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["count"] == len(data["findings"]) == len(expected_findings(BROKEN))
    assert {"path", "line", "col", "rule", "title", "message", "hint"} <= set(data["findings"][0])


# -- a real public project -----------------------------------------------------------------


def test_jaffle_shop_lints_without_crashing_and_reports_only_real_findings() -> None:
    result = lint_project(JAFFLE)
    models = sorted(path.stem for path in (JAFFLE / "models").rglob("*.sql"))
    assert result.models_checked == len(models) == 13
    by_rule: dict[str, set[str]] = {}
    for finding in result.findings:
        by_rule.setdefault(finding.rule, set()).add(finding.message)
    # At the vendored commits: two models miss a parenthesis in ref(, no model has an owner,
    # the time spine has no description. Nothing else (no false FL001-FL005, FL007).
    assert set(by_rule) == {"FL006", "FL008"}
    assert found([f for f in result.findings if f.rule == "FL008"], JAFFLE) == {
        ("models/marts/products.sql", 5, "FL008"),
        ("models/marts/supplies.sql", 5, "FL008"),
    }
    assert by_rule["FL006"] == {
        f"model '{name}' has no owner (config.meta.owner or a group's owner)" for name in models
    } | {"model 'metricflow_time_spine' has no description"}


def test_a_generated_flower_project_has_no_false_findings(tmp_path: Path) -> None:
    counts = generate_project(tmp_path / "bench", 120)
    result = lint_project(tmp_path / "bench")
    assert result.models_checked == sum(counts.values()) == 120
    # The generator writes no owner and no description: that is all there is to find.
    assert {finding.rule for finding in result.findings} == {"FL006"}


# -- --changed-since against a real git history ----------------------------------------------


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def test_changed_since_lints_only_what_the_branch_changed(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    project = copy_demo_project(repo / "dbt_project")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "base")
    _git(repo, "checkout", "-q", "-b", "feature")
    marts = project / "models" / "marts"
    # Committed on the branch: a hard-coded relation in dim_users.
    dim_users = marts / "dim_users.sql"
    dim_users.write_text(dim_users.read_text().replace("{{ ref('stg_users') }}", "raw.users"))
    _git(repo, "commit", "-qam", "feature: read raw users")
    # Not committed: fct_sessions' properties lose their owner; a new model is untracked.
    sessions = marts / "fct_sessions.yml"
    sessions.write_text(sessions.read_text().replace("        owner: growth\n", ""))
    (marts / "fct_new.sql").write_text("select * from {{ ref('fct_orders') }}\n")
    # Meanwhile on main: a broken model the branch did not touch is not this PR's problem.
    _git(repo, "stash", "-q", "-u")
    _git(repo, "checkout", "-q", "main")
    weekly = marts / "agg_weekly_revenue.sql"
    weekly.write_text(weekly.read_text().replace("{{ ref('fct_orders') }}", "analytics.orders"))
    _git(repo, "commit", "-qam", "main: unrelated change")
    _git(repo, "checkout", "-q", "feature")
    _git(repo, "stash", "pop", "-q")

    result = lint_project(project, changed_since="main")
    assert result.models_checked == 3  # dim_users, fct_sessions (by its yml), fct_new
    assert found(result.findings, project) == {
        ("models/marts/dim_users.sql", 5, "FL003"),
        ("models/marts/fct_sessions.yml", 2, "FL006"),
        ("models/marts/fct_new.sql", 1, "FL006"),
    }
    # A changed macro can change every model: the whole project is linted.
    (project / "macros" / "flower" / "extra.sql").write_text("{% macro x() %}1{% endmacro %}\n")
    assert lint_project(project, changed_since="main").models_checked == len(
        list((project / "models").rglob("*.sql"))
    )
    with pytest.raises(Exception, match="no merge base"):
        lint_project(project, changed_since="no-such-branch")


# -- the PR description ----------------------------------------------------------------------


FILLED = """## What changed and why
fct_refunds: refunds by day, for the finance dashboard.

## Models touched
- `fct_refunds` (daily, new)

## Partitions to backfill
fct_refunds 2024-01-01..2024-03-31

## Query result checked
select count(*) from fct_refunds where refund_date = '2024-01-09' -> 412 rows, as in raw.

- [x] I ran the changed models on a partition and looked at the rows they wrote
"""


def test_pr_body_filled_passes_and_the_bare_template_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    filled = tmp_path / "filled.md"
    filled.write_text(FILLED)
    assert main(["lint", "--pr-body", str(filled), "--pr-template", str(TEMPLATE)]) == 0
    capsys.readouterr()
    empty = tmp_path / "empty.md"
    shutil.copy(TEMPLATE, empty)
    assert main(["lint", "--pr-body", str(empty), "--pr-template", str(TEMPLATE)]) == 1
    out = capsys.readouterr().out
    assert out.count("PR002") == 4


def test_pr_body_missing_section_and_unticked_box(tmp_path: Path) -> None:
    body = tmp_path / "body.md"
    body.write_text(
        FILLED.replace("## Partitions to backfill\nfct_refunds 2024-01-01..2024-03-31\n", "")
        .replace("[x]", "[ ]")
        .replace("## What changed and why\n", "## What changed and why\n\n<!-- x -->\n")
    )
    findings = check_pr_body(body, TEMPLATE)
    assert [(f.rule, f.message) for f in findings] == [
        ("PR001", "section 'Partitions to backfill' is missing"),
        (
            "PR003",
            "section 'Query result checked': 'I ran the changed models on a partition and "
            "looked at the rows they wrote' is not ticked",
        ),
    ]


# -- CI, pre-commit and make: every step is something these tests can run ----------------------


def _make_targets() -> set[str]:
    text = (REPO_ROOT / "Makefile").read_text()
    return set(re.findall(r"^([a-z][a-z0-9-]*):", text, re.M))


def test_workflow_steps_are_make_targets_or_flower_commands() -> None:
    workflows = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
    assert {path.name for path in workflows} >= {"pr.yml", "main.yml"}
    targets = _make_targets()
    commands = _parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    runs: list[str] = []
    for path in workflows:
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            runs += [step["run"] for step in job["steps"] if "run" in step]
    used_targets = {t for run in runs for t in re.findall(r"\bmake ([a-z][a-z0-9-]*)", run)}
    used_commands = {c for run in runs for c in re.findall(r"\bflower ([a-z]+)", run)}
    assert {"lint-models", "pr-body", "ci-build-modified"} <= used_targets
    assert used_targets <= targets, used_targets - targets
    assert used_commands <= set(commands), used_commands - set(commands)


def test_pre_commit_hook_runs_flower_lint() -> None:
    hooks = yaml.safe_load((REPO_ROOT / ".pre-commit-hooks.yaml").read_text())
    hook = next(h for h in hooks if h["id"] == "flower-lint")
    assert hook["entry"].split()[:2] == ["flower", "lint"]
    assert hook["language"] == "python"
    assert re.search(hook["files"], "models/marts/fct_orders.sql")
    assert re.search(hook["files"], "models/marts/fct_orders.yml")
    assert not re.search(hook["files"], "flower_dagster/cli.py")
