"""The lint rules' catalog and the finding they produce.

Every rule has a number, a title and a fix hint printed with each finding; docs/lint.md shows a
wrong and a right example of each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Rule:
    code: str
    title: str
    hint: str


RULES: dict[str, Rule] = {
    rule.code: rule
    for rule in (
        Rule(
            "FL001",
            "partition window",
            "filter each partitioned input with {{ flower_in_window('<its partition column>') }} "
            "in the select that reads it, so a run reads only its own partition",
        ),
        Rule(
            "FL002",
            "partition column",
            "make meta.flower.partition_column the last column of the final select, under that "
            "name (insert-overwrite replaces rows by it)",
        ),
        Rule(
            "FL003",
            "relation without ref/source",
            "read models with {{ ref('model') }} and raw tables with {{ source('name', 'table') }}"
            "; a name in FROM/JOIN must otherwise be a CTE defined before it",
        ),
        Rule(
            "FL004",
            "ephemeral misuse",
            "an ephemeral model has no partitions: remove its meta.flower grain, apply the window "
            "inside it, or read it through the window",
        ),
        Rule(
            "FL005",
            "finer than a partitioned parent",
            "make the model at least as coarse as its partitioned parents (daily from hourly, "
            "weekly from daily), or read a finer parent",
        ),
        Rule(
            "FL006",
            "owner, description, own properties file",
            "give the model its own <model>.yml next to <model>.sql with a description and "
            "config.meta.owner (or a dbt group with an owner)",
        ),
        Rule(
            "FL007",
            "YAML problem or conflict",
            "resolve the conflict: one key once per mapping, one entry per model, no conflict "
            "markers, no properties for a model that does not exist",
        ),
        Rule(
            "FL008",
            "cannot parse",
            "fix the Jinja or SQL syntax at this line (lint renders the model and parses it with "
            "sqlglot; pick the SQL dialect with --dialect)",
        ),
        Rule(
            "PR001",
            "PR description section missing",
            "keep every heading of .github/pull_request_template.md in the PR description",
        ),
        Rule(
            "PR002",
            "PR description section empty",
            "write the section: replace the template's placeholder with your own words "
            "('none' is an answer)",
        ),
        Rule(
            "PR003",
            "PR checklist not ticked",
            "do what the box says, then tick it ([x]); the PR is not ready for review before",
        ),
    )
}


@dataclass(frozen=True, order=True)
class Finding:
    """One problem at a place in a file (line and column are 1-based)."""

    path: Path
    line: int
    col: int
    rule: str
    message: str
    # A hint for this finding when the rule's general one would not help (a misspelt grain).
    fix: str | None = field(default=None, compare=False)

    @property
    def hint(self) -> str:
        return self.fix or RULES[self.rule].hint

    @property
    def title(self) -> str:
        return RULES[self.rule].title
