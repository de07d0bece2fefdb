"""The repair demo: a broken day, its blocked week and month, the repair, with the real daemon.

`run_story` sets up a throw-away warehouse and Dagster instance, starts the real `dagster-daemon`
on it, and stages an incident:

1. one day of raw orders is broken (a replayed ingestion batch: a duplicate order) and the
   unpartitioned models are built;
2. January is loaded in three runs of the daily models -- the days before the broken day, the
   broken day, the days after -- so the broken day fails on its own, as under a daily schedule
   (a single-run backfill is one `dbt build` for its whole range: a range holding the bad day
   would fail every day in it);
3. the repair rule (the sensor `flower_repair_rule`, evaluated by the daemon) rolls up the
   complete weeks of January by itself, while the week and the month that contain the broken
   day stay blocked by it;
4. the day's raw data is repaired and the day re-run; the rule then launches exactly that week,
   that month and that day's revenue, once each.

The runs done by hand are what an engineer types, `dagster asset materialize --partition-range`
(one run, in this process); every roll-up is launched by the daemon. The story ends by itself:
the daemon's process group is stopped on the way out, on success, error or timeout. Why it is
told this way, and what it prints: docs/repair-demo.md.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import yaml
from dagster import (
    AssetKey,
    AssetSelection,
    DagsterInstance,
    DagsterRunStatus,
    PartitionKeyRange,
    RunRecord,
    materialize,
)

from flower_dagster._compat import BulkActionStatus, InstigatorTick, InstigatorType, TickStatus
from flower_dagster.automation import SENSOR_NAME
from flower_dagster.dagster_tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    BACKFILL_ID_TAG,
    PARTITION_NAME_TAG,
    SENSOR_NAME_TAG,
)
from flower_dagster.dbt.project import FlowerDbtProject
from flower_dagster.defs.dbt import dbt_definitions
from flower_dagster.demo.data import corrupt_day, load_demo_data, repair_day
from flower_dagster.environment import environment
from flower_dagster.errors import FlowerError
from flower_dagster.inputs import input_problems
from flower_dagster.settings import DEMO_DBT_PROJECT_DIR, REPO_ROOT, load_settings
from flower_dagster.storage import DEV_INSTANCE_FILE, write_instance_yaml

BROKEN_DAY = date(2024, 1, 10)
MONTH = (date(2024, 1, 1), date(2024, 1, 31))
DAILIES = ("fct_orders", "fct_sessions")
# The roll-up partitions built from fct_orders' broken day: blocked until it is repaired.
BROKEN_ROLLUPS = (
    ("agg_daily_revenue", "2024-01-10"),
    ("agg_weekly_revenue", "2024-01-08"),
    ("agg_monthly_revenue", "2024-01-01"),
)

AUTOMATION = "automation"  # launched by the daemon for the repair rule
BY_HAND = "by hand"  # a run the story started, as `dagster asset materialize` does
LOAD = "load"  # started before the repair
REPAIR = "repair"  # started from the repair on

PROJECT_COPY_IGNORE = shutil.ignore_patterns("target", "state", "logs", "dbt_packages")
STORY_TAG = "flower/demo"  # on the runs by hand: their title
ASSETS_TAG = "flower/demo-assets"  # on the runs by hand: what they build (no asset selection)

_FINISHED = frozenset(
    {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
)
_POLL_SECONDS = 1.0
_STOP_GRACE_SECONDS = 20.0


class StoryError(FlowerError):
    """The story did not reach its end in time, or the daemon stopped on the way."""


@dataclass(frozen=True)
class TimelineRun:
    """One run of the story: who launched it, what it built, how it ended."""

    run_id: str
    launched_by: str  # AUTOMATION or BY_HAND
    phase: str  # LOAD (created before the repair) or REPAIR
    created_at: datetime
    finished_at: datetime | None
    assets: tuple[str, ...]
    partitions: tuple[str, ...]  # every partition key of the run, in order; () unpartitioned
    status: str  # Dagster's run status: SUCCESS, FAILURE, ...
    backfill_id: str | None  # set when the daemon ran it as part of a backfill
    title: str | None  # what the story called the runs it started by hand

    @property
    def partition_label(self) -> str:
        return _label(self.partitions)


@dataclass(frozen=True)
class StoryResult:
    """The story's timeline: printed for a person, structured for a test."""

    workdir: Path
    daemon_log: Path
    daemon_pid: int
    broken_day: date
    repaired_at: datetime
    runs: tuple[TimelineRun, ...]
    # Before the repair: what blocked each roll-up partition of the broken day, keyed
    # "agg_weekly_revenue 2024-01-08", e.g. ("fct_orders 2024-01-10 (failed)",).
    blocked: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def runs_by(self, launched_by: str, phase: str | None = None) -> list[TimelineRun]:
        return [
            run
            for run in self.runs
            if run.launched_by == launched_by and (phase is None or run.phase == phase)
        ]

    def launched(self, phase: str | None = None) -> dict[str, Counter[str]]:
        """Per asset, how many times the repair rule launched each of its partitions."""
        counts: dict[str, Counter[str]] = {}
        for run in self.runs_by(AUTOMATION, phase):
            for asset in run.assets:
                counts.setdefault(asset, Counter()).update(run.partitions)
        return counts


def run_story(
    workdir: Path | None = None,
    *,
    interval_seconds: int = 5,
    timeout_seconds: int = 420,
    out: TextIO = sys.stdout,
) -> StoryResult:
    """Tell the repair story with the real dagster-daemon on a temporary warehouse and instance.

    `workdir` receives the dbt project copy, the DuckDB file, DAGSTER_HOME, the workspace and the
    logs (a new temporary folder when None; it is left in place for a look). The repair rule is
    evaluated every `interval_seconds`. Prints the story to `out` as it goes, then the timeline,
    and returns it. Raises StoryError, with the end of the daemon's log, when the story has not
    ended within `timeout_seconds`. The daemon is stopped in every case.
    """
    deadline = time.monotonic() + timeout_seconds
    say = _Printer(out)
    root = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="flower-demo-"))
    say(f"flower repair demo in {root}")
    setup = prepare_demo(root, interval_seconds)
    say(
        f"dbt project copied and parsed, demo raw data loaded; the incident: raw orders of "
        f"{BROKEN_DAY} hold a duplicate order (a replayed ingestion batch)"
    )
    instance = DagsterInstance.from_config(str(setup.dagster_home))
    daemon: subprocess.Popen[bytes] | None = None
    try:
        daemon = start_daemon(setup)
        say(f"dagster-daemon started (pid {daemon.pid}); repair rule every {interval_seconds}s")
        with _routed_output():
            result = _Story(instance, setup, daemon, deadline, say).tell()
    finally:
        if daemon is not None:
            stop_daemon(daemon)
            say("dagster-daemon stopped")
        instance.dispose()
    say.timeline(result)
    return result


# -- setting up ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSetup:
    """Where the demo's parts are, and the environments of its processes."""

    root: Path
    duckdb_path: Path
    dagster_home: Path
    workspace: Path
    daemon_log: Path
    runs_log: Path
    flower_env: Mapping[str, str]
    daemon_env: Mapping[str, str]


def prepare_demo(
    root: Path,
    interval_seconds: int,
    instance_yaml: Path = DEV_INSTANCE_FILE,
    instance_env: Mapping[str, str] | None = None,
) -> DemoSetup:
    """The dbt project copy (parsed), the warehouse with the broken day, DAGSTER_HOME, workspace.

    DAGSTER_HOME gets `instance_yaml` as its dagster.yaml (make dev's SQLite instance unless
    told otherwise) and the daemon `instance_env` on top of the demo's settings (the
    production file's PostgreSQL connection, say)."""
    root.mkdir(parents=True, exist_ok=True)
    project_dir = root / "dbt_project"
    dagster_home = root / "dagster_home"
    duckdb_path = root / "warehouse.duckdb"
    for stale in (project_dir, dagster_home):
        shutil.rmtree(stale, ignore_errors=True)
    duckdb_path.unlink(missing_ok=True)

    shutil.copytree(DEMO_DBT_PROJECT_DIR, project_dir, ignore=PROJECT_COPY_IGNORE)
    write_instance_yaml(instance_yaml, dagster_home)
    workspace = root / "workspace.yaml"
    location = {
        "module_name": "flower_dagster.definitions",
        "location_name": "flower_dagster",
        "working_directory": str(REPO_ROOT),
    }
    workspace.write_text(yaml.safe_dump({"load_from": [{"python_module": location}]}))

    flower_env = {
        # The code server works in `root`: name the demo's settings file, not the cwd's.
        "FLOWER_SETTINGS_FILE": str(REPO_ROOT / "flower.yaml"),
        "FLOWER_DBT_PROJECT_DIR": str(project_dir),
        "FLOWER_DUCKDB_PATH": str(duckdb_path),
        "FLOWER_AUTOMATION_INTERVAL_SECONDS": str(interval_seconds),
        # A window left in the environment would narrow every dbt build of the story.
        "FLOWER_WINDOW_START": "",
        "FLOWER_WINDOW_END": "",
    }
    # The daemon, its code server and its runs see the demo's settings, and no others.
    daemon_env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWER_", "DAGSTER_"))}
    daemon_env.update(flower_env)
    daemon_env.update(instance_env or {})
    daemon_env["DAGSTER_HOME"] = str(dagster_home)
    daemon_env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"

    # dbt reads FLOWER_DUCKDB_PATH while parsing the profile: parse as the runs will run.
    with environment(flower_env):
        FlowerDbtProject.from_settings(load_settings(daemon_env)).parse()
    load_demo_data(duckdb_path)
    corrupt_day(duckdb_path, BROKEN_DAY)
    return DemoSetup(
        root=root,
        duckdb_path=duckdb_path,
        dagster_home=dagster_home,
        workspace=workspace,
        daemon_log=root / "dagster-daemon.log",
        runs_log=root / "runs-by-hand.log",
        flower_env=flower_env,
        daemon_env=daemon_env,
    )


class _RoutedStream:
    """Stands in for sys.stdout or sys.stderr while the story runs: what a run by hand prints
    (dbt's output, which dagster-dbt echoes; Dagster's console log) goes to its log, the rest of
    the process prints where it did."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def _target(self) -> TextIO:
        return getattr(_ROUTES, "log", None) or self._stream

    def write(self, text: str) -> int:
        return self._target().write(text)

    def flush(self) -> None:
        self._target().flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)


_ROUTES = threading.local()
_WORKER = "flower demo run by hand: "


@contextmanager
def _routed_output() -> Iterator[None]:
    saved = sys.stdout, sys.stderr
    sys.stdout = _RoutedStream(sys.stdout)  # type: ignore[assignment]
    sys.stderr = _RoutedStream(sys.stderr)  # type: ignore[assignment]
    try:
        yield
    finally:
        # A run by hand cut short by the timeout goes on in its thread: its output still
        # goes to its log (the stand-ins pass everything else through).
        if not any(t.name.startswith(_WORKER) and t.is_alive() for t in threading.enumerate()):
            sys.stdout, sys.stderr = saved


@contextmanager
def _output_of_this_thread_to(log: TextIO) -> Iterator[None]:
    _ROUTES.log = log
    try:
        yield
    finally:
        _ROUTES.log = None


# -- the daemon ------------------------------------------------------------------------------


def start_daemon(setup: DemoSetup) -> subprocess.Popen[bytes]:
    """`dagster-daemon run` on the demo's workspace (see `start_process`)."""
    return start_process(
        setup, "dagster-daemon", ["run", "-w", str(setup.workspace)], setup.daemon_log
    )


def start_process(
    setup: DemoSetup, program: str, args: Sequence[str], log_path: Path
) -> subprocess.Popen[bytes]:
    """A Dagster program beside this Python (`dagster-daemon`, `dagster-webserver`) with the
    demo's environment, its output in `log_path`, in a new session: its own process group,
    which `stop_daemon` ends."""
    executable = Path(sys.executable).with_name(program)
    with open(log_path, "wb") as log:
        return subprocess.Popen(
            [str(executable), *args],
            cwd=setup.root,
            env=dict(setup.daemon_env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_daemon(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group of a process from `start_process` (the daemon: its code
    server and runs), then SIGKILL what is left."""
    group = process.pid  # a new session: the daemon leads its process group
    _signal_group(group, signal.SIGTERM)
    deadline = time.monotonic() + _STOP_GRACE_SECONDS
    while time.monotonic() < deadline and daemon_processes(group):
        process.poll()  # reap the daemon itself once it exits
        time.sleep(0.2)
    _signal_group(group, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and daemon_processes(group):
        time.sleep(0.1)


def _signal_group(group: int, signum: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(group, signum)


def daemon_processes(group: int) -> list[int]:
    """The live processes in process group or session `group` (Linux /proc; zombies excluded)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp session ...": comm may hold spaces, read after it.
        fields = text[text.rfind(")") + 2 :].split()
        if fields[0] != "Z" and group in (int(fields[2]), int(fields[3])):
            pids.append(int(stat.parent.name))
    return pids


# -- the story -------------------------------------------------------------------------------


class _Story:
    def __init__(
        self,
        instance: DagsterInstance,
        setup: DemoSetup,
        daemon: subprocess.Popen[bytes],
        deadline: float,
        say: _Printer,
    ) -> None:
        self.instance = instance
        self.setup = setup
        self.daemon = daemon
        self.deadline = deadline
        self.say = say
        self.defs = dbt_definitions(load_settings(setup.daemon_env))
        self.graph = self.defs.resolve_asset_graph()
        self.reported: dict[str, DagsterRunStatus] = {}
        self.repaired_at: datetime | None = None

    def tell(self) -> StoryResult:
        # Staging views and dim_users first, while the daemon starts: no rule reads them.
        self.materialize(
            "the unpartitioned models", AssetSelection.tag("flower/grain", "unpartitioned")
        )
        self.wait_for(f"the first evaluation of {SENSOR_NAME}", lambda: bool(self._ticks()))
        self.say(f"{SENSOR_NAME} evaluated once: with a fresh cursor it requests nothing")

        # Only now: what lands before the rule's first evaluation never triggers it.
        self.say("loading January: the days before the broken day, the broken day, the days after")
        dailies = AssetSelection.assets(*DAILIES)
        first, last = MONTH
        self.materialize("January, before", dailies, first, BROKEN_DAY - timedelta(days=1))
        self.materialize("January, the broken day", dailies, BROKEN_DAY, BROKEN_DAY)
        self.materialize("January, after", dailies, BROKEN_DAY + timedelta(days=1), last)
        self.wait_until_settled()
        self.say("before the repair:")
        blocked = self.report_rollups()

        repair_day(self.setup.duckdb_path, BROKEN_DAY)
        self.repaired_at = datetime.now().astimezone()
        self.say(f"repair: the duplicate order of {BROKEN_DAY} removed from the raw orders")
        self.materialize("the repair", AssetSelection.assets("fct_orders"), BROKEN_DAY, BROKEN_DAY)
        self.wait_for("the repair rule to rebuild what read the broken day", self._rebuilt)
        self.wait_until_settled()
        self.say("after the repair:")
        self.report_rollups()
        return StoryResult(
            workdir=self.setup.root,
            daemon_log=self.setup.daemon_log,
            daemon_pid=self.daemon.pid,
            broken_day=BROKEN_DAY,
            repaired_at=self.repaired_at,
            runs=tuple(self.timeline()),
            blocked=blocked,
        )

    def materialize(
        self,
        title: str,
        selection: AssetSelection,
        first: date | None = None,
        last: date | None = None,
    ) -> None:
        """One run, as `dagster asset materialize --partition-range FIRST...LAST` starts it.

        It runs in a thread of this process so that the story keeps its deadline (a run waits for
        the warehouse pool's slot as long as a run of the daemon holds it) and keeps reporting.
        """
        assets = tuple(sorted(k.to_user_string() for k in selection.resolve(self.graph)))
        tags = {STORY_TAG: title, ASSETS_TAG: ",".join(assets)}
        if first is not None and last is not None:
            tags[ASSET_PARTITION_RANGE_START_TAG] = first.isoformat()
            tags[ASSET_PARTITION_RANGE_END_TAG] = last.isoformat()
        self.say(
            f"by hand: {title}: materialize {', '.join(assets)} [{_label(_days(first, last))}]"
        )
        outcome: dict[str, Any] = {}

        def run() -> None:
            try:
                with (
                    open(self.setup.runs_log, "a") as log,
                    _output_of_this_thread_to(log),
                    environment(self.setup.flower_env),
                ):
                    outcome["result"] = materialize(
                        list(self.defs.assets or []),
                        selection=selection,
                        instance=self.instance,
                        resources=self.defs.resources,
                        tags=tags,
                        raise_on_error=False,
                    )
            except BaseException as error:  # handed to the story's thread below
                outcome["error"] = error

        worker = threading.Thread(target=run, name=f"{_WORKER}{title}", daemon=True)
        worker.start()
        self.wait_for(f"the run by hand '{title}'", lambda: not worker.is_alive())
        if "error" in outcome:
            raise StoryError(f"the run by hand '{title}' could not run") from outcome["error"]
        result = outcome["result"]
        self.report_runs()
        if not result.success:
            failures = result.get_step_failure_events()
            error = failures[0].step_failure_data.error if failures else None
            while error is not None and error.cause is not None:
                error = error.cause  # Dagster's wrapper first, the step's own error last
            reason = error.message.strip() if error is not None else "see the run's logs"
            self.say("  " + reason.replace("\n", "\n  "))

    def report_rollups(self) -> dict[str, tuple[str, ...]]:
        """Each roll-up partition of the broken day: what blocks it, and its last run."""
        blocked = {}
        for asset, partition in BROKEN_ROLLUPS:
            problems = input_problems(self.instance, self.graph, AssetKey(asset), [partition])
            items = tuple(str(problem) for problem in problems[partition])
            blocked[f"{asset} {partition}"] = items
            state = f"BLOCKED by {', '.join(items)}" if items else "inputs complete"
            self.say(f"  {asset} {partition}: {state}; {self._last_run(asset, partition)}")
        return blocked

    # -- waiting ---------------------------------------------------------------------------

    def wait_for(self, what: str, done: Callable[[], bool]) -> None:
        while True:
            self.report_runs()
            if done():
                return
            if self.daemon.poll() is not None:
                raise StoryError(
                    f"dagster-daemon exited with code {self.daemon.returncode} while the story "
                    f"waited for {what}; the end of {self.setup.daemon_log}:\n"
                    + _tail(self.setup.daemon_log)
                )
            if time.monotonic() > self.deadline:
                pending = [
                    f"{r.dagster_run.run_id[:8]} {r.dagster_run.status.value}"
                    for r in self._runs()
                    if r.dagster_run.status not in _FINISHED
                ]
                raise StoryError(
                    f"the repair demo timed out waiting for {what} (runs not finished: "
                    f"{', '.join(pending) or 'none'}); the end of {self.setup.daemon_log}:\n"
                    + _tail(self.setup.daemon_log)
                )
            time.sleep(_POLL_SECONDS)

    def wait_until_settled(self) -> None:
        """Until nothing runs or waits to run, and the rule, evaluated since, requested nothing."""

        def settled() -> bool:
            records = self._runs()
            if any(r.dagster_run.status not in _FINISHED for r in records):
                return False
            # The rule sends multi-partition requests through a backfill, which the daemon's
            # backfill daemon turns into runs on its next pass.
            for backfill in self.instance.get_backfills(status=BulkActionStatus.REQUESTED):
                if not any(
                    r.dagster_run.tags.get(BACKFILL_ID_TAG) == backfill.backfill_id for r in records
                ):
                    return False
            last_end = max((r.end_time or 0.0 for r in records), default=0.0)
            return any(
                tick.status == TickStatus.SKIPPED and tick.timestamp > last_end
                for tick in self._ticks(limit=3)
            )

        self.wait_for("the repair rule to settle", settled)

    def _rebuilt(self) -> bool:
        done = {
            (asset, partition)
            for run in self.timeline()
            if run.launched_by == AUTOMATION and run.phase == REPAIR and run.finished_at
            for asset in run.assets
            for partition in run.partitions
        }
        return all(item in done for item in BROKEN_ROLLUPS)

    # -- reading the instance --------------------------------------------------------------

    def _ticks(self, limit: int | None = None) -> list[InstigatorTick]:
        """The repair rule's finished evaluations, newest first."""
        for state in self.instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
            if state.instigator_name == SENSOR_NAME:
                ticks = self.instance.get_ticks(
                    state.instigator_origin_id, state.selector_id, limit=limit
                )
                return [t for t in ticks if t.status in (TickStatus.SKIPPED, TickStatus.SUCCESS)]
        return []

    def _runs(self) -> list[RunRecord]:
        """Every run record of the story's instance, oldest first."""
        return sorted(self.instance.get_run_records(), key=lambda r: r.storage_id)

    def _assets(self, record: RunRecord) -> tuple[str, ...]:
        run = record.dagster_run
        if ASSETS_TAG in run.tags:
            return tuple(run.tags[ASSETS_TAG].split(","))
        return tuple(sorted(k.to_user_string() for k in run.asset_selection or ()))

    def _partitions(self, record: RunRecord) -> tuple[str, ...]:
        """Every partition key a run builds (a range run: each key of its range)."""
        run = record.dagster_run
        keys = self._assets(record)
        partitions_def = self.graph.get(AssetKey(keys[0])).partitions_def if keys else None
        if partitions_def is None:
            return ()
        start = run.tags.get(ASSET_PARTITION_RANGE_START_TAG)
        end = run.tags.get(ASSET_PARTITION_RANGE_END_TAG)
        if start and end:
            return tuple(partitions_def.get_partition_keys_in_range(PartitionKeyRange(start, end)))
        single = run.tags.get(PARTITION_NAME_TAG)
        return (single,) if single else ()

    def _last_run(self, asset: str, partition: str) -> str:
        records = [
            r for r in self._runs() if asset in self._assets(r) and partition in self._partitions(r)
        ]
        if not records:
            return "never launched"
        run = records[-1].dagster_run
        who = "the repair rule" if _by_rule(run.tags) else "hand"
        return f"last run {run.run_id[:8]}, by {who}: {run.status.value}"

    def report_runs(self) -> None:
        """Print each run the first time it is seen and when it ends."""
        for record in self._runs():
            run = record.dagster_run
            previous = self.reported.get(run.run_id)
            if previous == run.status:
                continue
            self.reported[run.run_id] = run.status
            what = f"{', '.join(self._assets(record))} [{_label(self._partitions(record))}]"
            if previous is None and _by_rule(run.tags):
                self.say(f"  repair rule launched run {run.run_id[:8]}: {what}")
            if run.status in _FINISHED:
                word = {DagsterRunStatus.SUCCESS: "succeeded", DagsterRunStatus.FAILURE: "FAILED"}
                self.say(f"  run {run.run_id[:8]} {word.get(run.status, 'canceled')}: {what}")

    def timeline(self) -> list[TimelineRun]:
        runs = []
        for record in self._runs():
            run = record.dagster_run
            repair = self.repaired_at is not None and record.create_timestamp >= self.repaired_at
            finished = record.end_time if run.status in _FINISHED else None
            runs.append(
                TimelineRun(
                    run_id=run.run_id,
                    launched_by=AUTOMATION if _by_rule(run.tags) else BY_HAND,
                    phase=REPAIR if repair else LOAD,
                    created_at=record.create_timestamp.astimezone(),
                    finished_at=datetime.fromtimestamp(finished).astimezone() if finished else None,
                    assets=self._assets(record),
                    partitions=self._partitions(record),
                    status=run.status.value,
                    backfill_id=run.tags.get(BACKFILL_ID_TAG),
                    title=run.tags.get(STORY_TAG),
                )
            )
        return runs


def _by_rule(tags: Mapping[str, str]) -> bool:
    # The rule's runs carry its sensor's name, also those it sends through a backfill.
    return tags.get(SENSOR_NAME_TAG) == SENSOR_NAME


# -- printing --------------------------------------------------------------------------------


class _Printer:
    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.start = time.monotonic()

    def __call__(self, message: str) -> None:
        print(f"[{time.monotonic() - self.start:4.0f}s] {message}", file=self.out, flush=True)

    def timeline(self, result: StoryResult) -> None:
        lines = [
            "",
            "Timeline: created, phase, who (R: the repair rule, H: by hand), status, seconds from",
            "created to finished, partitions, assets",
        ]
        for run in result.runs:
            who = "R" if run.launched_by == AUTOMATION else "H"
            took = (run.finished_at - run.created_at).total_seconds() if run.finished_at else 0
            lines.append(
                f"  {run.created_at:%H:%M:%S}  {run.phase:<6}  {who}  {run.status:<7}  "
                f"{took:3.0f}s  {run.partition_label:<22}  {', '.join(run.assets)}"
            )
        print("\n".join(lines), file=self.out, flush=True)


def _days(first: date | None, last: date | None) -> list[str]:
    if first is None or last is None:
        return []
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def _label(partitions: Sequence[str]) -> str:
    if not partitions:
        return "unpartitioned"
    if len(partitions) == 1:
        return partitions[0]
    return f"{partitions[0]}..{partitions[-1]}"


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no daemon log)"
    return "\n".join(text.splitlines()[-lines:])
