"""Tag names Dagster writes on runs and materializations, and reads back.

Dagster keeps them in private modules; they are stored with every run and event in the
instance, so they are part of its data rather than of its code, and they are ours to name
here. tests/test_dagster_surface.py checks each against Dagster's own on every upgrade.
"""

from __future__ import annotations

from dagster import AssetKey

# On runs: the backfill that launched a run, its partition (or range), the sensor that asked.
BACKFILL_ID_TAG = "dagster/backfill"
PARTITION_NAME_TAG = "dagster/partition"
ASSET_PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
ASSET_PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"
SENSOR_NAME_TAG = "dagster/sensor_name"

# On materializations: the data version and the provenance Dagster's staleness compares.
DATA_VERSION_TAG = "dagster/data_version"
DATA_VERSION_IS_USER_PROVIDED_TAG = "dagster/data_version_is_user_provided"
CODE_VERSION_TAG = "dagster/code_version"
INPUT_DATA_VERSION_TAG_PREFIX = "dagster/input_data_version"
INPUT_EVENT_POINTER_TAG_PREFIX = "dagster/input_event_pointer"
# The event pointer of a parent that has no materialization.
NULL_EVENT_POINTER = "NULL"


def input_data_version_tag(parent: AssetKey) -> str:
    """The tag that holds the data version of `parent` a materialization was built from."""
    return f"{INPUT_DATA_VERSION_TAG_PREFIX}/{parent.to_user_string()}"


def input_event_pointer_tag(parent: AssetKey) -> str:
    """The tag that holds the storage id of the `parent` materialization it was built from."""
    return f"{INPUT_EVENT_POINTER_TAG_PREFIX}/{parent.to_user_string()}"
