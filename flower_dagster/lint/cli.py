"""The `flower lint` subcommand: argument parsing and exit codes (0 clean, 1 found, 2 usage)."""

from __future__ import annotations

import argparse
from pathlib import Path

from flower_dagster.lint.report import FORMATS

DEFAULT_TEMPLATE = Path(".github") / "pull_request_template.md"


def register(commands: argparse._SubParsersAction) -> None:
    """Add `lint` to the `flower` command's subcommands."""
    lint = commands.add_parser(
        "lint",
        help="check models (partition window, partition column, ref/source, ...) and PR bodies",
        description=(
            "Check the dbt project's models against the team's review rules FL001..FL008 "
            "(docs/lint.md), or with --pr-body a PR description against the PR template. "
            "Exit 0 when clean, 1 when something is found, 2 on a usage error."
        ),
    )
    lint.add_argument(
        "paths",
        metavar="PATH",
        nargs="*",
        type=Path,
        help="model or properties files, or folders, to check (default: the whole project)",
    )
    lint.add_argument(
        "--changed-since",
        metavar="REF",
        help="check only what changed since the merge base of REF (e.g. origin/main)",
    )
    lint.add_argument("--format", choices=FORMATS, default="text", dest="output_format")
    lint.add_argument(
        "--dialect", default="duckdb", help="sqlglot SQL dialect of the models (default duckdb)"
    )
    lint.add_argument(
        "--project-dir",
        type=Path,
        default=None,
        help="the dbt project (default: flower.yaml's dbt.project_dir)",
    )
    lint.add_argument(
        "--pr-body",
        metavar="FILE",
        type=Path,
        help="check this PR description against the PR template instead of the models",
    )
    lint.add_argument(
        "--pr-template",
        metavar="FILE",
        type=Path,
        default=None,
        help=f"the PR template (default: {DEFAULT_TEMPLATE} of the git repository or cwd)",
    )
    lint.set_defaults(handler=run_lint)


def run_lint(args: argparse.Namespace) -> int:
    from flower_dagster.lint.report import render

    if args.pr_body is not None:
        from flower_dagster.lint.pr_body import check_pr_body

        template = args.pr_template or _find_template()
        findings = check_pr_body(args.pr_body, template)
        checked = f"PR description against {template.name}"
    else:
        import sqlglot.dialects

        from flower_dagster.lint.errors import LintError
        from flower_dagster.lint.run import lint_project

        if args.dialect not in {str(d.value) for d in sqlglot.dialects.Dialects if d.value}:
            raise LintError(f"--dialect {args.dialect!r} is not a sqlglot dialect")
        project_dir = args.project_dir or _settings_project_dir()
        result = lint_project(project_dir, args.paths, args.changed_since, args.dialect)
        findings, checked = result.findings, result.checked
    print(render(findings, args.output_format, checked))
    return 1 if findings else 0


def _settings_project_dir() -> Path:
    from flower_dagster.settings import load_settings

    return load_settings().dbt_project_dir


def _find_template() -> Path:
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / DEFAULT_TEMPLATE).is_file():
            return folder / DEFAULT_TEMPLATE
    return here / DEFAULT_TEMPLATE
