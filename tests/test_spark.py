"""The same demo models on Spark (dbt-spark, `method: session`), compared with DuckDB.

Real Dagster runs of real dbt on a local Spark (pyspark, one JVM per dbt invocation, the
metastore and the tables in a temporary folder). Each JVM costs ~15 s and ~1 GB, so the module
drives few invocations: the unpartitioned models, one week of a daily model as one backfill, a
re-run of one day, the weekly roll-up, then a repair of that day and its week. The DuckDB side
runs the same steps on the same raw rows, and the results must be equal.

Run alone with `make test-spark`; `make test` runs it too.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import pytest
from dagster import AssetKey, AssetSelection, Definitions, materialize

from flower_dagster.dagster_tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from flower_dagster.dbt.project import FlowerDbtProject
from flower_dagster.defs.dbt import dbt_definitions
from flower_dagster.demo.data import change_day, corrupt_day, repair_day
from flower_dagster.demo.spark import (
    RAW_DUCKDB_NAME,
    SPARK_DIR_ENV,
    export_raw_tables,
    load_spark_demo_data,
)
from flower_dagster.settings import REPO_ROOT, load_settings
from tests.automation_support import Automation
from tests.conftest import Warehouse, copy_demo_project, make_instance, private_warehouse

pytestmark = [pytest.mark.slow, pytest.mark.spark]

WEEK = [f"2024-01-{d:02d}" for d in range(8, 15)]
REPAIRED = "2024-01-10"


@dataclass
class SparkWarehouse:
    project_dir: Path
    spark_dir: Path
    defs: Definitions
    automation: Automation

    def run(
        self,
        names: list[str],
        first: str | None = None,
        last: str | None = None,
        succeed: bool = True,
    ) -> None:
        tags = {}
        if first:
            tags = {
                ASSET_PARTITION_RANGE_START_TAG: first,
                ASSET_PARTITION_RANGE_END_TAG: last or first,
            }
        selection = (
            AssetSelection.tag("flower/grain", "unpartitioned")
            if names == ["unpartitioned"]
            else AssetSelection.assets(*[AssetKey(n) for n in names])
        )
        result = materialize(
            list(self.defs.assets or []),
            selection=selection,
            instance=self.automation.instance,
            resources=self.defs.resources,
            tags=tags,
            raise_on_error=False,
        )
        assert result.success is succeed, f"Spark run of {names} {first}..{last}: {succeed=}"

    def table(self, name: str) -> Path:
        return self.spark_dir / "warehouse" / "analytics.db" / name

    def rows(self, sql: str) -> list[tuple]:
        """Query the Spark tables' Parquet files (Hive layout) with DuckDB."""
        with duckdb.connect() as con:
            for name in ("fct_orders", "agg_weekly_revenue"):
                if not self.table(name).is_dir():
                    continue
                con.execute(
                    f"create view {name} as select * from read_parquet("
                    f"'{self.table(name)}/*/*.parquet', hive_partitioning = true)"
                )
            return con.execute(sql).fetchall()


ENSURE_JAVA = REPO_ROOT / "scripts" / "ensure-java.sh"


@pytest.fixture(scope="module")
def spark(tmp_path_factory) -> Iterator[SparkWarehouse]:
    # pyspark starts a local JVM: the project's script installs Java 17 where it is missing.
    subprocess.run(["bash", str(ENSURE_JAVA)], check=True)
    root = tmp_path_factory.mktemp("spark")
    project_dir = copy_demo_project(root / "dbt_project")
    spark_dir = root / "spark"
    load_spark_demo_data(spark_dir)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SPARK_DIR_ENV, str(spark_dir))
        for name in ("FLOWER_WINDOW_START", "FLOWER_WINDOW_END", "FLOWER_DUCKDB_PATH"):
            patch.delenv(name, raising=False)
        settings = load_settings(
            {"FLOWER_DBT_PROJECT_DIR": str(project_dir), "FLOWER_DBT_TARGET": "spark"}
        )
        # The manifest depends on the adapter (the incremental strategy, dispatched macros).
        FlowerDbtProject.from_settings(settings).parse()
        defs = dbt_definitions(settings)
        automation = Automation(defs, make_instance(root / "dagster_home"))
        assert automation.tick() == {}
        yield SparkWarehouse(project_dir, spark_dir, defs, automation)
        automation.instance.dispose()
        shutil.rmtree(spark_dir / "warehouse", ignore_errors=True)


@pytest.fixture(scope="module")
def on_duckdb(warehouse: Warehouse, tmp_path_factory) -> Iterator[Warehouse]:
    for twin in private_warehouse(warehouse, tmp_path_factory, "spark_twin"):
        assert twin.materialize(AssetSelection.tag("flower/grain", "unpartitioned")).success
        yield twin


def _files(folder: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime for p in folder.glob("*.parquet")}


ORDERS_OF_WEEK = (
    "select order_id, user_id, status, cast(amount_paid as decimal(12, 2)), "
    "cast(ordered_at as varchar), cast(order_date as date) from fct_orders "
    "where order_date between '2024-01-08' and '2024-01-14' order by order_id"
)
WEEKLY = (
    "select cast(week_start as date), country, order_count, cancelled_order_count, "
    "cast(revenue as decimal(14, 2)) from agg_weekly_revenue "
    "where week_start = '2024-01-08' order by country"
)


def test_spark_runs_the_demo_like_duckdb_and_replaces_only_its_partition(spark, on_duckdb):
    # The week of dailies as one backfill, and the unpartitioned models it reads.
    spark.run(["unpartitioned"])
    spark.run(["fct_orders"], WEEK[0], WEEK[-1])
    partitions = sorted(p.name for p in spark.table("fct_orders").iterdir() if p.is_dir())
    assert partitions == [f"order_date={day}" for day in WEEK]
    # The partition column is the table's last column (Hive layout), taken from meta.flower.
    before = {day: _files(spark.table("fct_orders") / f"order_date={day}") for day in WEEK}
    rows_before = spark.rows(ORDERS_OF_WEEK)

    # Re-running one day writes identical rows and replaces only that day's files.
    spark.run(["fct_orders"], REPAIRED)
    after = {day: _files(spark.table("fct_orders") / f"order_date={day}") for day in WEEK}
    assert spark.rows(ORDERS_OF_WEEK) == rows_before
    assert set(after[REPAIRED]).isdisjoint(before[REPAIRED])
    assert all(after[day] == before[day] for day in WEEK if day != REPAIRED)

    spark.run(["agg_weekly_revenue"], "2024-01-08")

    # The same on DuckDB: equal rows.
    assert on_duckdb.materialize(
        ["fct_orders"],
        partition_key=None,
        tags={
            ASSET_PARTITION_RANGE_START_TAG: WEEK[0],
            ASSET_PARTITION_RANGE_END_TAG: WEEK[-1],
        },
    ).success
    assert on_duckdb.materialize(["agg_weekly_revenue"], partition_key="2024-01-08").success
    assert spark.rows(ORDERS_OF_WEEK) == on_duckdb.query(ORDERS_OF_WEEK) != []
    assert spark.rows(WEEKLY) == on_duckdb.query(WEEKLY) != []

    # A repair: a late order lands on the day in both warehouses' raw data.
    change_day(spark.spark_dir / RAW_DUCKDB_NAME, date.fromisoformat(REPAIRED))
    export_raw_tables(spark.spark_dir / RAW_DUCKDB_NAME, spark.spark_dir)
    change_day(on_duckdb.duckdb_path, date.fromisoformat(REPAIRED))
    spark.run(["fct_orders"], REPAIRED)
    # The repair rule asks for exactly the week that contains the day (January is incomplete).
    requested = spark.automation.tick()
    assert requested.get("agg_weekly_revenue") == {"2024-01-08"}
    assert "agg_monthly_revenue" not in requested
    spark.run(["agg_weekly_revenue"], "2024-01-08")
    assert on_duckdb.materialize(["fct_orders"], partition_key=REPAIRED).success
    assert on_duckdb.materialize(["agg_weekly_revenue"], partition_key="2024-01-08").success
    repaired = spark.rows(WEEKLY)
    assert repaired == on_duckdb.query(WEEKLY)
    # The week counts the late order: one more than the orders it had.
    assert sum(row[2] for row in repaired) == len(rows_before) + 1


ORDERS_OF_DAY = (
    "select order_id, user_id, status, cast(amount_paid as decimal(12, 2)), "
    "cast(ordered_at as varchar) from fct_orders where order_date = '{day}' order by order_id"
)


def test_spark_publishes_only_audited_rows_and_empties_an_emptied_day(spark):
    """Write, audit, publish on Spark: a failed test leaves the day's previous rows; a day whose
    raw orders are gone is empty after its re-run (dynamic overwrite alone would keep it)."""
    bad_day, emptied_day = "2024-01-09", "2024-01-11"
    if not spark.table("fct_orders").is_dir():  # run alone: build what the first test built
        spark.run(["unpartitioned"])
        spark.run(["fct_orders"], WEEK[0], WEEK[-1])
    raw = spark.spark_dir / RAW_DUCKDB_NAME
    before = spark.rows(ORDERS_OF_DAY.format(day=bad_day))
    assert before and spark.rows(ORDERS_OF_DAY.format(day=emptied_day))

    corrupt_day(raw, date.fromisoformat(bad_day))
    export_raw_tables(raw, spark.spark_dir)
    spark.run(["fct_orders"], bad_day, succeed=False)
    assert spark.rows(ORDERS_OF_DAY.format(day=bad_day)) == before

    repair_day(raw, date.fromisoformat(bad_day))
    with duckdb.connect(str(raw)) as db:
        db.execute(
            "delete from raw.orders where ordered_at >= ? and ordered_at < ?",
            [f"{emptied_day} 00:00:00", f"{emptied_day} 23:59:59.999999"],
        )
    export_raw_tables(raw, spark.spark_dir)
    spark.run(["fct_orders"], bad_day, emptied_day)
    assert spark.rows(ORDERS_OF_DAY.format(day=bad_day)) == before
    assert spark.rows(ORDERS_OF_DAY.format(day=emptied_day)) == []
    assert not (spark.table("fct_orders") / f"order_date={emptied_day}").exists()
