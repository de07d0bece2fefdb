"""The demo's raw data for the Spark target: the same rows, as Parquet files Spark reads.

The raw tables are generated into a DuckDB file of their own (so `corrupt_day`, `repair_day` and
`change_day` work the same on both engines), then copied to `$FLOWER_SPARK_DIR/raw/<table>/` as
Parquet. Each dbt invocation on Spark registers them as external tables of database `raw`
(the project's `flower_spark_raw_tables` on-run-start hook) and refreshes them, so an edited day
is seen by the next run. Timestamps stay wall-clock values without time zone, as in DuckDB.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import duckdb

from flower_dagster.demo.data import RAW_SCHEMA, RAW_TABLES, load_demo_data

SPARK_DIR_ENV = "FLOWER_SPARK_DIR"
RAW_DUCKDB_NAME = "shop_source.duckdb"  # not raw.duckdb: its catalog would shadow schema raw


def spark_dir(project_dir: Path, environ: Mapping[str, str] | None = None) -> Path:
    """Where the Spark target keeps its metastore, tables and the demo's raw files."""
    env = os.environ if environ is None else environ
    value = env.get(SPARK_DIR_ENV)
    if not value:
        return project_dir / "state" / "spark"
    path = Path(value).expanduser()
    return path if path.is_absolute() else project_dir / path


def export_raw_tables(raw_duckdb: Path, directory: Path) -> dict[str, int]:
    """Write each raw table of `raw_duckdb` to `directory/raw/<table>/` as one Parquet file."""
    counts = {}
    with duckdb.connect(str(raw_duckdb), read_only=True) as con:
        for table in RAW_TABLES:
            folder = directory / "raw" / table
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir(parents=True)
            con.execute(
                f"copy (select * from {RAW_SCHEMA}.{table}) "
                f"to '{folder / 'part-00000.parquet'}' (format parquet)"
            )
            counts[table] = con.execute(f"select count(*) from {RAW_SCHEMA}.{table}").fetchone()[0]
    return counts


def load_spark_demo_data(directory: Path) -> dict[str, int]:
    """Generate the demo's raw data and lay it out for the Spark target in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    raw = directory / RAW_DUCKDB_NAME
    load_demo_data(raw)
    return export_raw_tables(raw, directory)
