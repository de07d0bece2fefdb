"""The pool settings of the PostgreSQL storage (flower_dagster/storage.py), without a server.

The pooled storage itself runs against a real PostgreSQL server in test_postgres_instance.py.
"""

from __future__ import annotations

import pytest
import yaml
from dagster import DagsterInstance

from flower_dagster.settings import REPO_ROOT
from flower_dagster.storage import PoolSettings

PRODUCTION_INSTANCE = REPO_ROOT / "deploy" / "dagster.yaml"


def test_pool_settings_default_to_a_small_pool_checked_before_reuse():
    settings = PoolSettings.from_config({})
    assert settings == PoolSettings(size=1, max_overflow=8, recycle_seconds=1800)
    kwargs = settings.engine_kwargs()
    assert kwargs["pool_size"] == 1
    assert kwargs["max_overflow"] == 8
    assert kwargs["pool_recycle"] == 1800
    assert kwargs["pool_pre_ping"] is True


def test_pool_settings_are_read_from_the_storage_config():
    settings = PoolSettings.from_config(
        {"pool_size": 5, "max_overflow": 0, "pool_recycle_seconds": 60}
    )
    assert settings == PoolSettings(size=5, max_overflow=0, recycle_seconds=60)


@pytest.mark.parametrize(
    ("field", "value", "least"),
    [("pool_size", 0, 1), ("max_overflow", -1, 0), ("pool_recycle_seconds", 0, 1)],
)
def test_a_pool_setting_out_of_range_names_the_field_and_what_is_allowed(field, value, least):
    with pytest.raises(ValueError) as error:
        PoolSettings.from_config({field: value})
    assert str(error.value) == (
        f"dagster.yaml: storage config `{field}` is {value}; it must be {least} or more"
    )


def test_a_bad_pool_setting_stops_the_instance_before_it_connects(tmp_path, monkeypatch):
    """The production file with one pool setting wrong: the instance does not load, and it
    fails on the setting, before any connection is tried (the host does not exist)."""
    config = yaml.safe_load(PRODUCTION_INSTANCE.read_text())
    config["run_storage"]["config"] = {**config["run_storage"]["config"], "pool_size": 0}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    for name, value in {
        "DAGSTER_PG_HOST": "no-such-host.invalid",
        "DAGSTER_PG_PORT": "5432",
        "DAGSTER_PG_USER": "dagster",
        "DAGSTER_PG_PASSWORD": "secret",
        "DAGSTER_PG_DB": "dagster",
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match="storage config `pool_size` is 0"):
        DagsterInstance.from_config(str(tmp_path))
