"""Why a run failed, in one of four cause classes: pure functions over facts read from the run.

- SQL error in the model: dbt could not build a model (its `error` result in run_results.json).
- Data test failed: a dbt test (a blocking asset check) did not pass.
- Inputs incomplete: the source check stopped the run before dbt, naming the upstream partitions.
- Platform problem: the warehouse was locked, memory ran out, the run timed out or was killed —
  nothing the model's author can fix in the model. Platform signs win over the rest: a locked
  DuckDB file makes every model "fail", and the fix is not in any of them.

An error nothing recognises is a platform problem too, with its first line: on-call looks first.
Any other asset check that did not pass (the late-data check, a check of your own) is "check
failed", with the check's own description.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Cause(StrEnum):
    SQL_ERROR = "SQL error in the model"
    DATA_TEST = "data test failed"
    INPUTS_INCOMPLETE = "inputs incomplete"
    PLATFORM = "platform problem"
    CHECK = "check failed"  # an asset check that is not a dbt test, e.g. late data


# Headline order: the first cause present names the alert.
PRIORITY = (Cause.PLATFORM, Cause.SQL_ERROR, Cause.INPUTS_INCOMPLETE, Cause.DATA_TEST, Cause.CHECK)

# Platform signs, matched case-insensitively in every error text of the run.
_SIGNS = {
    "the warehouse is locked by another process": (
        r"could not set lock|database is locked|conflicting lock"
    ),
    "out of memory": r"out of memory|memoryerror|\boom\b|cannot allocate memory",
    "timed out": r"timed? ?out|timeout|exceeded (its )?maximum runtime",
    "killed": (
        r"sigkill|signal 9|exit code 137|\bkilled\b|terminated unexpectedly"
        r"|run worker .*(failed|crashed)"
    ),
    "disk full": r"no space left on device|disk full",
}
PLATFORM_SIGNS = tuple((sign, re.compile(pattern, re.I)) for sign, pattern in _SIGNS.items())


@dataclass(frozen=True)
class DbtResult:
    """One failed node of dbt's run_results.json."""

    unique_id: str
    status: str  # error | fail | runtime error
    message: str
    failures: int | None = None
    file: str | None = None  # the model's file (original_file_path) when known

    @property
    def kind(self) -> str:
        return self.unique_id.split(".")[0]

    @property
    def name(self) -> str:
        parts = self.unique_id.split(".")
        return parts[2] if len(parts) > 2 else self.unique_id


@dataclass(frozen=True)
class FailedCheck:
    asset: str
    check: str
    partitions: tuple[str, ...] = ()
    failing_rows: int | None = None
    description: str | None = None
    upstream_problems: tuple[str, ...] = ()  # the source check's list
    dbt_test: bool = True  # a dbt test; else another asset check (late data, ...)


@dataclass(frozen=True)
class RunFacts:
    """What a finished run tells, as plain data (see facts.py for how it is read)."""

    run_id: str
    succeeded: bool
    # (asset, partition) planned by the run and not materialized by it: what failed.
    failed: tuple[tuple[str, str | None], ...] = ()
    materialized: tuple[tuple[str, str | None], ...] = ()
    failed_checks: tuple[FailedCheck, ...] = ()
    passed_checks: tuple[tuple[str, str], ...] = ()  # (asset, check)
    dbt_results: tuple[DbtResult, ...] = ()
    dbt_errors: tuple[str, ...] = ()  # dbt's own error lines (dbt.log) when it stopped early
    step_errors: tuple[str, ...] = ()  # each failed step's error chain, innermost last
    run_error: str | None = None
    model_files: tuple[tuple[str, str], ...] = ()  # (model, file) of the run's models
    started: float | None = None
    ended: float | None = None


@dataclass(frozen=True)
class Finding:
    """One thing that went wrong, in words an analyst reads."""

    cause: Cause
    model: str | None
    detail: str  # the error line, the test's message, the sign of the platform problem
    file: str | None = None
    test: str | None = None
    failing_rows: int | None = None
    upstream: tuple[str, ...] = ()
    partitions: tuple[str, ...] = field(default_factory=tuple)


def classify(facts: RunFacts) -> list[Finding]:
    """Every finding of a run, headline first (PRIORITY), in a stable order."""
    platform = _platform(facts)
    if platform:
        return platform
    findings = [*_sql_errors(facts), *_inputs(facts), *_tests(facts)]
    if not findings and not facts.succeeded:
        first = next((e for e in [*facts.step_errors, facts.run_error or ""] if e.strip()), "")
        findings.append(Finding(Cause.PLATFORM, None, _first_line(first) or "the run failed"))
    return sorted(findings, key=lambda f: PRIORITY.index(f.cause))


def headline(findings: Sequence[Finding]) -> Cause | None:
    return findings[0].cause if findings else None


# A line of flower's dbt failure summary (flower_dagster.dbt.run.failure_summary).
_SUMMARY_LINE = re.compile(
    r"^\s*- (model|seed|snapshot|test) (\S+) failed(?: \((\d+) failing rows?\))?: (.*)$"
)


def _results(facts: RunFacts) -> tuple[DbtResult, ...]:
    """dbt's failed nodes: run_results.json, else the step error's summary (target/ cleaned)."""
    if facts.dbt_results:
        return facts.dbt_results
    found = []
    for error in facts.step_errors:
        for line in error.splitlines():
            match = _SUMMARY_LINE.match(line)
            if match:
                kind, name, rows, message = match.groups()
                found.append(
                    DbtResult(
                        unique_id=f"{kind}.?.{name}",
                        status="fail" if kind == "test" else "error",
                        message=message,
                        failures=int(rows) if rows else None,
                    )
                )
    return tuple(found)


def _texts(facts: RunFacts) -> list[str]:
    return [
        *facts.dbt_errors,
        *(r.message for r in _results(facts)),
        *facts.step_errors,
        *([facts.run_error] if facts.run_error else []),
    ]


def _platform(facts: RunFacts) -> list[Finding]:
    for text in _texts(facts):
        for sign, pattern in PLATFORM_SIGNS:
            match = pattern.search(text)
            if match:
                line = _line_with(text, match.start())
                return [Finding(Cause.PLATFORM, None, f"{sign}: {line}")]
    return []


def _sql_errors(facts: RunFacts) -> list[Finding]:
    files = dict(facts.model_files)
    found = []
    for result in _results(facts):
        if result.kind == "test" or result.status not in ("error", "runtime error"):
            continue
        found.append(
            Finding(
                Cause.SQL_ERROR,
                result.name,
                _dbt_error_line(result.message),
                file=result.file or files.get(result.name) or _file_in(result.message),
            )
        )
    return found


def _inputs(facts: RunFacts) -> list[Finding]:
    found = []
    for check in facts.failed_checks:
        if check.check != "inputs_complete":
            continue
        found.append(
            Finding(
                Cause.INPUTS_INCOMPLETE,
                check.asset,
                "upstream partitions are missing or failed",
                upstream=check.upstream_problems,
                partitions=check.partitions,
            )
        )
    if not found:
        for error in facts.step_errors:
            if "inputs incomplete" in error:
                lines = [ln.strip() for ln in error.splitlines()[1:] if ln.strip()]
                found.append(
                    Finding(
                        Cause.INPUTS_INCOMPLETE, None, _first_line(error), upstream=tuple(lines)
                    )
                )
    return found


def _tests(facts: RunFacts) -> list[Finding]:
    found = []
    seen = set()
    for check in facts.failed_checks:
        if check.check == "inputs_complete":
            continue
        seen.add(check.check)
        result = next((r for r in _results(facts) if r.name == check.check), None)
        if not check.dbt_test and result is None:
            found.append(
                Finding(
                    Cause.CHECK,
                    check.asset,
                    _first_line(check.description or "did not pass"),
                    test=check.check,
                    partitions=check.partitions,
                )
            )
            continue
        detail = (result.message if result else None) or check.description or "did not pass"
        found.append(
            Finding(
                Cause.DATA_TEST,
                check.asset,
                _first_line(detail),
                test=check.check,
                failing_rows=check.failing_rows
                if check.failing_rows is not None
                else (result.failures if result else None),
                partitions=check.partitions,
            )
        )
    for result in _results(facts):
        if result.kind == "test" and result.name not in seen:
            found.append(
                Finding(
                    Cause.DATA_TEST,
                    None,
                    _first_line(result.message),
                    test=result.name,
                    failing_rows=result.failures,
                )
            )
    return found


_DBT_PREFIX = re.compile(r"^(?:Runtime|Database|Compilation) Error in \w+ \S+ \(([^)]+)\)\s*", re.I)


def _dbt_error_line(message: str) -> str:
    """dbt's message without its `Runtime Error in model x (file)` preamble, on one line."""
    flat = " ".join(message.split())
    return _DBT_PREFIX.sub("", flat) or flat


def _file_in(message: str) -> str | None:
    match = _DBT_PREFIX.match(" ".join(message.split()))
    return match.group(1) if match else None


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _line_with(text: str, position: int) -> str:
    start = text.rfind("\n", 0, position) + 1
    end = text.find("\n", position)
    line = text[start : end if end >= 0 else len(text)].strip()
    return line[:300]
