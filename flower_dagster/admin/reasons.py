"""Why each failed partition of a backfill failed, in an analyst's words.

The reasons are the alerts' own: `alerts.facts.run_facts` reads each failed run of the backfill
from the Dagster instance and dbt's target folder, `alerts.classify.classify` sorts it into a
cause (a test failed, inputs incomplete, an SQL error, a platform problem). Here each failed
partition gets the finding that concerns its model, else the run's headline, as one line:

- `data test failed: unique_fct_orders_order_id (1 failing row)`
- `inputs incomplete: fct_orders 2024-02-12 (missing), ...`
- `SQL error in the model: <dbt's first line>`
- `platform problem: <the sign>; not your model: on call now: minho (until Tue 10:00 KST)`

The admin reads the instance of DAGSTER_HOME (the one Dagster writes) for these run facts only;
everything it changes still goes through Dagster's GraphQL API.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

from flower_dagster.alerts.classify import Cause, Finding, classify
from flower_dagster.alerts.facts import run_facts
from flower_dagster.dagster_tags import BACKFILL_ID_TAG
from flower_dagster.settings import Settings

ACTIVE = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]

# Who is on call now, as words (`minho, jisu until Tue 10:00 KST`), or None when unknown.
OnCall = Callable[[], str | None]


@dataclass(frozen=True)
class PartitionFailure:
    model: str
    partition: str | None
    cause: str
    reason: str
    run_id: str
    test: str | None = None
    failing_rows: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "partition": self.partition,
            "cause": self.cause,
            "reason": self.reason,
            "run_id": self.run_id,
            "test": self.test,
            "failing_rows": self.failing_rows,
        }


def backfill_failures(
    instance: DagsterInstance,
    backfill_id: str,
    dbt_target_root: Path | None,
    model_files: Mapping[str, str],
    oncall: OnCall,
) -> list[PartitionFailure]:
    """Each partition a failed run of the backfill did not build, with why, newest run first
    per partition (a partition retried and failed again shows its latest reason)."""
    runs = instance.get_runs(
        RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}, statuses=[DagsterRunStatus.FAILURE])
    )
    seen: set[tuple[str, str | None]] = set()
    found: list[PartitionFailure] = []
    for run in runs:  # newest first
        facts = run_facts(instance, run.run_id, dbt_target_root, model_files)
        findings = classify(facts)
        for model, partition in facts.failed:
            if (model, partition) in seen:
                continue
            seen.add((model, partition))
            finding = _finding_for(findings, model, partition)
            found.append(_failure(model, partition, run.run_id, finding, oncall))
    return sorted(found, key=lambda f: (f.model, f.partition or ""))


def _finding_for(findings: Sequence[Finding], model: str, partition: str | None) -> Finding | None:
    """The finding about this model (and partition when it names some); else the headline."""
    if findings and findings[0].cause is Cause.PLATFORM:
        return findings[0]
    for finding in findings:
        if finding.model == model and (not finding.partitions or partition in finding.partitions):
            return finding
    for finding in findings:
        if finding.model is None:
            return finding
    return findings[0] if findings else None


def _failure(
    model: str, partition: str | None, run_id: str, finding: Finding | None, oncall: OnCall
) -> PartitionFailure:
    if finding is None:
        return PartitionFailure(model, partition, "unknown", "the run failed", run_id)
    return PartitionFailure(
        model,
        partition,
        finding.cause.value,
        reason_text(finding, model, oncall),
        run_id,
        finding.test,
        finding.failing_rows,
    )


def reason_text(finding: Finding, model: str, oncall: OnCall) -> str:
    """One line in an analyst's words."""
    cause = finding.cause
    if cause is Cause.DATA_TEST:
        rows = finding.failing_rows
        count = f" ({rows} failing row{'' if rows == 1 else 's'})" if rows else ""
        on = f" on {finding.model}" if finding.model and finding.model != model else ""
        detail = "" if rows else f": {finding.detail}"
        return f"{cause.value}: {finding.test}{on}{count}{detail}"
    if cause is Cause.CHECK:
        return f"{cause.value}: {finding.test}: {finding.detail}"
    if cause is Cause.INPUTS_INCOMPLETE:
        upstream = ", ".join(finding.upstream) or finding.detail
        return f"{cause.value}: dbt did not run; not built upstream: {upstream}"
    if cause is Cause.SQL_ERROR:
        where = f" ({finding.file})" if finding.file else ""
        return f"{cause.value}{where}: {finding.detail}"
    who = oncall()
    tail = f"on call now: {who}" if who else "the platform team looks into it"
    return f"{cause.value}: {finding.detail}; not a problem in your model, {tail}"


class FailureReader:
    """The failed partitions of a backfill and their reasons, from the instance of DAGSTER_HOME
    (opened on first use). Without DAGSTER_HOME, `unknown` says why reasons are not shown."""

    def __init__(self, settings: Settings, environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        self.home = (os.environ if environ is None else environ).get("DAGSTER_HOME")
        self._instance: DagsterInstance | None = None
        self._lock = threading.Lock()
        self._model_files: dict[str, str] | None = None
        # A finished backfill's failures do not change: read once.
        self._finished: dict[str, list[PartitionFailure]] = {}
        self.unknown: str | None = (
            None
            if self.home
            else "the admin runs without DAGSTER_HOME, so it cannot read why runs failed "
            "(`make admin` sets it to the dev instance)"
        )

    def instance(self) -> DagsterInstance | None:
        if self.home is None:
            return None
        with self._lock:
            if self._instance is None:
                self._instance = DagsterInstance.get()
            return self._instance

    def failures(self, backfill_id: str, finished: bool) -> list[PartitionFailure]:
        if backfill_id in self._finished:
            return self._finished[backfill_id]
        instance = self.instance()
        if instance is None:
            return []
        found = backfill_failures(
            instance,
            backfill_id,
            self.settings.dbt_project_dir / "target",
            self.model_files(),
            self.oncall_now,
        )
        if finished:
            self._finished[backfill_id] = found
        return found

    def active_runs(self, backfill_id: str) -> int | None:
        """How many runs of the backfill are queued or running (None: unknown)."""
        instance = self.instance()
        if instance is None:
            return None
        return instance.get_runs_count(
            RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}, statuses=ACTIVE)
        )

    def model_files(self) -> dict[str, str]:
        if self._model_files is None:
            from flower_dagster.dbt.project import FlowerDbtProject

            manifest = FlowerDbtProject.from_settings(self.settings).load_manifest()
            self._model_files = {
                node["name"]: node["original_file_path"]
                for node in manifest.get("nodes", {}).values()
                if node.get("resource_type") in ("model", "seed", "snapshot")
            }
        return self._model_files

    def oncall_now(self) -> str | None:
        """The people on call now from oncall.yaml (alerts section), or None."""
        if self.settings.alerts is None:
            return None
        from flower_dagster.alerts.oncall import load_rotation, oncall_for
        from flower_dagster.alerts.people import load_directory

        try:
            directory = load_directory(self.settings.alerts.people_file)
            rotation = load_rotation(
                self.settings.alerts.oncall_file, directory, self.settings.timezone
            )
        except Exception:  # a broken rota must not hide the reason itself
            return None
        zone = ZoneInfo(self.settings.timezone)
        shift = oncall_for(datetime.fromtimestamp(time.time(), zone), rotation)
        return f"{', '.join(shift.people)} (until {shift.ends.strftime('%a %H:%M %Z')})"

    def close(self) -> None:
        if self._instance is not None:
            self._instance.dispose()
