"""Which rules run where: `select`, `ignore` and `per-file-ignores`, as ruff reads them.

A project chooses its rules in its own configuration, so that a team adopting flower-dagster
gradually can leave out what does not fit yet (FL006's one-properties-file convention, say):

- `[tool.flower.lint]` in the pyproject.toml nearest to the dbt project (its folder or above);
- or the `lint:` section of flower.yaml, when that file's `dbt.project_dir` is the project.

A selector is a rule code (`FL006`), a prefix of codes (`FL00`, `FL`) or `ALL`; a selector that
names no rule is an error, so a typo does not silently switch nothing off. `per-file-ignores`
maps path globs (relative to the configuration file's folder, or a bare file name) to the rules
ignored in matching files. `--select`/`--ignore` on the command line win over the file.
"""

from __future__ import annotations

import fnmatch
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flower_dagster.lint.errors import LintError
from flower_dagster.lint.findings import RULES, Finding

MODEL_RULES = tuple(code for code in RULES if code.startswith("FL"))


def expand(selectors: Iterable[str], where: str) -> set[str]:
    """The rule codes that selectors name; LintError for one that names none."""
    codes: set[str] = set()
    for selector in selectors:
        wanted = str(selector).strip().upper()
        matched = set(RULES) if wanted == "ALL" else {c for c in RULES if c.startswith(wanted)}
        if not wanted or not matched:
            raise LintError(
                f"{where}: unknown rule code {selector!r}; known: {', '.join(RULES)} "
                "(or a prefix such as FL, or ALL)"
            )
        codes |= matched
    return codes


@dataclass(frozen=True)
class RuleSelection:
    """The rules in force, and the ones ignored per path glob."""

    selected: frozenset[str] = frozenset(RULES)
    per_file_ignores: tuple[tuple[str, frozenset[str]], ...] = ()
    base: Path | None = None  # the folder the globs are relative to
    source: str = "defaults"
    _cache: dict[Path, frozenset[str]] = field(default_factory=dict, compare=False, repr=False)

    def ignored_in(self, path: Path) -> frozenset[str]:
        if path not in self._cache:
            ignored: set[str] = set()
            relative = _relative(path, self.base)
            for pattern, codes in self.per_file_ignores:
                if fnmatch.fnmatchcase(relative, pattern) or fnmatch.fnmatchcase(
                    path.name, pattern
                ):
                    ignored |= codes
            self._cache[path] = frozenset(ignored)
        return self._cache[path]

    def apply(self, findings: Iterable[Finding], root: Path) -> list[Finding]:
        return [
            finding
            for finding in findings
            if finding.rule in self.selected and finding.rule not in self.ignored_in(finding.path)
        ]


def selection_from(
    config: Mapping[str, Any],
    base: Path | None,
    source: str,
    cli_select: Sequence[str] = (),
    cli_ignore: Sequence[str] = (),
) -> RuleSelection:
    """A selection from a configuration mapping (`select`, `ignore`, `per-file-ignores`)."""
    unknown = set(config) - {"select", "ignore", "per-file-ignores", "per_file_ignores"}
    if unknown:
        raise LintError(
            f"{source}: unknown key {sorted(unknown)[0]!r}; allowed: select, ignore, "
            "per-file-ignores"
        )
    if cli_select:
        selected = expand(cli_select, "--select")
    else:
        select = _list(config.get("select"), f"{source}: select")
        selected = expand(select, f"{source}: select") if select else set(RULES)
    selected -= expand(_list(config.get("ignore"), f"{source}: ignore"), f"{source}: ignore")
    selected -= expand(cli_ignore, "--ignore")
    per_file = config.get("per-file-ignores", config.get("per_file_ignores")) or {}
    if not isinstance(per_file, Mapping):
        raise LintError(f"{source}: per-file-ignores must map path globs to lists of rule codes")
    per_file_ignores = tuple(
        (
            str(pattern),
            frozenset(expand(_list(codes, f"{source}: per-file-ignores"), source)),
        )
        for pattern, codes in per_file.items()
    )
    return RuleSelection(frozenset(selected), per_file_ignores, base, source)


def find_pyproject_config(project_root: Path) -> tuple[Path, Mapping[str, Any]] | None:
    """The nearest pyproject.toml (project folder or above) with a [tool.flower.lint] table."""
    for folder in (project_root, *project_root.parents):
        path = folder / "pyproject.toml"
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as error:
            raise LintError(f"{path}: invalid TOML: {error}") from None
        table = data.get("tool", {}).get("flower", {}).get("lint")
        if table is not None:
            if not isinstance(table, Mapping):
                raise LintError(f"{path}: [tool.flower.lint] must be a table")
            return path, table
    return None


def load_selection(
    project_root: Path,
    settings_lint: Mapping[str, Any] | None = None,
    settings_file: Path | None = None,
    cli_select: Sequence[str] = (),
    cli_ignore: Sequence[str] = (),
) -> RuleSelection:
    """The project's rule selection: flower.yaml's `lint:` or pyproject's [tool.flower.lint]."""
    found = find_pyproject_config(project_root)
    if settings_lint is not None and found is not None:
        raise LintError(
            f"the lint rules are configured twice, in {found[0]} ([tool.flower.lint]) and in "
            f"{settings_file} (lint:): keep one"
        )
    if settings_lint is not None:
        base = settings_file.parent if settings_file else project_root
        return selection_from(
            settings_lint, base, f"{settings_file or 'flower.yaml'} lint", cli_select, cli_ignore
        )
    if found is not None:
        path, table = found
        return selection_from(
            table, path.parent, f"{path} [tool.flower.lint]", cli_select, cli_ignore
        )
    return selection_from({}, project_root, "the command line", cli_select, cli_ignore)


def _list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(item) for item in value]
    raise LintError(f"{where} must be a list of rule codes, e.g. [FL001, FL003]")


def _relative(path: Path, base: Path | None) -> str:
    if base is not None:
        try:
            return path.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            pass
    return path.as_posix()
