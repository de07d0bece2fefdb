"""Bringing your own dbt project (FLOWER_DBT_PROJECT_DIR), and what a broken one says.

Each test writes a small real dbt project and loads it through the setting, with real dbt.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from dagster import AssetKey, AssetSelection, materialize

from flower_dagster.dbt.project import FlowerDbtProject
from flower_dagster.defs.dbt import dbt_definitions
from flower_dagster.errors import DbtParseError, ModelConfigError
from flower_dagster.settings import load_settings
from tests.conftest import make_instance

pytestmark = pytest.mark.slow

PROFILES = """
shop:
  target: dev
  outputs:
    dev:
      type: duckdb
      path: "{path}"
      threads: 1
"""


def write_project(root: Path, files: dict[str, str], duckdb_path: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    base = {
        "dbt_project.yml": "name: shop\nversion: '1.0'\nconfig-version: 2\nprofile: shop\n",
        "profiles.yml": PROFILES.format(path=duckdb_path),
    }
    for name, text in {**base, **files}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


def _use(monkeypatch: pytest.MonkeyPatch, project: Path) -> None:
    monkeypatch.setenv("FLOWER_DBT_PROJECT_DIR", str(project))
    monkeypatch.delenv("FLOWER_DBT_TARGET", raising=False)


UNPARTITIONED_PROJECT = {
    "seeds/countries.csv": "code,name\nKR,Korea\nDE,Germany\n",
    "models/customers.sql": """
        select 1 as customer_id, 'KR' as country_code
        union all select 2, 'DE'
    """,
    "models/customers_by_country.sql": """
        select countries.name, count(*) as customers
        from {{ ref('customers') }} as customers
        join {{ ref('countries') }} as countries on customers.country_code = countries.code
        group by countries.name
    """,
    "models/schema_customers.yml": """
        models:
          - name: customers
            columns:
              - name: customer_id
                data_tests: [unique, not_null]
    """,
    "snapshots/customers_snapshot.sql": """
        {% snapshot customers_snapshot %}
        {{ config(unique_key='customer_id', strategy='check', check_cols='all') }}
        select * from {{ ref('customers') }}
        {% endsnapshot %}
    """,
}


def test_an_unpartitioned_project_loads_and_runs(tmp_path, monkeypatch):
    duckdb_path = tmp_path / "shop.duckdb"
    project = write_project(tmp_path / "shop", UNPARTITIONED_PROJECT, duckdb_path)
    _use(monkeypatch, project)
    settings = load_settings()
    FlowerDbtProject.from_settings(settings).parse()
    defs = dbt_definitions(settings)
    graph = defs.resolve_asset_graph()
    expected = {"countries", "customers", "customers_by_country", "customers_snapshot"}
    assert {k.to_user_string() for k in graph.materializable_asset_keys} == expected
    assert all(graph.get(k).partitions_def is None for k in graph.materializable_asset_keys)

    result = materialize(
        list(defs.assets or []),
        selection=AssetSelection.all(),
        instance=make_instance(tmp_path / "dagster_home"),
        resources=defs.resources,
    )
    assert result.success
    assert {e.asset_key for e in result.get_asset_materialization_events() if e.asset_key} == {
        AssetKey(name) for name in expected
    }
    import duckdb

    with duckdb.connect(str(duckdb_path), read_only=True) as db:
        rows = db.execute("select * from customers_by_country order by name").fetchall()
    assert rows == [("Germany", 1), ("Korea", 1)]


@pytest.mark.parametrize(
    ("files", "dbt_says"),
    [
        (
            {
                "models/orders.sql": "select 1 as id",
                "models/orders.yml": "models:\n  - name: orders\n    columns: [\n",
            },
            ["Error reading shop: orders.yml", "Syntax error near line 4"],
        ),
        (
            {"models/orders.sql": "select * from {{ ref('nope') }}"},
            ["Model 'model.shop.orders' (models/orders.sql) depends on a node named 'nope'"],
        ),
    ],
)
def test_a_project_that_fails_to_parse_gives_dbts_error_with_the_file(
    tmp_path, monkeypatch, files, dbt_says
):
    project = write_project(tmp_path / "shop", files, tmp_path / "shop.duckdb")
    _use(monkeypatch, project)
    settings = load_settings()
    with pytest.raises(DbtParseError) as raised:
        dbt_definitions(settings)
    message = str(raised.value)
    assert message.startswith(f"dbt could not parse the project in {project}:")
    for words in dbt_says:
        assert words in message
    assert "Traceback" not in message


BAD_GRAIN_PROJECT = {
    "models/events.sql": "{{ config(materialized='incremental') }} select 1 as id",
    "models/events.yml": """
        models:
          - name: events
            config:
              meta:
                flower: {partition: yearly, partition_column: id}
    """,
}


def test_a_bad_grain_in_a_real_project_is_reported_at_load(tmp_path, monkeypatch):
    project = write_project(tmp_path / "shop", BAD_GRAIN_PROJECT, tmp_path / "shop.duckdb")
    _use(monkeypatch, project)
    with pytest.raises(ModelConfigError) as raised:
        dbt_definitions(load_settings())
    assert raised.value.problems == [
        "model events (models/events.sql, properties models/events.yml): "
        "meta.flower.partition is 'yearly'; allowed: hourly, daily, weekly, monthly "
        "(or leave it out for an unpartitioned model)"
    ]


def test_dagster_definitions_validate_shows_the_message_and_fails(tmp_path):
    project = write_project(tmp_path / "shop", BAD_GRAIN_PROJECT, tmp_path / "shop.duckdb")
    dagster = Path(sys.executable).with_name("dagster")
    result = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", "flower_dagster.definitions"],
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "DAGSTER_HOME": str(make_instance(tmp_path / "home").root_directory),
            "FLOWER_DBT_PROJECT_DIR": str(project),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "meta.flower.partition is 'yearly'" in result.stdout + result.stderr
