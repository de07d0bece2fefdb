"""A dead run gives its warehouse slot back, and its dbt dies with it; a terminated run stops dbt.

Real processes throughout: a code server launches each run's worker (Dagster's DefaultRunLauncher),
the worker runs the real dbt, and Dagster's own queue and run-monitoring daemons run in threads
of the test, as `dagster-daemon run` runs them, on an instance configured like the product's.
"""

from __future__ import annotations

import fcntl
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import ModuleTarget
from dagster._daemon.controller import DagsterDaemonController
from dagster._daemon.daemon import MonitoringDaemon
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)
from dagster_graphql.client.query import LAUNCH_PIPELINE_EXECUTION_MUTATION
from dagster_graphql.test.utils import execute_dagster_graphql

from flower_dagster.settings import REPO_ROOT
from flower_dagster.storage import DEV_INSTANCE_FILE
from flower_dagster.warehouse_lock import lock_path_of
from tests.conftest import Warehouse

pytestmark = pytest.mark.slow

INSTANCE_FILES = [DEV_INSTANCE_FILE, REPO_ROOT / "deploy" / "dagster.yaml"]
# The schedule's job of the daily models fed by sources (fct_orders, fct_sessions).
JOB = "__anonymous_asset_job_daily_models_0700_kst"
POOL = "warehouse"


@pytest.mark.parametrize("path", INSTANCE_FILES, ids=lambda path: path.parent.name)
def test_both_instance_files_free_the_slots_of_dead_runs_within_a_minute(path: Path):
    monitoring = yaml.safe_load(path.read_text())["run_monitoring"]
    assert monitoring["enabled"] is True
    assert 0 < monitoring["free_slots_after_run_end_seconds"] <= 60
    assert 0 < monitoring["poll_interval_seconds"] <= 60


def _instance(home: Path) -> DagsterInstance:
    """The product's instance file, its monitoring intervals shortened so the test waits seconds
    rather than the minute the product allows."""
    config = yaml.safe_load(DEV_INSTANCE_FILE.read_text())
    config["run_monitoring"].update(poll_interval_seconds=1, free_slots_after_run_end_seconds=1)
    home.mkdir(parents=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    return DagsterInstance.from_config(str(home))


def _launch(context: WorkspaceProcessContext, day: str) -> str:
    """What the UI's "Materialize" of fct_orders for `day` does: queue a run of it."""
    result = execute_dagster_graphql(
        context.create_request_context(),
        LAUNCH_PIPELINE_EXECUTION_MUTATION,
        {
            "executionParams": {
                "selector": {
                    "repositoryLocationName": "flower_dagster",
                    "repositoryName": "__repository__",
                    "pipelineName": JOB,
                    "assetSelection": [{"path": ["fct_orders"]}],
                    "assetCheckSelection": [],
                },
                "executionMetadata": {"tags": [{"key": "dagster/partition", "value": day}]},
            }
        },
    )
    launched = result.data["launchPipelineExecution"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def _wait(what: str, done: Callable[[], Any], seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = done()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {seconds} s")


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its reaper has stopped running)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _dbt_build_in(project_dir: Path) -> int | None:
    """The pid of a running `dbt build` working in `project_dir`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        is_dbt = any(arg.endswith(b"/dbt") for arg in argv[:2])
        if is_dbt and b"build" in argv and Path(cwd) == project_dir and _alive(int(entry.name)):
            return int(entry.name)
    return None


def _parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _lock_is_free(duckdb_path: Path) -> bool:
    fd = os.open(lock_path_of(duckdb_path), os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_a_killed_run_worker_takes_its_dbt_along_and_its_slot_comes_back(
    warehouse: Warehouse, tmp_path: Path
):
    instance = _instance(tmp_path / "home")
    project_dir = warehouse.project_dir.resolve()
    target = ModuleTarget(
        module_name="flower_dagster.definitions",
        attribute=None,
        working_directory=None,
        location_name="flower_dagster",
    )
    with WorkspaceProcessContext(instance, target) as context:
        daemons = [
            QueuedRunCoordinatorDaemon(interval_seconds=1),
            MonitoringDaemon(interval_seconds=instance.run_monitoring_poll_interval_seconds),
        ]
        with DagsterDaemonController(context, daemons):
            # 1. kill -9 the run worker while its dbt runs.
            killed = _launch(context, "2024-03-18")
            dbt = _wait("dbt started", lambda: _dbt_build_in(project_dir), 240)
            worker = _parent_of(dbt)
            assert worker != os.getpid()
            os.kill(worker, signal.SIGKILL)
            _wait("dbt gone with its run worker", lambda: not _alive(dbt), 5)
            record = _wait(
                "the run marked failed",
                lambda: (
                    (r := instance.get_run_record_by_id(killed)) and r.dagster_run.is_finished and r
                ),
                30,
            )
            assert record.dagster_run.status == DagsterRunStatus.FAILURE
            # Its slot is still claimed: the next run waits for it.
            assert killed in instance.event_log_storage.get_concurrency_run_ids()
            waiting = _launch(context, "2024-03-19")

            # 2. Run monitoring gives the slot back; the waiting run then goes through to dbt.
            _wait(
                "the dead run's slot freed",
                lambda: killed not in instance.event_log_storage.get_concurrency_run_ids(),
                30,
            )
            freed_after = time.time() - record.end_time
            assert freed_after < 30, freed_after
            dbt = _wait("the waiting run's dbt started", lambda: _dbt_build_in(project_dir), 240)
            assert instance.get_run_by_id(waiting).status == DagsterRunStatus.STARTED

            # 3. Terminating it (the UI's "Terminate") stops dbt through dagster-dbt's
            # interrupt, which reaches dbt through flower-dbt; the warehouse lock and the slot
            # are given back.
            assert not _lock_is_free(warehouse.duckdb_path)
            assert instance.run_launcher.terminate(waiting)
            _wait("dbt stopped", lambda: not _alive(dbt), 30)
            _wait(
                "the run canceled",
                lambda: instance.get_run_by_id(waiting).status == DagsterRunStatus.CANCELED,
                30,
            )
            assert _lock_is_free(warehouse.duckdb_path)
            assert waiting not in instance.event_log_storage.get_concurrency_run_ids()
    instance.dispose()
