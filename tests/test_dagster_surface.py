"""What flower-dagster relies on of Dagster without importing it: our copies of Dagster's tag
names equal Dagster's own (private) ones, and Dagster's asset graph has what our Protocol reads.
An upgrade that renames one fails here rather than in the staleness, the demo story or
`flower impact`."""

from __future__ import annotations

from dagster import AssetKey, AutomationCondition, DailyPartitionsDefinition, Definitions, asset
from dagster._core.definitions import data_version
from dagster._core.storage import tags

from flower_dagster import dagster_tags
from flower_dagster.asset_graph import AssetGraph, AssetNode
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


def test_dagsters_asset_graph_has_what_flower_reads():
    days = DailyPartitionsDefinition(start_date="2024-01-01")

    @asset(partitions_def=days)
    def orders() -> None: ...

    @asset(partitions_def=days, deps=[orders], automation_condition=AutomationCondition.eager())
    def revenue() -> None: ...

    graph = Definitions(assets=[orders, revenue]).resolve_asset_graph()
    assert isinstance(graph, AssetGraph)
    assert isinstance(graph.get(AssetKey("revenue")), AssetNode)
    parents = graph.get_parents_partitions(AssetKey("revenue"), "2024-01-02")
    (parent,) = parents.parent_partitions
    assert (parent.asset_key, parent.partition_key) == (AssetKey("orders"), "2024-01-02")
    assert not parents.required_but_nonexistent_parents_partitions


def test_loading_the_code_location_does_not_import_dagster_postgres():
    """Only the PostgreSQL instance needs dagster-postgres (about a second to import): the
    code location, which every run worker and code server loads, must not pay for it."""
    import subprocess
    import sys

    from flower_dagster.settings import REPO_ROOT

    code = (
        "import sys, flower_dagster.definitions\n"
        "assert 'dagster_postgres' not in sys.modules, 'dagster_postgres was imported'\n"
        "from flower_dagster._compat import create_pg_engine\n"
        "assert 'dagster_postgres' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True, timeout=120)
