"""The stock baseline of the load benchmark: one unpartitioned `@dbt_assets` over a manifest.

What a dagster-dbt user writes from the documentation, and nothing else: the manifest comes
from FLOWER_BENCH_MANIFEST (the same file flower-dagster loads), the dbt resource points at its
project. `dagster definitions validate -m bench.stock_defs` loads it.
"""

import os
import sys
from pathlib import Path

from dagster import AssetExecutionContext, Definitions
from dagster_dbt import DbtCliResource, dbt_assets

MANIFEST = Path(os.environ["FLOWER_BENCH_MANIFEST"])
PROJECT_DIR = MANIFEST.parent.parent


@dbt_assets(manifest=MANIFEST)
def stock_dbt_assets(context: AssetExecutionContext, dbt: DbtCliResource):
    yield from dbt.cli(["build"], context=context).stream()


defs = Definitions(
    assets=[stock_dbt_assets],
    resources={
        "dbt": DbtCliResource(
            project_dir=str(PROJECT_DIR),
            profiles_dir=str(PROJECT_DIR),
            dbt_executable=str(Path(sys.executable).with_name("dbt")),
        )
    },
)
