"""The lint's usage and configuration errors (the CLI prints them and exits 2)."""

from __future__ import annotations

from flower_dagster.errors import FlowerError


class LintError(FlowerError):
    """`flower lint` cannot run: a path, a git ref, a template or the project is not usable."""
