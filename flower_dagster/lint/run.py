"""One lint of a dbt project: which models and files to check, the rules, `-- noqa`.

With no paths and no `--changed-since`, every model and properties file is checked. Paths (files
or folders) and changed files narrow it: a model is checked when its SQL or its properties file
is among them, a properties file's YAML when it is. A changed macro or dbt_project.yml can
change how any model renders, so it selects the whole project.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flower_dagster.lint.errors import LintError
from flower_dagster.lint.findings import Finding
from flower_dagster.lint.noqa import apply_noqa
from flower_dagster.lint.project import Project, load_project
from flower_dagster.lint.selection import RuleSelection, load_selection


@dataclass(frozen=True)
class LintResult:
    findings: list[Finding]
    models_checked: int
    files_checked: int
    disabled: int = 0  # models whose `enabled` is false: dbt does not build them
    # (model file, "<macro> needs the warehouse"): models whose SQL only a warehouse can render
    not_checked: tuple[tuple[Path, str], ...] = ()

    @property
    def checked(self) -> str:
        text = f"{self.models_checked} models, {self.files_checked} properties files checked"
        skipped = []
        if self.disabled:
            skipped.append(f"{self.disabled} disabled")
        if self.not_checked:
            skipped.append(
                f"{len(self.not_checked)} need{'s' if len(self.not_checked) == 1 else ''} "
                "the warehouse"
            )
        return f"{text}; {', '.join(skipped)}, not checked" if skipped else text


def lint_project(
    project_dir: Path,
    paths: Sequence[Path] = (),
    changed_since: str | None = None,
    dialect: str = "duckdb",
    cli_vars: Mapping[str, Any] | None = None,
    selection: RuleSelection | None = None,
) -> LintResult:
    """Lint a project (or the part `paths`/`changed_since` select) with the selected rules."""
    from flower_dagster.lint.rules import Linter

    project = load_project(project_dir, cli_vars)
    selected = _selection(project, paths, changed_since)
    models = sorted(
        name
        for name, model in project.models.items()
        if selected is None
        or model.path in selected
        or (model.properties is not None and model.properties.path in selected)
    )
    yaml_paths = {
        yaml_file.path
        for yaml_file in project.yaml_files
        if selected is None or yaml_file.path in selected
    }
    if selected is None or project.root / "dbt_project.yml" in selected:
        yaml_paths.add(project.root / "dbt_project.yml")
    linter = Linter(project, dialect)
    findings = [finding for finding in project.findings if finding.path in yaml_paths]
    disabled = 0
    not_checked: list[tuple[Path, str]] = []
    for name in models:
        findings += linter.lint_model(name)
        analysis = linter.analyse(name)
        if analysis.disabled:
            disabled += 1
        elif analysis.needs_warehouse:
            not_checked.append((analysis.model.path, analysis.needs_warehouse))
    if selection is None:  # called as a library: the project's own configuration, if any
        selection = load_selection(project.root)
    findings = selection.apply(findings, project.root)
    return LintResult(
        sorted(set(apply_noqa(findings))),
        len(models) - disabled - len(not_checked),
        len(yaml_paths),
        disabled,
        tuple(sorted(not_checked)),
    )


def _selection(
    project: Project, paths: Sequence[Path], changed_since: str | None
) -> set[Path] | None:
    """The files to check, or None for the whole project."""
    if not paths and changed_since is None:
        return None
    files: set[Path] = set()
    for path in paths:
        if not path.exists():
            raise LintError(f"{path}: no such file or folder")
        resolved = path.resolve()
        if resolved == project.root:
            return None
        if resolved.is_dir():
            files.update(p.resolve() for p in resolved.rglob("*") if p.is_file())
        else:
            files.add(resolved)
    if changed_since is not None:
        from flower_dagster.lint.git import changed_files

        changed = set(changed_files(changed_since, project.root))
        everything = {project.root / "dbt_project.yml"}
        for macro_path in project.macro_paths:
            everything.update(path for path in changed if path.is_relative_to(macro_path.resolve()))
        if changed & everything:
            return None
        files = files | changed if paths else changed
    return files
