"""The warehouse pool's slots are a per-engine setting, and the instance follows it; DuckDB's one
writer is guaranteed by the warehouse lock whatever the pool does."""

from __future__ import annotations

import multiprocessing
import os

import pytest
from dagster import AssetKey, DagsterInstance, build_sensor_context, materialize

from flower_dagster.errors import SettingsError
from flower_dagster.pool import POOL_SENSOR_NAME, ensure_pool_slots, pool_sensor, target_adapter
from flower_dagster.settings import DEMO_DBT_PROJECT_DIR, load_settings
from tests.conftest import Warehouse, make_instance

ORDERS = AssetKey("fct_orders")


def _settings(tmp_path, text: str):
    path = tmp_path / "flower.yaml"
    # Without dbt.project_dir the project is dbt_project/ next to the file: name the demo's.
    path.write_text(f"dbt: {{project_dir: {DEMO_DBT_PROJECT_DIR}}}\n{text}")
    return load_settings({"FLOWER_SETTINGS_FILE": str(path)})


def test_slots_follow_the_adapter_of_the_target(tmp_path):
    default = load_settings({})
    assert target_adapter(default) == "duckdb"
    assert default.slots_for("duckdb") == 1
    spark = _settings(tmp_path, "warehouse: {slots: {duckdb: 1, spark: 4}}\n")
    assert (spark.slots_for("spark"), spark.slots_for("duckdb")) == (4, 1)
    # An engine the settings do not name gets one slot: safe until someone says more.
    assert spark.slots_for("postgres") == 1


def test_a_bad_slot_count_names_the_key_and_what_is_allowed(tmp_path):
    path = tmp_path / "flower.yaml"
    path.write_text("warehouse: {slots: {spark: 0}}\n")
    with pytest.raises(SettingsError) as error:
        load_settings({"FLOWER_SETTINGS_FILE": str(path)})
    assert str(error.value) == (
        "flower.yaml: warehouse.slots.spark is 0; allowed: a mapping of dbt adapter types to "
        "whole numbers of slots from 1 to 64, e.g. {duckdb: 1, spark: 4}"
    )


def _tick(instance, settings) -> str:
    sensor = pool_sensor(settings)
    assert sensor.name == POOL_SENSOR_NAME
    result = sensor.evaluate_tick(build_sensor_context(instance=instance))
    return result.skip_message or ""


def test_the_sensor_sets_the_instance_pool_to_the_setting_and_keeps_it(tmp_path):
    instance = make_instance(tmp_path / "home")
    storage = instance.event_log_storage
    three = _settings(tmp_path, "warehouse: {slots: {duckdb: 3}}\n")
    assert _tick(instance, three) == (
        "set pool 'warehouse' to 3 slot(s) for duckdb (warehouse.slots)"
    )
    assert storage.get_concurrency_info("warehouse").slot_count == 3
    assert _tick(instance, three) == "pool 'warehouse' has 3 slot(s) for duckdb, as set"
    # Someone changes it by hand; the next tick puts the setting back.
    storage.set_concurrency_slots("warehouse", 7)
    assert _tick(instance, three).startswith("set pool 'warehouse' to 3")
    assert storage.get_concurrency_info("warehouse").slot_count == 3
    # Back to one writer.
    one = _settings(tmp_path, "warehouse: {slots: {duckdb: 1}}\n")
    assert _tick(instance, one).startswith("set pool 'warehouse' to 1")
    assert storage.get_concurrency_info("warehouse").slot_count == 1
    assert ensure_pool_slots(instance, "warehouse", 1) is False
    instance.dispose()


CLAIMERS = 4
ROUNDS = 6


def _claim_in_rounds(home: str, prefix: str, barrier, results) -> None:
    """One process (a run worker's stand-in): in each round, at the same instant as the others,
    claim the one slot of that round's pool for a step of its own run; then the round's holder
    gives its slot back and everyone else asks again."""
    with DagsterInstance.from_config(home) as instance:
        storage = instance.event_log_storage
        run_id = f"{prefix}-run-{os.getpid()}"
        for round_ in range(ROUNDS):
            pool = f"{prefix}-{round_}"
            barrier.wait(timeout=120)
            first = storage.claim_concurrency_slot(pool, run_id, "dbt_step").is_claimed
            barrier.wait(timeout=120)
            if first:
                storage.free_concurrency_slot_for_step(run_id, "dbt_step")
            barrier.wait(timeout=120)
            again = (
                not first and storage.claim_concurrency_slot(pool, run_id, "dbt_step").is_claimed
            )
            results.put((round_, first, again))


def assert_one_slot_is_claimed_at_a_time(instance: DagsterInstance, prefix: str) -> None:
    """`CLAIMERS` processes on `instance`'s storage claim one-slot pools at the same instant."""
    for round_ in range(ROUNDS):
        instance.event_log_storage.set_concurrency_slots(f"{prefix}-{round_}", 1)
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(CLAIMERS), context.Queue()
    home = str(instance.root_directory)
    processes = [
        context.Process(target=_claim_in_rounds, args=(home, prefix, barrier, results))
        for _ in range(CLAIMERS)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=300) for _ in range(CLAIMERS * ROUNDS)]
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    for round_ in range(ROUNDS):
        of_round = [(first, again) for number, first, again in outcomes if number == round_]
        # One process holds the slot at a time; once it is given back, exactly one other.
        assert sum(first for first, _ in of_round) == 1, (round_, of_round)
        assert sum(again for _, again in of_round) == 1, (round_, of_round)


def _materialize_at_the_barrier(warehouse: Warehouse, day: str, barrier, results) -> None:
    """One run worker's stand-in: the product's dbt step for `day`, started at the same instant
    as the other's, on an instance of its own (no pool shared, so nothing but the warehouse lock
    stands between the two dbt processes and the DuckDB file)."""
    with DagsterInstance.ephemeral() as instance:
        barrier.wait(timeout=120)
        result = materialize(
            list(warehouse.defs.assets or []),
            selection=[ORDERS],
            instance=instance,
            resources=warehouse.defs.resources,
            partition_key=day,
            raise_on_error=False,
        )
        said = [
            (entry.timestamp, entry.user_message)
            for entry in instance.all_logs(result.run_id)
            if "warehouse lock" in entry.user_message
        ]
        failures = [
            str(event.event_specific_data.error)
            for event in result.all_events
            if event.is_step_failure
        ]
        results.put((day, result.success, said, failures))


@pytest.mark.slow
def test_two_dbt_steps_on_one_duckdb_file_at_the_same_instant_take_turns(warehouse: Warehouse):
    """Dagster's SQLite storage can hand the warehouse pool's one slot to two run workers at
    once; DuckDB then refuses the second writer ("Could not set lock on file"). The product's
    dbt step holds a file lock beside the DuckDB file, so two steps started at the same instant,
    with no pool between them, both succeed, one after the other."""
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(2), context.Queue()
    days = ["2024-02-12", "2024-02-13"]
    processes = [
        context.Process(target=_materialize_at_the_barrier, args=(warehouse, day, barrier, results))
        for day in days
    ]
    for process in processes:
        process.start()
    outcomes = sorted(results.get(timeout=300) for _ in days)
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    for day, success, _, failures in outcomes:
        assert success, (day, failures)
    # Each held the lock once, and one's hold ended before the other's began.
    holds = []
    for _, _, said, _ in outcomes:
        taken = [at for at, message in said if message.startswith("holding the warehouse lock")]
        released = [at for at, message in said if message.startswith("releasing the warehouse")]
        assert len(taken) == len(released) == 1, said
        holds.append((taken[0], released[0]))
    first, second = sorted(holds)
    assert first[1] <= second[0], holds
    # They did meet: one of them waited for the other.
    waited = [day for day, _, said, _ in outcomes if any("waiting" in m for _, m in said)]
    assert len(waited) == 1, outcomes
