"""Content data versions from dbt's partition report (pure)."""

from datetime import datetime

from dagster import AssetKey, DataVersion

from flower_dagster.dbt.versions import (
    PartitionVersion,
    parse_report,
    partition_materializations,
    versions_by_partition,
)

MESSAGE = (
    'flower-partitions {"unique_id": "model.p.fct_orders", "window": ["2024-01-08 00:00:00", '
    '"2024-01-10 00:00:00"], "partitions": {"2024-01-08": [24, "1761"], "2024-01-09": [3, "9"]}}'
)
STARTS = {
    "2024-01-08": datetime(2024, 1, 8),
    "2024-01-09": datetime(2024, 1, 9),
    "2024-01-10": datetime(2024, 1, 10),
}


def test_other_log_lines_are_not_reports():
    assert parse_report("1 of 3 OK created sql incremental model main.fct_orders") is None


def test_each_partition_gets_a_version_of_its_content():
    versions = versions_by_partition(parse_report(MESSAGE), STARTS, "run1")
    assert versions["2024-01-08"].row_count == 24
    assert versions["2024-01-09"].row_count == 3
    # A partition the report does not mention wrote no rows.
    assert versions["2024-01-10"].row_count == 0
    assert len({v.data_version for v in versions.values()}) == 3
    # The same content in another run: the same versions.
    assert versions_by_partition(parse_report(MESSAGE), STARTS, "run2") == versions


def test_changed_content_changes_only_that_partitions_version():
    changed = MESSAGE.replace('[3, "9"]', '[4, "12"]')
    before = versions_by_partition(parse_report(MESSAGE), STARTS, "run1")
    after = versions_by_partition(parse_report(changed), STARTS, "run2")
    assert before["2024-01-08"] == after["2024-01-08"]
    assert before["2024-01-09"] != after["2024-01-09"]


def test_without_a_report_every_rerun_counts_as_a_change():
    first = versions_by_partition(None, STARTS, "run1")
    second = versions_by_partition(None, STARTS, "run2")
    assert all(v.row_count is None for v in first.values())
    assert first["2024-01-08"] != second["2024-01-08"]


def test_materializations_carry_version_and_provenance_tags():
    events = partition_materializations(
        AssetKey("agg_weekly_revenue"),
        {"2024-01-08": PartitionVersion("24r-abc", 24)},
        code_version="sha1",
        provenance={AssetKey("fct_orders"): (DataVersion("3r-x"), 42)},
        metadata={"unique_id": "model.p.agg_weekly_revenue"},
        extra_tags={"dagster/backfill": "b1"},
    )
    (event,) = events
    assert event.partition == "2024-01-08"
    assert event.tags["dagster/data_version"] == "24r-abc"
    assert event.tags["dagster/code_version"] == "sha1"
    assert event.tags["dagster/input_data_version/fct_orders"] == "3r-x"
    assert event.tags["dagster/input_event_pointer/fct_orders"] == "42"
    assert event.tags["dagster/backfill"] == "b1"
    assert event.metadata["dagster/row_count"].value == 24
