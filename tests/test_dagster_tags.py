"""Our copies of Dagster's tag names equal Dagster's own (private) ones: an upgrade that
renames one fails here rather than in the staleness or the demo story."""

from __future__ import annotations

from dagster import AssetKey
from dagster._core.definitions import data_version
from dagster._core.storage import tags

from flower_dagster import dagster_tags
from flower_dagster.dbt.versions import DEFAULT_DATA_VERSION


def test_the_run_tags_are_dagsters():
    for name in (
        "BACKFILL_ID_TAG",
        "PARTITION_NAME_TAG",
        "ASSET_PARTITION_RANGE_START_TAG",
        "ASSET_PARTITION_RANGE_END_TAG",
        "SENSOR_NAME_TAG",
    ):
        assert getattr(dagster_tags, name) == getattr(tags, name), name


def test_the_data_version_tags_are_dagsters():
    for name in (
        "DATA_VERSION_TAG",
        "DATA_VERSION_IS_USER_PROVIDED_TAG",
        "CODE_VERSION_TAG",
        "INPUT_DATA_VERSION_TAG_PREFIX",
        "INPUT_EVENT_POINTER_TAG_PREFIX",
        "NULL_EVENT_POINTER",
    ):
        assert getattr(dagster_tags, name) == getattr(data_version, name), name
    assert DEFAULT_DATA_VERSION == data_version.DEFAULT_DATA_VERSION
    key = AssetKey(["raw", "orders"])
    assert dagster_tags.input_data_version_tag(key) == data_version.get_input_data_version_tag(key)
    assert dagster_tags.input_event_pointer_tag(key) == data_version.get_input_event_pointer_tag(
        key
    )
