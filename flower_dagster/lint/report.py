"""The three outputs of `flower lint`: text for people, GitHub annotations for CI, JSON.

Text is `path:line:col RULE message (hint: ...)`, one finding per line. GitHub's format is its
workflow command `::error file=...,line=...,col=...,title=...::message`, which the Actions
runner turns into an annotation on the PR's diff; its data escapes `%`, CR and LF, and its
property values also `:` and `,` (as GitHub's own toolkit does).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from flower_dagster.lint.findings import Finding

FORMATS = ("text", "github", "json")


def shown_path(path: Path, base: Path | None = None) -> str:
    """The path relative to `base` (default: the working directory) when it lies under it."""
    base = (base or Path.cwd()).resolve()
    try:
        return path.resolve().relative_to(base).as_posix()
    except ValueError:
        return os.path.relpath(path.resolve(), base) if path.is_absolute() else path.as_posix()


def escape_data(value: str) -> str:
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def text_line(finding: Finding, base: Path | None = None) -> str:
    return (
        f"{shown_path(finding.path, base)}:{finding.line}:{finding.col} {finding.rule} "
        f"{finding.message} (hint: {finding.hint})"
    )


def github_line(finding: Finding, base: Path | None = None) -> str:
    properties = {
        "file": shown_path(finding.path, base),
        "line": str(finding.line),
        "col": str(finding.col),
        "title": f"{finding.rule} {finding.title}",
    }
    joined = ",".join(f"{key}={escape_property(value)}" for key, value in properties.items())
    return f"::error {joined}::{escape_data(f'{finding.message} (hint: {finding.hint})')}"


def summary(findings: Sequence[Finding], checked: str) -> str:
    if not findings:
        return f"flower lint: no problems ({checked})"
    files = len({finding.path for finding in findings})
    count = len(findings)
    return (
        f"flower lint: {count} problem{'s' if count != 1 else ''} in {files} "
        f"file{'s' if files != 1 else ''} ({checked})"
    )


def render(
    findings: Sequence[Finding],
    output_format: str,
    checked: str,
    not_checked: Sequence[tuple[Path, str]] = (),
    base: Path | None = None,
) -> str:
    """The whole output for `findings` (sorted), ending with a summary for text and github.

    `not_checked` are models whose SQL only the warehouse can render: said, not found wrong.
    """
    if output_format == "json":
        return json.dumps(
            {
                "checked": checked,
                "count": len(findings),
                "not_checked": [
                    {"path": shown_path(path, base), "reason": reason}
                    for path, reason in not_checked
                ],
                "findings": [
                    {
                        "path": shown_path(finding.path, base),
                        "line": finding.line,
                        "col": finding.col,
                        "rule": finding.rule,
                        "title": finding.title,
                        "message": finding.message,
                        "hint": finding.hint,
                    }
                    for finding in findings
                ],
            },
            indent=2,
        )
    line = github_line if output_format == "github" else text_line
    if output_format == "github":
        notes = [
            f"::notice file={escape_property(shown_path(path, base))}::"
            f"{escape_data(f'not checked: {reason}')}"
            for path, reason in not_checked
        ]
    else:
        notes = [f"{shown_path(path, base)}: not checked: {reason}" for path, reason in not_checked]
    return "\n".join(
        [*(line(finding, base) for finding in findings), *notes, summary(findings, checked)]
    )
