"""Each bad model configuration gives one message naming the model, its file, the value and
what is allowed (synthetic manifests: the same checks run on real ones in test_bad_projects)."""

from typing import Any

import pytest

from flower_dagster.dbt.models import grain_selector, read_grains
from flower_dagster.errors import ModelConfigError
from flower_dagster.partitions import Grain


def _node(name: str, materialized: str = "incremental", flower: Any = None, **extra: Any):
    meta = {} if flower is None else {"flower": flower}
    return {
        "unique_id": f"model.p.{name}",
        "name": name,
        "resource_type": extra.pop("resource_type", "model"),
        "original_file_path": f"models/{name}.sql",
        "patch_path": f"p://models/{name}.yml",
        "config": {"materialized": materialized, "meta": meta},
        **extra,
    }


def _manifest(*nodes: dict, parents: dict[str, list[str]] | None = None) -> dict:
    return {
        "nodes": {n["unique_id"]: n for n in nodes},
        "parent_map": {
            n["unique_id"]: [f"model.p.{p}" for p in (parents or {}).get(n["name"], [])]
            for n in nodes
        },
    }


DAILY = {"partition": "daily", "partition_column": "order_date"}


def _problems(manifest: dict) -> list[str]:
    with pytest.raises(ModelConfigError) as raised:
        read_grains(manifest)
    return raised.value.problems


def test_reads_grains_and_columns():
    grains = read_grains(
        _manifest(
            _node("stg", "view"),
            _node("daily", flower=DAILY),
            _node("weekly", flower={"partition": "Weekly", "partition_column": "week_start"}),
            parents={"daily": ["stg"], "weekly": ["daily"]},
        )
    )
    assert grains["model.p.stg"].grain is None
    assert grains["model.p.daily"].grain is Grain.DAILY
    assert grains["model.p.daily"].partition_column == "order_date"
    assert grains["model.p.weekly"].grain is Grain.WEEKLY


def test_unknown_grain():
    (problem,) = _problems(_manifest(_node("m", flower={"partition": "dayly"})))
    assert problem == (
        "model m (models/m.sql, properties models/m.yml): meta.flower.partition is 'dayly'; "
        "allowed: hourly, daily, weekly, monthly (or leave it out for an unpartitioned model)"
    )


def test_partitioned_ephemeral_model():
    (problem,) = _problems(_manifest(_node("m", "ephemeral", flower=DAILY)))
    assert "model m (models/m.sql" in problem
    assert "is partitioned 'daily' but materialized 'ephemeral'" in problem
    assert "must be materialized 'incremental'" in problem


def test_partitioned_table_would_lose_history():
    (problem,) = _problems(_manifest(_node("m", "table", flower=DAILY)))
    assert "materialized 'table'" in problem
    assert "rebuilt with only the latest partition" in problem


def test_finer_than_a_partitioned_parent():
    (problem,) = _problems(
        _manifest(
            _node("weekly", flower={"partition": "weekly", "partition_column": "week_start"}),
            _node("daily", flower=DAILY),
            parents={"daily": ["weekly"]},
        )
    )
    assert problem.startswith("model daily (models/daily.sql, properties models/daily.yml)")
    assert "is 'daily' but it reads weekly, which is 'weekly'" in problem
    assert "allowed here: weekly, monthly" in problem


def test_finer_than_a_parent_seen_through_an_ephemeral_model():
    (problem,) = _problems(
        _manifest(
            _node("monthly", flower={"partition": "monthly", "partition_column": "m"}),
            _node("eph", "ephemeral"),
            _node("daily", flower=DAILY),
            parents={"eph": ["monthly"], "daily": ["eph"]},
        )
    )
    assert "it reads monthly, which is 'monthly'" in problem


def test_missing_partition_column():
    (problem,) = _problems(_manifest(_node("m", flower={"partition": "daily"})))
    assert "meta.flower.partition_column is None" in problem


def test_unknown_key_is_named():
    (problem,) = _problems(_manifest(_node("m", flower={**DAILY, "partiton": "daily"})))
    assert (
        "unknown key meta.flower.partiton; allowed: partition, partition_column, schedule_hour"
        in problem
    )


@pytest.mark.parametrize("hour", [24, "7am", -1, True])
def test_a_bad_model_schedule_hour(hour):
    (problem,) = _problems(_manifest(_node("m", flower={**DAILY, "schedule_hour": hour})))
    assert f"meta.flower.schedule_hour is {hour!r}; allowed: a whole hour from 0 to 23" in problem


def test_a_model_schedule_hour_is_read():
    grains = read_grains(_manifest(_node("m", flower={**DAILY, "schedule_hour": 5})))
    assert grains["model.p.m"].schedule_hour == 5


def test_seed_cannot_be_partitioned():
    (problem,) = _problems(_manifest(_node("s", "seed", flower=DAILY, resource_type="seed")))
    assert "only models can be partitioned, not a seed" in problem


def test_meta_flower_must_be_a_mapping():
    (problem,) = _problems(_manifest(_node("m", flower="daily")))
    assert "meta.flower is 'daily'; it must be a mapping" in problem


def test_all_problems_are_reported_at_once():
    problems = _problems(
        _manifest(_node("a", flower={"partition": "yearly"}), _node("b", "view", flower=DAILY))
    )
    assert len(problems) == 2
    assert str(ModelConfigError(problems)).startswith("2 dbt model configuration problems:")


def test_grain_selector_is_a_dbt_config_selector():
    assert grain_selector(Grain.WEEKLY) == "config.meta.flower.partition:weekly"
