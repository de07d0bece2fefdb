"""Running dbt for one Dagster step: the window in, Dagster events out.

A step runs `dbt build` over its selected models once, whatever the number of partitions: a
backfill range of 31 days is one invocation whose window runs from the first day's start to the
last day's end. The window travels in environment variables (see partitions.window_env), which
dbt reads only while executing, so its partial parse stays valid across partition runs.

dbt tests of severity `error` are blocking: a model's materialization is held back until its
tests have run, and dropped when one of them fails, so the partition is recorded as failed
rather than as materialized with bad data.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    Output,
)
from dagster_dbt import DbtCliResource

from flower_dagster.errors import DbtRunError
from flower_dagster.partitions import WINDOW_END_ENV, WINDOW_START_ENV, window_env

_ENV_LOCK = threading.Lock()


def run_dbt_build(context: AssetExecutionContext, dbt: DbtCliResource) -> Iterator[Any]:
    """The body of every flower dbt asset: `dbt build` over the step's selection and window."""
    # An unpartitioned step clears any window left in the environment: it builds everything.
    env = {WINDOW_START_ENV: "", WINDOW_END_ENV: ""}
    if context.has_partition_key:
        window = context.partition_time_window
        env = window_env(window.start, window.end)
        context.log.info(
            f"dbt build for partitions {_range_label(context)}: window "
            f"[{env[WINDOW_START_ENV]}, {env[WINDOW_END_ENV]})"
        )
    with _environment(env):
        # dagster-dbt copies os.environ into the dbt subprocess when the invocation starts.
        invocation = dbt.cli(["build"], context=context, raise_on_error=False)

    expected = _selected_checks_by_asset(context)
    blocking = {key for key in context.selected_asset_check_keys if _is_blocking(context, key)}
    yield from hold_until_checked(
        invocation.stream(),
        expected_checks=expected,
        blocking_checks=blocking,
        asset_key_of=lambda output: context.asset_key_for_output(output.output_name),
    )
    if not invocation.is_successful():
        raise DbtRunError(
            failure_summary(invocation.get_artifact("run_results.json"), _range_label(context))
        )


def hold_until_checked(
    events: Iterable[Any],
    *,
    expected_checks: Mapping[AssetKey, set[AssetCheckKey]],
    blocking_checks: set[AssetCheckKey],
    asset_key_of: Callable[[Output], AssetKey],
) -> Iterator[Any]:
    """Pass events through, holding each model's Output until its selected checks have run.

    An Output is released once every expected check of its asset has reported; it is dropped
    when a blocking check failed. Outputs whose checks never reported (dbt skipped them) are
    released at the end. Everything else passes through in order.
    """
    pending = {key: set(checks) for key, checks in expected_checks.items()}
    held: dict[AssetKey, Output] = {}
    failed: set[AssetKey] = set()

    for event in events:
        if isinstance(event, Output):
            key = asset_key_of(event)
            if pending.get(key):
                held[key] = event
                continue
            if key not in failed:
                yield event
            continue
        yield event
        if isinstance(event, AssetCheckResult):
            key = event.asset_key
            check_key = AssetCheckKey(key, event.check_name)
            if (
                not event.passed
                and event.severity == AssetCheckSeverity.ERROR
                and check_key in blocking_checks
            ):
                failed.add(key)
            remaining = pending.get(key)
            if remaining is not None:
                remaining.discard(check_key)
                if not remaining and key in held:
                    output = held.pop(key)
                    if key not in failed:
                        yield output
    for key, output in held.items():
        if key not in failed:
            yield output


def failure_summary(run_results: Mapping[str, Any], partitions: str) -> str:
    """One line per failed dbt node, with dbt's message: what a person needs first."""
    lines = []
    for result in run_results.get("results", []):
        status = result.get("status")
        if status not in ("error", "fail", "runtime error"):
            continue
        uid = result.get("unique_id", "?")
        # unique ids are `kind.project.name[.suffix]` (tests end in a hash, versions in `v2`).
        parts = uid.split(".")
        kind, name = parts[0], parts[2] if len(parts) > 2 else uid
        message = " ".join(str(result.get("message") or "").split())
        if kind == "test":
            failures = result.get("failures")
            rows = f" ({failures} failing row{'s' if failures != 1 else ''})" if failures else ""
            lines.append(f"test {name} failed{rows}: {message}")
        else:
            lines.append(f"{kind} {name} failed: {message}")
    what = "\n".join(f"  - {line}" for line in lines) or "  - dbt exited with an error"
    return f"dbt build failed for partitions {partitions}:\n{what}"


def _range_label(context: AssetExecutionContext) -> str:
    if not context.has_partition_key:
        return "(unpartitioned)"
    keys = context.partition_key_range
    return keys.start if keys.start == keys.end else f"{keys.start}..{keys.end}"


def _selected_checks_by_asset(context: AssetExecutionContext) -> dict[AssetKey, set[AssetCheckKey]]:
    by_asset: dict[AssetKey, set[AssetCheckKey]] = {}
    for check_key in context.selected_asset_check_keys:
        by_asset.setdefault(check_key.asset_key, set()).add(check_key)
    return by_asset


def _is_blocking(context: AssetExecutionContext, check_key: AssetCheckKey) -> bool:
    spec = context.assets_def.get_spec_for_check_key(check_key)
    return bool(spec.blocking)


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block, then restore them."""
    with _ENV_LOCK:
        previous = {name: os.environ.get(name) for name in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for name, value in previous.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
