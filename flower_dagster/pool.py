"""The warehouse pool's size follows the engine: one writer for DuckDB, more where the engine can.

Every dbt step runs in one Dagster concurrency pool (`warehouse.pool`). How many may run at once
is a per-target setting, `warehouse.slots` keyed by the dbt adapter of the environment's target
(`{duckdb: 1, spark: 4}`): DuckDB allows one writer, a distributed engine takes several, so
scaling out removes the bottleneck by changing one line.

Dagster keeps pool limits in the instance, not in code; the `warehouse_pool_slots` sensor makes
the instance follow the settings (it sets the limit when it differs, and says so), so a
deployment never runs with a limit someone set by hand and forgot.
"""

from __future__ import annotations

from dagster import DefaultSensorStatus, SensorDefinition, SensorEvaluationContext, SkipReason
from dagster import sensor as dagster_sensor

from flower_dagster.dbt.profile import target_of
from flower_dagster.errors import FlowerError
from flower_dagster.settings import Settings

POOL_SENSOR_NAME = "warehouse_pool_slots"
POOL_SENSOR_INTERVAL_SECONDS = 60


def target_adapter(settings: Settings) -> str | None:
    """The dbt adapter type of the environment's target (None when profiles.yml cannot tell)."""
    try:
        return target_of(settings).type
    except FlowerError:
        return None


def ensure_pool_slots(instance, pool: str, slots: int) -> bool:
    """Give `pool` exactly `slots` slots in the instance; True when it had to change."""
    storage = instance.event_log_storage
    current = (
        storage.get_concurrency_info(pool).slot_count
        if pool in storage.get_concurrency_keys()
        else None
    )
    if current == slots:
        return False
    storage.set_concurrency_slots(pool, slots)
    return True


def pool_sensor(settings: Settings) -> SensorDefinition:
    adapter = target_adapter(settings)
    pool, slots = settings.warehouse_pool, settings.slots_for(adapter)
    engine = adapter or "an adapter profiles.yml does not name"

    @dagster_sensor(
        name=POOL_SENSOR_NAME,
        minimum_interval_seconds=POOL_SENSOR_INTERVAL_SECONDS,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            f"Keeps the concurrency pool '{pool}' at {slots} slot(s), the warehouse.slots "
            f"setting for {engine}."
        ),
    )
    def warehouse_pool_slots(context: SensorEvaluationContext) -> SkipReason:
        if ensure_pool_slots(context.instance, pool, slots):
            message = f"set pool '{pool}' to {slots} slot(s) for {engine} (warehouse.slots)"
            context.log.info(message)
            return SkipReason(message)
        return SkipReason(f"pool '{pool}' has {slots} slot(s) for {engine}, as set")

    return warehouse_pool_slots
