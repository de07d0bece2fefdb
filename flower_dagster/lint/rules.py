"""The lint rules: each model's rendered, parsed SQL and its config in, findings out.

FL001 partition window        FL005 finer than a partitioned parent
FL002 partition column        FL006 owner, description, own properties file
FL003 relation without ref    FL007 YAML problem or conflict (read in project.py)
FL004 ephemeral misuse        FL008 cannot parse (Jinja or SQL)

Each rule is one function registered under its code with `@model_rule` (its title and fix hint
are the catalog entry of that code, findings.RULES); a new rule is a new function, nothing else
changes. A `Linter` renders and parses each model once (a model's ephemeral parents are analysed
when a child needs them) and runs every registered rule over it. FL007 is found while reading
the project's YAML (project.py), not per model. docs/lint.md shows each rule's wrong and right
form.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlglot
from sqlglot import exp

from flower_dagster.lint import sql
from flower_dagster.lint.findings import RULES, Finding, Rule
from flower_dagster.lint.project import Model, Project, merge_config
from flower_dagster.lint.render import (
    MACRO_PREFIX,
    REF_PREFIX,
    SOURCE_PREFIX,
    THIS_MARKER,
    NeedsWarehouse,
    RelationCall,
    Rendered,
    Renderer,
    RenderError,
)

# The grains of flower_dagster.partitions.Grain, finest first (kept here so that linting does
# not import Dagster; tests/test_lint.py checks that both agree).
GRAIN_RANK = {"hourly": 0, "daily": 1, "weekly": 2, "monthly": 3}
PARTITIONABLE = "incremental"
# The rules that read a model's SQL: not run on a model whose SQL needs the warehouse.
SQL_RULES = frozenset({"FL001", "FL002", "FL003", "FL004", "FL005", "FL008"})
# Configs dbt renders when the model runs, not when it reads the project.
_RUNTIME_CONFIGS = frozenset({"pre-hook", "post-hook", "pre_hook", "post_hook", "sql_header"})


def enabled(config: Mapping[str, Any]) -> bool:
    """dbt's `enabled` config: true unless it says false (a string "false" as YAML reads it)."""
    value = config.get("enabled", True)
    if isinstance(value, str):
        return value.strip().lower() not in ("false", "no", "off", "0")
    return value is None or bool(value)


@dataclass(frozen=True)
class Flower:
    """A model's partitioning as its config states it."""

    grain: str | None  # lower case, as written
    partition_column: str | None
    materialized: str | None

    @property
    def partitioned(self) -> bool:
        return self.grain is not None

    @property
    def rank(self) -> int | None:
        return GRAIN_RANK.get(self.grain or "")


def flower_of(config: Mapping[str, Any]) -> Flower:
    meta = config.get("meta") or {}
    flower = meta.get("flower") if isinstance(meta, Mapping) else None
    flower = flower if isinstance(flower, Mapping) else {}
    grain = flower.get("partition")
    column = flower.get("partition_column")
    return Flower(
        str(grain).lower() if grain else None,
        str(column).strip() if column else None,
        str(config.get("materialized")) if config.get("materialized") else None,
    )


@dataclass
class Analysis:
    model: Model
    config: dict[str, Any]
    rendered: Rendered | None = None
    tree: exp.Expression | None = None
    error: Finding | None = None
    disabled: bool = False  # `enabled` is false: dbt does not build it, lint does not check it
    needs_warehouse: str | None = None  # "<macro> needs the warehouse": its SQL is not checked

    @property
    def flower(self) -> Flower:
        return flower_of(self.config)

    def reads(self) -> Iterator[tuple[RelationCall, exp.Table]]:
        """Each ref()/source() relation read in a FROM/JOIN, with its call."""
        if self.tree is None or self.rendered is None:
            return
        for table in sql.relations(self.tree):
            call = self.rendered.relations.get(table.name)
            if call is not None and not table.args.get("db"):
                yield call, table


# One check of the registry: a model's analysis in, its findings out.
Check = Callable[["Linter", Analysis], list[Finding]]


@dataclass(frozen=True)
class ModelRule:
    """A registered rule: its catalog entry (code, title, fix hint) and its check."""

    rule: Rule
    check: Check


# The model rules in code order, filled by @model_rule below; `Linter.lint_model` runs each.
REGISTRY: dict[str, ModelRule] = {}


def model_rule(code: str) -> Callable[[Check], Check]:
    """Register a check under a code of the catalog (findings.RULES holds title and hint)."""

    def register(check: Check) -> Check:
        if code in REGISTRY:
            raise ValueError(f"lint rule {code} is registered twice")
        REGISTRY[code] = ModelRule(RULES[code], check)
        return check

    return register


class Linter:
    """Analyses models on demand (cached) and runs the registered rules over each."""

    def __init__(self, project: Project, dialect: str = "duckdb"):
        self.project = project
        self.dialect = dialect
        self.renderer = Renderer(
            project.name,
            project.macro_files,
            project.vars,
            dialect,
            packages={name: package.macro_files for name, package in project.packages.items()},
            dispatch=project.dispatch,
        )
        self._analyses: dict[str, Analysis] = {}
        self._lines: dict[Path, list[str]] = {}

    def lint_model(self, name: str) -> list[Finding]:
        analysis = self.analyse(name)
        if analysis.disabled:
            return []
        rules = REGISTRY.values()
        if analysis.needs_warehouse:  # its SQL cannot be known here; its properties can
            rules = [rule for rule in rules if rule.rule.code not in SQL_RULES]
        return [finding for rule in rules for finding in rule.check(self, analysis)]

    # -- analysis ---------------------------------------------------------------------------

    def analyse(self, name: str) -> Analysis:
        if name in self._analyses:
            return self._analyses[name]
        model = self.project.models[name]
        base = self._rendered_config(model.base_config())
        analysis = Analysis(model, base)
        self._analyses[name] = analysis
        if not enabled(base):
            analysis.disabled = True
            return analysis
        if model.text is None:
            return analysis
        try:
            rendered = self.renderer.render(name, model.text, base, str(model.path))
        except RenderError as error:
            if not enabled(merge_config(base, error.config)):
                analysis.disabled = True
                return analysis
            analysis.needs_warehouse = self._needs_warehouse(model, base)
            if analysis.needs_warehouse is None:
                analysis.error = Finding(model.path, error.line or 1, 1, "FL008", str(error))
            return analysis
        analysis.rendered = rendered
        analysis.config = merge_config(base, rendered.config)
        if not enabled(analysis.config):
            analysis.disabled = True
            return analysis
        if not rendered.sql.strip() or _only_comments(rendered.sql):
            return analysis
        try:
            analysis.tree = sqlglot.parse_one(rendered.sql, read=self.dialect)
        except sqlglot.errors.ParseError as error:
            analysis.needs_warehouse = self._needs_warehouse(model, base)
            if analysis.needs_warehouse is not None:
                return analysis
            detail = error.errors[0] if error.errors else {}
            offset = _offset_of_line_col(
                rendered.sql, int(detail.get("line") or 1), int(detail.get("col") or 1)
            )
            line, col = rendered.position(offset)
            description = str(detail.get("description") or error).split(". Line")[0]
            analysis.error = Finding(
                model.path,
                line,
                col,
                "FL008",
                f"SQL ({self.dialect}) does not parse: {_without_markers(description)}",
            )
        except sqlglot.errors.SqlglotError as error:
            analysis.error = Finding(model.path, 1, 1, "FL008", f"SQL does not parse: {error}")
        return analysis

    def _rendered_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """Config values of dbt_project.yml and properties files that are Jinja, rendered (dbt
        renders them with the vars at parse time; hooks are rendered when they run)."""
        return {
            key: (
                self.renderer.render_value(value)
                if isinstance(value, str) and "{{" in value and key not in _RUNTIME_CONFIGS
                else value
            )
            for key, value in config.items()
        }

    def _needs_warehouse(self, model: Model, config: Mapping[str, Any]) -> str | None:
        """Why a model that did not render or parse needs the warehouse, if it does.

        Rendered as dbt parses (`execute` false), a query or catalog call returns nothing and
        the SQL built from it may be broken; rendered as dbt runs, such a call stops the render.
        """
        calls = list(self.renderer.warehouse_calls)
        if not calls:
            try:
                self.renderer.render(model.name, model.text or "", config, str(model.path), True)
            except NeedsWarehouse as needs:
                calls = [(needs.macro, needs.primitive)]
            except Exception:
                return None
        if not calls:
            return None
        macro, primitive = calls[0]
        through = f" (it calls {primitive})" if primitive != macro else ""
        return f"{macro} needs the warehouse{through}"

    def model_reads(self, name: str) -> Iterator[tuple[RelationCall, exp.Table, Analysis]]:
        """The ref()s of a model to models of this project, with the parent's analysis."""
        for call, table in self.analyse(name).reads():
            if (
                call.kind == "ref"
                and call.package in (None, self.project.name)
                and call.name in self.project.models
            ):
                yield call, table, self.analyse(call.name)

    def applies_window(self, name: str, seen: set[str]) -> bool:
        """Whether the model, or an ephemeral model inlined into it, calls a window macro."""
        if name in seen:
            return False
        seen.add(name)
        analysis = self.analyse(name)
        if analysis.rendered is None:
            return True  # unknown: do not report
        if analysis.rendered.window_calls:
            return True
        return any(
            parent.flower.materialized == "ephemeral" and self.applies_window(call.name, seen)
            for call, _table, parent in self.model_reads(name)
        )

    def partitioned_through(self, ephemeral: str, seen: set[str]) -> list[tuple[str, str]]:
        """The nearest partitioned ancestors read through an ephemeral model."""
        if ephemeral in seen:
            return []
        seen.add(ephemeral)
        found: list[tuple[str, str]] = []
        for call, _table, parent in self.model_reads(ephemeral):
            if parent.flower.materialized == "ephemeral":
                found += self.partitioned_through(call.name, seen)
            elif parent.flower.partitioned:
                found.append((call.name, ephemeral))
        return found

    def unwindowed_through(self, ephemeral: str, seen: set[str]) -> list[str]:
        """Partitioned models an ephemeral model reads without the window (transitively)."""
        if ephemeral in seen:
            return []
        seen.add(ephemeral)
        leaks: list[str] = []
        for call, table, parent in self.model_reads(ephemeral):
            if sql.windows_for(table) is not None:
                continue
            if parent.flower.materialized == "ephemeral":
                leaks += self.unwindowed_through(call.name, seen)
            elif parent.flower.partitioned:
                leaks.append(call.name)
        return leaks

    # -- positions --------------------------------------------------------------------------

    def at(
        self,
        analysis: Analysis,
        node: exp.Expression,
        rule: str,
        message: str,
        needle: str | None = None,
    ) -> Finding:
        assert analysis.rendered is not None
        offset = sql.offset_of(node)
        line, col = analysis.rendered.position(offset) if offset is not None else (1, 1)
        if needle:  # the rendered column drifts after a Jinja call: find the text in the file
            source = self._line(analysis.model.path, line)
            found = _find_word(source, needle)
            if found is not None:
                col = found + 1
        return Finding(analysis.model.path, line, col, rule, message)

    def at_config(
        self, analysis: Analysis, rule: str, message: str, key: str | None = None
    ) -> Finding:
        """Where the model's flower config is stated: its properties entry, else config();
        with `key`, the line of that key there when it can be found."""
        model = analysis.model
        rendered_config = analysis.rendered.config if analysis.rendered else {}
        if "meta" in rendered_config or model.properties is None:
            text = model.text or ""
            match = re.search(r"\bconfig\s*\(", text)
            line = text.count("\n", 0, match.start()) + 1 if match else 1
            if key and match:
                line = _key_line(text.splitlines(), line, key, quoted=True) or line
            return Finding(model.path, line, 1, rule, message)
        entry = model.properties
        line = entry.line
        if key:
            lines = entry.path.read_text(encoding="utf-8").splitlines()
            line = _key_line(lines, entry.line, key) or line
        return Finding(entry.path, line, 1, rule, message)

    def _line(self, path: Path, line: int) -> str:
        if path not in self._lines:
            self._lines[path] = path.read_text(encoding="utf-8").splitlines()
        lines = self._lines[path]
        return lines[line - 1] if 0 < line <= len(lines) else ""


def _partitioned_table(analysis: Analysis) -> bool:
    """A parsed model with a grain that is not ephemeral: the input rules apply to it."""
    flower = analysis.flower
    return analysis.tree is not None and flower.partitioned and flower.materialized != "ephemeral"


# -- the rules, in code order ---------------------------------------------------------------


@model_rule("FL001")
def partition_window(linter: Linter, analysis: Analysis) -> list[Finding]:
    """Each partitioned input is read through its partition column's window.

    A model that reads inputs yet applies no window anywhere is reported once, unless a finding
    about its inputs (FL001, FL004, FL005) already explains it.
    """
    if not _partitioned_table(analysis):
        return []
    findings = _unwindowed_inputs(linter, analysis)
    reads = list(analysis.reads())
    if (
        reads
        and not findings
        and not _ephemeral_leaks(linter, analysis)
        and not _coarser_parents(linter, analysis)
        and not linter.applies_window(analysis.model.name, set())
    ):
        findings.append(
            linter.at(
                analysis,
                reads[0][1],
                "FL001",
                f"partitioned model '{analysis.model.name}' applies no partition window at all: "
                "every run would write every partition",
            )
        )
    return findings


def _unwindowed_inputs(linter: Linter, analysis: Analysis) -> list[Finding]:
    findings: list[Finding] = []
    for call, table, parent in linter.model_reads(analysis.model.name):
        flower = parent.flower
        if flower.materialized == "ephemeral" or not flower.partitioned:
            continue
        windows = sql.windows_for(table)
        column = (flower.partition_column or "").lower()
        if windows is None:
            findings.append(
                linter.at(
                    analysis,
                    table,
                    "FL001",
                    f"reads partitioned '{call.name}' ({flower.grain}) without the "
                    f"partition window: filter it with flower_in_window('{column}')",
                    needle=call.name,
                )
            )
        elif windows and column and all(use.column != column for use in windows):
            used = ", ".join(sorted({use.column for use in windows}))
            findings.append(
                linter.at(
                    analysis,
                    table,
                    "FL001",
                    f"filters partitioned '{call.name}' on '{used}', not on its partition "
                    f"column '{column}': the run would read rows of other partitions",
                    needle=call.name,
                )
            )
    return findings


@model_rule("FL002")
def partition_column(linter: Linter, analysis: Analysis) -> list[Finding]:
    """A known grain, incremental, partition column named and last in the final select."""
    if not _partitioned_table(analysis):
        return []
    assert analysis.tree is not None
    flower = analysis.flower
    name = analysis.model.name
    if flower.rank is None:
        close = difflib.get_close_matches(flower.grain or "", list(GRAIN_RANK), n=1)
        finding = linter.at_config(
            analysis,
            "FL002",
            f"meta.flower.partition is '{flower.grain}'; allowed: {', '.join(GRAIN_RANK)}",
            key="partition",
        )
        fix = f"write one of {', '.join(GRAIN_RANK)} as meta.flower.partition" + (
            f" (did you mean '{close[0]}'?)" if close else ""
        )
        return [dataclasses.replace(finding, fix=fix)]
    findings: list[Finding] = []
    if flower.materialized != PARTITIONABLE:
        finding = linter.at_config(
            analysis,
            "FL002",
            f"'{name}' is partitioned '{flower.grain}' but materialized "
            f"'{flower.materialized}': only an incremental model keeps its other "
            "partitions when a run overwrites one",
        )
        fix = "set materialized: incremental in its config (or drop meta.flower.partition)"
        findings.append(dataclasses.replace(finding, fix=fix))
    if not flower.partition_column:
        finding = linter.at_config(
            analysis,
            "FL002",
            f"'{name}' is partitioned '{flower.grain}' but names no meta.flower.partition_column",
        )
        fix = "add meta.flower.partition_column: <its date or hour column> next to partition"
        findings.append(dataclasses.replace(finding, fix=fix))
        return findings
    columns = sql.final_columns(analysis.tree)
    if not columns:
        return findings  # a `*` over a relation whose columns only the warehouse knows
    wanted = flower.partition_column.lower().strip('"`')
    last = columns[-1]
    if last.name == wanted:
        return findings
    present = [column for column in columns if column.name == wanted]
    if present:
        position = columns.index(present[-1]) + 1
        findings.append(
            linter.at(
                analysis,
                present[-1].node,
                "FL002",
                f"partition column '{wanted}' is column {position} of {len(columns)} in the "
                f"final select; it must be the last (the last is "
                f"{_shown(last.name)})",
            )
        )
    else:
        findings.append(
            linter.at(
                analysis,
                last.node,
                "FL002",
                f"the final select has no column '{wanted}' (meta.flower.partition_column); "
                f"its last column is {_shown(last.name)}",
            )
        )
    return findings


@model_rule("FL003")
def relation_without_ref(linter: Linter, analysis: Analysis) -> list[Finding]:
    """Every FROM/JOIN relation is a ref(), a source() or a CTE visible there."""
    if analysis.tree is None or analysis.rendered is None:
        return []
    findings: list[Finding] = []
    cte_names = {cte.alias.lower() for cte in analysis.tree.find_all(exp.CTE)}
    for table in sql.relations(analysis.tree):
        name = table.name
        qualified = ".".join(
            part.name for part in (table.args.get("catalog"), table.args.get("db")) if part
        )
        if _is_marker(name) and not qualified:
            call = analysis.rendered.relations.get(name)
            if call is not None and call.kind == "ref" and _disabled_parent(linter, call):
                findings.append(
                    linter.at(
                        analysis,
                        table,
                        "FL003",
                        f"ref('{call.name}') names a disabled model: dbt refuses to build "
                        f"'{analysis.model.name}' while '{call.name}' is not enabled",
                        needle=call.name,
                    )
                )
            elif (
                call is not None
                and call.kind == "ref"
                and linter.project.ref_target(call.package, call.name) is False
            ):
                shown = f"'{call.package}', '{call.name}'" if call.package else f"'{call.name}'"
                where = (
                    f"package '{call.package}'"
                    if call.package
                    else "this project or its installed packages"
                )
                findings.append(
                    linter.at(
                        analysis,
                        table,
                        "FL003",
                        f"ref({shown}) names no model, seed or snapshot of {where}",
                        needle=call.name,
                    )
                )
            continue
        if not qualified and sql.visible_cte(table) is not None:
            continue
        full = f"{qualified}.{name}" if qualified else name
        if qualified:
            message = f"'{full}' is a hard-coded relation, not a ref() or source()"
        elif name.lower() in cte_names:
            message = (
                f"'{name}' is not a CTE at this point (a CTE cannot read itself or one defined "
                "after it), so it reads a table of that name: not a ref() or source()"
            )
        else:
            message = f"'{name}' is neither a ref(), a source() nor a CTE defined before it"
        findings.append(linter.at(analysis, table, "FL003", message, needle=name))
    return findings


@model_rule("FL004")
def ephemeral_misuse(linter: Linter, analysis: Analysis) -> list[Finding]:
    """An ephemeral model has no grain; a partitioned model reads one only through the window."""
    if analysis.error is not None:
        return []
    flower = analysis.flower
    if flower.partitioned and flower.materialized == "ephemeral":
        return [
            linter.at_config(
                analysis,
                "FL004",
                f"ephemeral model '{analysis.model.name}' carries the grain '{flower.grain}': an "
                "ephemeral model is inlined into its readers and has no partitions of its own",
            )
        ]
    return _ephemeral_leaks(linter, analysis) if _partitioned_table(analysis) else []


def _ephemeral_leaks(linter: Linter, analysis: Analysis) -> list[Finding]:
    findings: list[Finding] = []
    for call, table, parent in linter.model_reads(analysis.model.name):
        if parent.flower.materialized != "ephemeral" or sql.windows_for(table) is not None:
            continue
        leaks = linter.unwindowed_through(call.name, set())
        if leaks:
            findings.append(
                linter.at(
                    analysis,
                    table,
                    "FL004",
                    f"reads ephemeral '{call.name}' without the window, and "
                    f"'{call.name}' reads partitioned {_names(leaks)} without it: "
                    "a run would read every partition",
                    needle=call.name,
                )
            )
    return findings


@model_rule("FL005")
def finer_than_parent(linter: Linter, analysis: Analysis) -> list[Finding]:
    """The model is not finer than a partitioned parent (read directly or via ephemerals)."""
    return _coarser_parents(linter, analysis) if _partitioned_table(analysis) else []


def _coarser_parents(linter: Linter, analysis: Analysis) -> list[Finding]:
    flower = analysis.flower
    findings: list[Finding] = []
    for call, table, parent in linter.model_reads(analysis.model.name):
        if parent.flower.materialized == "ephemeral":
            ancestors = linter.partitioned_through(call.name, set())
        elif parent.flower.partitioned:
            ancestors = [(call.name, None)]
        else:
            continue
        for ancestor_name, through in ancestors:
            ancestor = linter.analyse(ancestor_name).flower
            if flower.rank is None or ancestor.rank is None or ancestor.rank <= flower.rank:
                continue
            via = f" through ephemeral '{through}'" if through else ""
            findings.append(
                linter.at(
                    analysis,
                    table,
                    "FL005",
                    f"'{analysis.model.name}' is {flower.grain} but reads '{ancestor_name}'{via}, "
                    f"which is {ancestor.grain}: a {flower.grain} partition cannot be built from "
                    f"a part of a {ancestor.grain} one",
                    needle=call.name,
                )
            )
    return findings


@model_rule("FL006")
def properties(linter: Linter, analysis: Analysis) -> list[Finding]:
    """Own properties file next to the model, with a description and an owner."""
    model = analysis.model
    entry = model.properties
    if entry is None:
        if model.path.with_suffix(".yml") in linter.project.unreadable:
            return []  # its own properties file is broken: FL007 says so already
        return [
            Finding(
                model.path,
                1,
                1,
                "FL006",
                f"model '{model.name}' has no properties entry: create "
                f"{model.path.with_suffix('.yml').name} next to it",
            )
        ]
    findings: list[Finding] = []
    if not (entry.path.parent == model.path.parent and entry.path.stem == model.name):
        findings.append(
            Finding(
                entry.path,
                entry.line,
                1,
                "FL006",
                f"model '{model.name}' is described in {entry.path.name}, not in its "
                f"own properties file: move the entry to "
                f"{_relative(model.path.with_suffix('.yml'), entry.path.parent)}",
            )
        )
    description = entry.data.get("description")
    if not (isinstance(description, str) and description.strip()):
        findings.append(
            Finding(entry.path, entry.line, 1, "FL006", f"model '{model.name}' has no description")
        )
    meta = analysis.config.get("meta") or {}
    owner = meta.get("owner") if isinstance(meta, Mapping) else None
    group = analysis.config.get("group")
    group_owner = linter.project.group_owners.get(str(group)) if group else None
    if not owner and not (isinstance(group_owner, Mapping) and any(group_owner.values())):
        findings.append(
            Finding(
                entry.path,
                entry.line,
                1,
                "FL006",
                f"model '{model.name}' has no owner (config.meta.owner or a group's owner)",
            )
        )
    return findings


@model_rule("FL008")
def cannot_parse(linter: Linter, analysis: Analysis) -> list[Finding]:
    """The model's Jinja renders and its SQL parses (found by `Linter.analyse`)."""
    return [analysis.error] if analysis.error is not None else []


def _disabled_parent(linter: Linter, call: RelationCall) -> bool:
    """A ref() to a model of this project that dbt does not build (and no other node of that
    name, such as a seed, stands in for it)."""
    project = linter.project
    if call.package not in (None, project.name) or call.name not in project.models:
        return False
    return linter.analyse(call.name).disabled and call.name not in project.other_nodes


def _is_marker(name: str) -> bool:
    return name == THIS_MARKER or name.startswith((REF_PREFIX, SOURCE_PREFIX, MACRO_PREFIX))


def _key_line(lines: list[str], start: int, key: str, quoted: bool = False) -> int | None:
    """The first line at or after `start` (1-based) that sets `key` (YAML, or a dict literal
    in config()); None when another model's entry starts first."""
    name = rf"['\"]?{re.escape(key)}['\"]?" if quoted else re.escape(key)
    pattern = re.compile(rf"^\s*(?:-\s*)?{name}\s*:")
    for number in range(start, len(lines) + 1):
        text = lines[number - 1]
        if number > start and re.match(r"^\s*-\s*name\s*:", text):
            return None
        if pattern.search(text) or (quoted and re.search(rf"[{{,(]\s*{name}\s*:", text)):
            return number
    return None


def _find_word(text: str, word: str) -> int | None:
    match = re.search(rf"(?<![\w.]){re.escape(word)}(?!\w)", text, re.IGNORECASE)
    return match.start() if match else None


def _names(names: list[str]) -> str:
    return ", ".join(f"'{name}'" for name in sorted(set(names)))


def _shown(name: str | None) -> str:
    return f"'{name}'" if name else "an expression without an alias"


def _relative(path: Path, start: Path) -> str:
    try:
        return str(path.relative_to(start))
    except ValueError:
        return str(path)


def _only_comments(text: str) -> bool:
    stripped = re.sub(r"--[^\n]*|/\*.*?\*/", "", text, flags=re.S)
    return not stripped.strip(" \t\r\n;")


def _without_markers(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def _offset_of_line_col(text: str, line: int, col: int) -> int:
    offset = 0
    for _ in range(line - 1):
        found = text.find("\n", offset)
        if found < 0:
            break
        offset = found + 1
    return min(offset + max(col - 1, 0), len(text))
