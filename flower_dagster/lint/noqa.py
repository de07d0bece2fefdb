"""`-- noqa` comments: a finding is dropped when its line says so.

`-- noqa` silences every rule on its line, `-- noqa: FL001, FL003` only those. In YAML files
the comment is `# noqa: FL006`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from flower_dagster.lint.findings import Finding

_NOQA = re.compile(r"(?:--|#)\s*noqa\b(?:\s*:\s*(?P<codes>[A-Za-z0-9_,\s]+))?", re.IGNORECASE)


def silenced_rules(line: str) -> set[str] | None:
    """The rules a line silences: None for none, an empty set for all (a bare noqa)."""
    match = _NOQA.search(line)
    if match is None:
        return None
    codes = match.group("codes")
    if not codes:
        return set()
    return {code.strip().upper() for code in codes.split(",") if code.strip()}


def apply_noqa(findings: Iterable[Finding]) -> list[Finding]:
    """The findings whose line does not silence their rule."""
    lines: dict[Path, list[str]] = {}
    kept: list[Finding] = []
    for finding in findings:
        if finding.path not in lines:
            try:
                lines[finding.path] = finding.path.read_text(encoding="utf-8").splitlines()
            except OSError:
                lines[finding.path] = []
        text = lines[finding.path]
        line = text[finding.line - 1] if 0 < finding.line <= len(text) else ""
        rules = silenced_rules(line)
        if rules is None or (rules and finding.rule not in rules):
            kept.append(finding)
    return kept
