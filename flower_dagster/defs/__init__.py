"""Dagster definitions, one module per concern; `flower_dagster.definitions` gathers them."""
