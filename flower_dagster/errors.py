"""Errors a person can act on: each names the file or setting, the bad value and what is allowed."""

from __future__ import annotations


class FlowerError(Exception):
    """Base class of flower-dagster's own errors (shown without a stack trace by the CLI)."""


class SettingsError(FlowerError):
    """A setting (environment variable or settings file) has a value that is not allowed."""


class ModelConfigError(FlowerError):
    """One or more dbt models carry a flower configuration that cannot work.

    `problems` holds one line per mistake, each naming the model, its file, the bad value and
    what is allowed; the message lists them all so a person fixes everything in one pass.
    """

    def __init__(self, problems: list[str]):
        self.problems = problems
        count = len(problems)
        header = f"{count} dbt model configuration problem{'s' if count != 1 else ''}:"
        super().__init__("\n".join([header, *(f"  - {p}" for p in problems)]))


class DbtParseError(FlowerError):
    """dbt could not parse the project; the message is dbt's own, with the file it names."""


class DbtRunError(FlowerError):
    """A dbt invocation failed: which models or tests, and dbt's message for each."""


class ModelSelectionError(FlowerError):
    """A command names a model that does not exist, or partitions that model does not have."""
