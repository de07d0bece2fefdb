"""The `flower lint` subcommand: argument parsing and exit codes (0 clean, 1 found, 2 usage)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from flower_dagster.lint.report import FORMATS

if TYPE_CHECKING:
    from flower_dagster.lint.selection import RuleSelection

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
        "--vars",
        metavar="YAML",
        default=None,
        help="dbt vars as YAML, as dbt's --vars (they decide which models are enabled)",
    )
    lint.add_argument(
        "--select",
        metavar="CODES",
        default=None,
        help="comma-separated rule codes or prefixes to run (default: the project's "
        "configuration, else all)",
    )
    lint.add_argument(
        "--ignore",
        metavar="CODES",
        default=None,
        help="comma-separated rule codes or prefixes not to run",
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
        settings = _settings(required=args.project_dir is None)
        project_dir = args.project_dir or settings.dbt_project_dir  # type: ignore[union-attr]
        selection = _selection(Path(project_dir), settings, args.select, args.ignore)
        result = lint_project(
            project_dir,
            args.paths,
            args.changed_since,
            args.dialect,
            cli_vars=_vars(args.vars),
            selection=selection,
        )
        print(render(result.findings, args.output_format, result.checked, result.not_checked))
        return 1 if result.findings else 0
    print(render(findings, args.output_format, checked))
    return 1 if findings else 0


def _settings(required: bool) -> Any:
    """flower.yaml's settings; without --project-dir they must load, with it only if present."""
    from flower_dagster.settings import SETTINGS_FILE_NAME, SETTINGS_FILE_VARIABLE, load_settings

    if required or os.environ.get(SETTINGS_FILE_VARIABLE) or Path(SETTINGS_FILE_NAME).is_file():
        return load_settings()
    return None


def _selection(
    project_dir: Path, settings: Any, select: str | None, ignore: str | None
) -> RuleSelection:
    """The rules in force: flower.yaml's `lint:` counts for the project it names."""
    from flower_dagster.lint.selection import load_selection

    settings_lint = None
    settings_file = None
    if (
        settings is not None
        and settings.lint is not None
        and Path(settings.dbt_project_dir).resolve() == project_dir.resolve()
    ):
        settings_lint = settings.lint.model_dump()
        settings_file = settings.source
    return load_selection(
        project_dir,
        settings_lint,
        settings_file,
        _codes(select),
        _codes(ignore),
    )


def _codes(value: str | None) -> list[str]:
    return [code for code in (value or "").replace(" ", ",").split(",") if code]


def _vars(text: str | None) -> dict[str, Any]:
    from flower_dagster.lint.errors import LintError

    if not text:
        return {}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise LintError(f"--vars is not YAML: {error}") from None
    if not isinstance(data, dict):
        raise LintError("--vars must be a YAML mapping, e.g. '{enable_legacy: true}'")
    return data


def _find_template() -> Path:
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / DEFAULT_TEMPLATE).is_file():
            return folder / DEFAULT_TEMPLATE
    return here / DEFAULT_TEMPLATE
