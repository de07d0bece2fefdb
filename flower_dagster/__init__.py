"""flower-dagster: run a dbt warehouse on a schedule with Dagster."""

__version__ = "0.1.0"
