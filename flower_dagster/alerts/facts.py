"""Reading what a finished run tells from the Dagster instance and dbt's target folder.

The run's event log gives what was planned and what was materialized (the difference is what
failed), the asset-check evaluations, each failed step's error chain and the run's own failure.
dagster-dbt gives each dbt invocation a target folder `<op>-<run id[:7]>-<uuid>` in the dbt
project's `target/`; its run_results.json holds each failed node with dbt's message, and when
dbt stopped before writing it (a locked warehouse), dbt.log holds dbt's own error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

from flower_dagster.alerts.classify import DbtResult, FailedCheck, RunFacts
from flower_dagster.dbt.run import dbt_log_errors

_WANTED = {
    DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
    DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.ASSET_CHECK_EVALUATION,
    DagsterEventType.STEP_FAILURE,
    DagsterEventType.RUN_FAILURE,
    DagsterEventType.RUN_START,
}
FAILED_ROWS_KEY = "dagster_dbt/failed_row_count"


def run_facts(
    instance: DagsterInstance,
    run_id: str,
    dbt_target_root: Path | None = None,
    model_files: Mapping[str, str] | None = None,
) -> RunFacts:
    """The facts of one finished run (see classify.RunFacts)."""
    run = instance.get_run_by_id(run_id)
    records = instance.get_records_for_run(run_id, of_type=_WANTED).records
    planned: dict[str, list[str | None]] = {}
    materialized: list[tuple[str, str | None]] = []
    failed_checks: list[FailedCheck] = []
    passed_checks: list[tuple[str, str]] = []
    step_errors: list[str] = []
    run_error: str | None = None
    started = ended = None
    for record in records:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is None:
            continue
        data: Any = event.event_specific_data
        kind = event.event_type
        if kind == DagsterEventType.RUN_START:
            started = entry.timestamp
        elif kind == DagsterEventType.ASSET_MATERIALIZATION_PLANNED:
            asset = data.asset_key.to_user_string()
            if data.partitions_subset is not None:
                planned.setdefault(asset, []).extend(
                    sorted(data.partitions_subset.get_partition_keys())
                )
            else:
                planned.setdefault(asset, []).append(data.partition)
        elif kind == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = data.materialization
            materialized.append(
                (materialization.asset_key.to_user_string(), materialization.partition)
            )
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            asset = data.asset_key.to_user_string()
            if data.passed:
                passed_checks.append((asset, data.check_name))
                continue
            metadata = data.metadata or {}
            rows = metadata.get(FAILED_ROWS_KEY)
            problems = metadata.get("upstream problems")
            partitions = (
                (data.partition,)
                if getattr(data, "partition", None)
                else tuple(p for p in planned.get(asset, []) if p)
            )
            failed_checks.append(
                FailedCheck(
                    asset=asset,
                    check=data.check_name,
                    partitions=partitions,
                    failing_rows=int(rows.value) if rows is not None else None,
                    description=data.description,
                    upstream_problems=tuple(problems.value) if problems is not None else (),
                    dbt_test=rows is not None or "unique_id" in metadata,
                )
            )
        elif kind == DagsterEventType.STEP_FAILURE:
            step_errors.append(_error_chain(data.error))
        elif kind == DagsterEventType.RUN_FAILURE:
            ended = entry.timestamp
            error = getattr(data, "error", None) if data is not None else None
            run_error = _error_chain(error) if error else (entry.user_message or None)
    done = set(materialized)
    failed = [
        (asset, partition)
        for asset, partitions in planned.items()
        for partition in dict.fromkeys(partitions)
        if (asset, partition) not in done
    ]
    succeeded = run is not None and run.status == DagsterRunStatus.SUCCESS
    if succeeded:
        failed = []
    files = dict(model_files or {})
    results, dbt_errors = _dbt_artifacts(dbt_target_root, run_id, files)
    return RunFacts(
        run_id=run_id,
        succeeded=succeeded,
        failed=tuple(failed),
        materialized=tuple(materialized),
        failed_checks=tuple(failed_checks),
        passed_checks=tuple(passed_checks),
        dbt_results=results,
        dbt_errors=dbt_errors,
        step_errors=tuple(step_errors),
        run_error=run_error,
        model_files=tuple((a, files[a]) for a in planned if a in files),
        started=started,
        ended=ended,
    )


class _ErrorInfo(Protocol):
    """What the error chain reads of the errors Dagster stores with failure events (its
    `SerializableErrorInfo`, which Dagster does not export)."""

    @property
    def message(self) -> str: ...
    @property
    def cause(self) -> _ErrorInfo | None: ...
    @property
    def context(self) -> _ErrorInfo | None: ...


def _error_chain(error: _ErrorInfo | None) -> str:
    """`Class: message` of the error and each cause, innermost last (no stack)."""
    parts = []
    while error is not None:
        parts.append(error.message.strip())
        error = error.cause or error.context
    return "\n".join(parts)


def _dbt_artifacts(
    target_root: Path | None, run_id: str, files: Mapping[str, str]
) -> tuple[tuple[DbtResult, ...], tuple[str, ...]]:
    if target_root is None or not target_root.is_dir():
        return (), ()
    results: list[DbtResult] = []
    errors: list[str] = []
    for folder in sorted(target_root.glob(f"*-{run_id[:7]}-*")):
        run_results = folder / "run_results.json"
        if run_results.is_file():
            for item in json.loads(run_results.read_text()).get("results", []):
                if item.get("status") not in ("error", "fail", "runtime error"):
                    continue
                uid = str(item.get("unique_id", "?"))
                name = uid.split(".")[2] if uid.count(".") >= 2 else uid
                results.append(
                    DbtResult(
                        unique_id=uid,
                        status=str(item.get("status")),
                        message=str(item.get("message") or ""),
                        failures=item.get("failures"),
                        file=files.get(name) if not uid.startswith("test.") else None,
                    )
                )
        elif (folder / "dbt.log").is_file():
            errors.extend(dbt_log_errors(folder / "dbt.log"))
    return tuple(results), tuple(dict.fromkeys(errors))
