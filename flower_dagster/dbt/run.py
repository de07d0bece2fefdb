"""Running dbt for one Dagster step: the source check, the window in, Dagster events out.

A step runs `dbt build` over its selected models once, whatever the number of partitions: a
backfill range of 31 days is one invocation whose window runs from the first day's start to the
last day's end. The window travels in environment variables (see partitions.window_env), which
dbt reads only while executing, so its partial parse stays valid across partition runs.

Before dbt runs, each selected roll-up's source check (`inputs_complete`) looks at every upstream
partition it reads; if one is missing, failed or in progress, the step stops there and dbt does
not run.

dbt tests of severity `error` are blocking: a model's materialization is held back until its
tests have run, and dropped when one of them fails, so the partition is recorded as failed
rather than as materialized with bad data. The rest are recorded once dbt has exited and its
on-run-end hook published the tested rows (write, audit, publish: docs/publish.md). A
partitioned model's materialization becomes one event per partition, each with a data version
derived from the rows dbt wrote there.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckKey,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    Output,
)
from dagster_dbt import DbtCliInvocation, DbtCliResource

from flower_dagster._compat import DAGSTER_DBT_UNIQUE_ID_METADATA_KEY
from flower_dagster.dagster_tags import BACKFILL_ID_TAG
from flower_dagster.dbt import provenance
from flower_dagster.dbt.profile import resolve_target
from flower_dagster.dbt.selection import INDIRECT_SELECTION_ENV
from flower_dagster.dbt.target_dirs import finish_invocation, prepare_invocation
from flower_dagster.dbt.versions import (
    PartitionReport,
    input_provenance,
    parse_report,
    partition_materializations,
    versions_by_partition,
)
from flower_dagster.environment import environment
from flower_dagster.errors import DbtRunError, FlowerError
from flower_dagster.inputs import INPUTS_CHECK_NAME, InputProblem, describe_problems, input_problems
from flower_dagster.partitions import WINDOW_END_ENV, WINDOW_START_ENV, window_env
from flower_dagster.warehouse_lock import warehouse_lock


def run_dbt_build(
    context: AssetExecutionContext, dbt: DbtCliResource, managed: frozenset[AssetKey]
) -> Iterator[Any]:
    """One build, then again while an input partition it read changed during it (provenance.py)."""
    inputs = provenance.step_inputs(context, managed)
    reported: set[AssetCheckKey] = set()
    for _ in range(provenance.MAX_RERUNS + 1):
        before = provenance.snapshot(context.instance, inputs)
        for event in _build_once(context, dbt, managed):
            # Dagster takes one result per check and step: a re-run's repeat is not reported.
            if isinstance(event, AssetCheckResult):
                check = AssetCheckKey(event.asset_key, event.check_name)
                if check in reported:
                    continue
                reported.add(check)
            yield event
        changed = provenance.changed_since(context.instance, inputs, before)
        if not changed:
            return
        names = ", ".join(key.to_user_string() for key in changed)
        context.log.warning(f"{names} changed while dbt ran; running dbt again")
    raise DbtRunError(f"inputs kept changing while dbt ran ({names}); gave up after re-runs")


def _build_once(
    context: AssetExecutionContext, dbt: DbtCliResource, managed: frozenset[AssetKey]
) -> Iterator[Any]:
    """The body of every flower dbt asset: source check, then `dbt build` over the window.

    `managed` holds the asset keys of every dbt node flower-dagster runs: the parents whose
    partitions the source check looks at.
    """
    blocked = yield from _check_inputs(context, managed)
    if blocked:
        raise DbtRunError(
            f"inputs incomplete for partitions {_range_label(context)}; dbt was not run:\n"
            + describe_problems(blocked)
        )
    dbt_checks = [k for k in context.selected_asset_check_keys if k.name != INPUTS_CHECK_NAME]
    if not context.selected_asset_keys and not dbt_checks:
        return  # only source checks were asked for

    # An unpartitioned step clears any window left in the environment: it builds everything.
    env = {WINDOW_START_ENV: "", WINDOW_END_ENV: "", **INDIRECT_SELECTION_ENV}
    if is_partitioned(context):
        window = context.partition_time_window
        env = {**window_env(window.start, window.end), **INDIRECT_SELECTION_ENV}
        context.log.info(
            f"dbt build for partitions {_range_label(context)}: window "
            f"[{env[WINDOW_START_ENV]}, {env[WINDOW_END_ENV]})"
        )
    reports: dict[str, PartitionReport] = {}
    expected: dict[AssetKey, set[AssetCheckKey]] = {}
    for check_key in dbt_checks:
        expected.setdefault(check_key.asset_key, set()).add(check_key)
    spec_of = context.assets_def.get_spec_for_check_key
    blocking = {key for key in dbt_checks if spec_of(key).blocking}
    # The invocation's target folder, seeded with its environment's partial parse; slimmed and
    # pruned when the step ends (target_dirs.py).
    target_path, env_key = prepare_invocation(dbt, context.op.name, context.run.run_id)
    try:
        # dbt writes the DuckDB file from when it starts until its events end.
        with _one_writer(dbt, context):
            with environment(env):
                # dagster-dbt copies os.environ into the dbt subprocess when it starts.
                invocation = dbt.cli(
                    ["build"], context=context, raise_on_error=False, target_path=target_path
                )
            recorded_after_publish: list[Any] = []
            for event in hold_until_checked(
                _events_with_reports(invocation, reports),
                expected_checks=expected,
                blocking_checks=blocking,
                asset_key_of=lambda output: context.asset_key_for_output(output.output_name),
                release=lambda output: _release(context, output, reports),
            ):
                if isinstance(event, (Output, AssetMaterialization)):
                    recorded_after_publish.append(event)
                else:
                    yield event
        # dbt's on-run-end publishes the tested rows (docs/publish.md): a materialization
        # recorded before it would claim rows that a killed run or a failed publish never
        # made visible. So they are recorded once dbt has exited and the publish succeeded.
        target = Path(invocation.target_path)
        unpublished = publish_failure(target) if recorded_after_publish else None
        if unpublished is None:
            yield from recorded_after_publish
        if not invocation.is_successful() or unpublished:
            why = failure_text(target, _range_label(context))
            if unpublished:
                why += (
                    f"\n  - {unpublished}: the tables keep their previous rows and no "
                    "partition of this step is recorded as built"
                )
            raise DbtRunError(why)
    finally:
        finish_invocation(Path(dbt.project_dir), env_key, target_path)


def _one_writer(dbt: DbtCliResource, context: AssetExecutionContext) -> AbstractContextManager:
    """The warehouse lock of the DuckDB file the dbt target writes (flower_dagster/
    warehouse_lock.py); nothing for another engine, which takes several writers."""
    duckdb_file = duckdb_file_of(dbt)
    if duckdb_file is None:
        return nullcontext()
    return warehouse_lock(duckdb_file, context.log.info)


def duckdb_file_of(dbt: DbtCliResource) -> Path | None:
    """The DuckDB file the resource's dbt target writes, None for another engine or when
    profiles.yml cannot tell (dbt then reports the problem itself)."""
    try:
        target = resolve_target(
            Path(dbt.project_dir),
            Path(dbt.profiles_dir) if dbt.profiles_dir else None,
            dbt.target,
        )
    except FlowerError:
        return None
    return target.path if target.type == "duckdb" else None


def hold_until_checked(
    events: Iterable[Any],
    *,
    expected_checks: Mapping[AssetKey, set[AssetCheckKey]],
    blocking_checks: set[AssetCheckKey],
    asset_key_of: Callable[[Output], AssetKey],
    release: Callable[[Output], Iterable[Any]] = lambda output: [output],
) -> Iterator[Any]:
    """Pass events through, holding each model's Output until its selected checks have run.

    An Output is released (through `release`) once every expected check of its asset has
    reported; it is dropped when a blocking check failed. Outputs whose checks never reported
    (dbt skipped them) are released at the end. Everything else passes through in order.
    """
    pending = {key: set(checks) for key, checks in expected_checks.items()}
    held: dict[AssetKey, Output] = {}
    failed: set[AssetKey] = set()

    for event in events:
        if isinstance(event, Output):
            key = asset_key_of(event)
            if pending.get(key):
                held[key] = event
            elif key not in failed:
                yield from release(event)
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
                        yield from release(output)
    for key, output in held.items():
        if key not in failed:
            yield from release(output)


def publish_failure(target_path: Path) -> str | None:
    """Why the tested rows of an invocation may not be published, None when they were: dbt
    ended without its results (killed, crashed), or an on-run-end hook (the publish) failed."""
    run_results = target_path / "run_results.json"
    if not run_results.is_file():
        return "dbt ended before its on-run-end publish"
    for result in json.loads(run_results.read_text()).get("results", []):
        uid = str(result.get("unique_id", ""))
        if uid.startswith("operation.") and "on-run-end" in uid and result.get("status") == "error":
            message = " ".join(str(result.get("message") or "").split())
            return f"the on-run-end publish failed: {message}"
    return None


def failure_text(target_path: Path, partitions: str) -> str:
    """Why a dbt invocation failed, from its run_results.json; when dbt stopped before writing
    one (a locked warehouse, a connection error), from the errors of its log."""
    run_results = target_path / "run_results.json"
    if run_results.is_file():
        return failure_summary(json.loads(run_results.read_text()), partitions)
    return failure_summary({}, partitions, dbt_log_errors(target_path / "dbt.log"))


def dbt_log_errors(path: Path) -> list[str]:
    """dbt's error-level messages of one invocation (its JSON log), e.g. a locked warehouse."""
    if not path.is_file():
        return []
    found = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        info = record.get("info", {}) if isinstance(record, dict) else {}
        if info.get("level") == "error" and info.get("msg"):
            found.append(str(info["msg"]).strip())
    return list(dict.fromkeys(found))


def failure_summary(
    run_results: Mapping[str, Any], partitions: str, log_errors: Sequence[str] = ()
) -> str:
    """One line per failed dbt node, with dbt's message: what a person needs first."""
    lines = [f"dbt stopped: {' '.join(message.split())}" for message in log_errors]
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


def _check_inputs(
    context: AssetExecutionContext, managed: frozenset[AssetKey]
) -> Iterator[AssetCheckResult]:
    """Evaluate the selected source checks; return the problems of the blocked partitions."""
    selected = sorted(
        (k for k in context.selected_asset_check_keys if k.name == INPUTS_CHECK_NAME),
        key=lambda k: k.asset_key.to_user_string(),
    )
    blocked: dict[str | None, list[InputProblem]] = {}
    if not selected:
        return blocked
    graph = context.job_def.asset_layer.asset_graph
    partition_keys: list[str | None] = (
        list(context.partition_keys) if is_partitioned(context) else [None]
    )
    for check_key in selected:
        problems = input_problems(
            context.instance,
            graph,
            check_key.asset_key,
            partition_keys,
            built_alongside=context.selected_asset_keys,
            checked=managed.__contains__,
        )
        bad = {partition: items for partition, items in problems.items() if items}
        listed = sorted({str(item) for items in bad.values() for item in items})
        yield AssetCheckResult(
            asset_key=check_key.asset_key,
            check_name=INPUTS_CHECK_NAME,
            passed=not bad,
            metadata={
                "partitions checked": _range_label(context),
                "incomplete partitions": sorted(str(p) for p in bad),
                "upstream problems": listed,
            },
            description=(
                "every upstream partition is present and healthy"
                if not bad
                else "inputs incomplete:\n" + describe_problems(bad)
            ),
        )
        for partition, items in bad.items():
            blocked.setdefault(partition, []).extend(items)
    return blocked


def _events_with_reports(
    invocation: DbtCliInvocation, reports: dict[str, PartitionReport]
) -> Iterator[Any]:
    """dagster-dbt's event stream, also collecting the `flower-partitions` reports dbt logs."""
    for raw in invocation.stream_raw_events():
        info = raw.raw_event.get("info", {})
        if info.get("name") == "JinjaLogInfo":
            report = parse_report(str(info.get("msg", "")))
            if report is not None:
                reports[report.unique_id] = report
                continue
        yield from raw.to_default_asset_events(
            manifest=invocation.manifest,
            dagster_dbt_translator=invocation.dagster_dbt_translator,
            context=invocation.context,
            target_path=invocation.target_path,
            project=invocation.project,
        )


def _release(
    context: AssetExecutionContext, output: Output, reports: Mapping[str, PartitionReport]
) -> Iterable[Any]:
    """An unpartitioned model's Output as it is; a partitioned one as per-partition events."""
    if not is_partitioned(context):
        return [output]
    key = context.asset_key_for_output(output.output_name)
    spec = context.assets_def.get_asset_spec(key)
    partitions_def = context.assets_def.partitions_def
    assert partitions_def is not None
    starts = {
        partition_key: partitions_def.time_window_for_partition_key(partition_key).start.replace(
            tzinfo=None
        )
        for partition_key in context.partition_keys
    }
    report = reports.get(spec.metadata[DAGSTER_DBT_UNIQUE_ID_METADATA_KEY])
    backfill = context.run.tags.get(BACKFILL_ID_TAG)
    # One AssetMaterialization per partition, each with the data version of its own rows.
    materializations = partition_materializations(
        key,
        versions_by_partition(report, starts, context.run.run_id),
        code_version=spec.code_version or context.run.run_id,
        provenance=input_provenance(context.instance, [dep.asset_key for dep in spec.deps]),
        metadata=output.metadata,
        extra_tags={**(output.tags or {}), **({BACKFILL_ID_TAG: backfill} if backfill else {})},
    )
    return materializations


def is_partitioned(context: AssetExecutionContext) -> bool:
    """Whether the step runs one partition or a range of them (a single-run backfill)."""
    return context.has_partition_key or context.has_partition_key_range


def _range_label(context: AssetExecutionContext) -> str:
    if not is_partitioned(context):
        return "(unpartitioned)"
    keys = context.partition_key_range
    return keys.start if keys.start == keys.end else f"{keys.start}..{keys.end}"
