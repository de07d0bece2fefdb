"""The demo warehouse's raw data: a deterministic online shop to run the dbt project against."""

from flower_dagster.demo.data import (
    DEMO_END,
    DEMO_START,
    DEMO_TIMEZONE,
    change_day,
    corrupt_day,
    generate_demo_data,
    load_demo_data,
    repair_day,
)

__all__ = [
    "DEMO_END",
    "DEMO_START",
    "DEMO_TIMEZONE",
    "change_day",
    "corrupt_day",
    "generate_demo_data",
    "load_demo_data",
    "repair_day",
]
