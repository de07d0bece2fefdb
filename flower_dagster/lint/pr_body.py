"""`--pr-body FILE`: the PR description has every section of the template, each filled in.

The template (`.github/pull_request_template.md`) is a list of `## ` sections whose guidance
sits in HTML comments. A section of the description is empty when, comments removed, nothing
is left or only the template's own text; a checklist item (`- [ ]`) of the template must be
ticked (`- [x]`) in the description.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from flower_dagster.lint.errors import LintError
from flower_dagster.lint.findings import Finding

_HEADING = re.compile(r"^##\s+(.+?)\s*#*\s*$", re.M)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_BOX = re.compile(r"^\s*[-*]\s+\[( |x|X)\]\s+(.+?)\s*$", re.M)


@dataclass(frozen=True)
class Section:
    title: str
    line: int  # of the heading, 1-based
    body: str


def sections(markdown: str) -> list[Section]:
    """The `## ` sections of a markdown text, in order, with their raw bodies."""
    matches = list(_HEADING.finditer(markdown))
    found = []
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(markdown)
        line = markdown.count("\n", 0, match.start()) + 1
        found.append(Section(match.group(1).strip(), line, markdown[match.end() : end]))
    return found


def _normalised(text: str) -> str:
    return re.sub(r"\s+", " ", _COMMENT.sub("", text)).strip()


def _key(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", title.lower()).strip()


def check_pr_body(body_path: Path, template_path: Path) -> list[Finding]:
    """Findings (PR001..PR003) for a PR description against the template."""
    if not template_path.is_file():
        raise LintError(f"no PR template at {template_path} (give one with --pr-template)")
    if not body_path.is_file():
        raise LintError(f"--pr-body {body_path}: no such file")
    template = template_path.read_text(encoding="utf-8")
    body = body_path.read_text(encoding="utf-8").replace("\r\n", "\n")
    wanted = sections(template)
    if not wanted:
        raise LintError(f"{template_path} has no '## ' sections to check a PR description by")
    given = {_key(section.title): section for section in sections(body)}
    findings: list[Finding] = []
    for section in wanted:
        found = given.get(_key(section.title))
        if found is None:
            findings.append(
                Finding(body_path, 1, 1, "PR001", f"section '{section.title}' is missing")
            )
            continue
        text = _normalised(found.body)
        if not text or text == _normalised(section.body):
            findings.append(
                Finding(
                    body_path,
                    found.line,
                    1,
                    "PR002",
                    f"section '{section.title}' is empty or still the template's placeholder",
                )
            )
            continue
        body_text = _COMMENT.sub("", found.body)
        ticked = {_normalised(label): mark != " " for mark, label in _BOX.findall(body_text)}
        for _mark, label in _BOX.findall(_COMMENT.sub("", section.body)):
            if not ticked.get(_normalised(label), False):
                findings.append(
                    Finding(
                        body_path,
                        found.line,
                        1,
                        "PR003",
                        f"section '{section.title}': '{_normalised(label)}' is not ticked",
                    )
                )
    return findings
