"""The repair demo: a broken day, its blocked week and month, the repair, told by the real daemon.

`run_story` sets up a throw-away warehouse and Dagster instance, starts the real
`dagster-daemon`, and stages an incident on it:

1. the unpartitioned models are built (a backfill, run by the daemon's backfill daemon);
2. one day of raw orders is broken (a replayed ingestion batch: a duplicate order), then
   January is loaded as three backfills -- the days before that day, the day itself, the days
   after -- so the bad day fails on its own, as it would under a daily schedule;
3. the repair rule (the sensor `flower_repair_rule`) rolls up every complete week of January by
   itself, while the week and month that contain the broken day wait, blocked by it;
4. the day's raw data is repaired and the day re-run (a one-partition backfill); the rule then
   launches exactly that week, that month and that day's revenue, once each.

Every run is launched by the daemon: the backfills by its backfill daemon, the roll-ups by the
sensor. The story ends by itself: the daemon is stopped (its whole process group) on the way
out, on success, error or timeout. See docs/repair-demo.md.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TextIO

import yaml
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph
from dagster._core.definitions.partitions.partition_key_range import PartitionKeyRange
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.scheduler.instigation import InstigatorType, TickStatus
from dagster._core.storage.dagster_run import DagsterRun
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
    AUTO_MATERIALIZE_TAG,
    BACKFILL_ID_TAG,
    PARTITION_NAME_TAG,
    SENSOR_NAME_TAG,
)
from dagster._core.utils import make_new_backfill_id

from flower_dagster.automation import SENSOR_NAME
from flower_dagster.dbt.project import FlowerDbtProject
from flower_dagster.defs.dbt import dbt_definitions
from flower_dagster.demo.data import corrupt_day, load_demo_data, repair_day
from flower_dagster.errors import FlowerError
from flower_dagster.inputs import input_problems
from flower_dagster.settings import DEMO_DBT_PROJECT_DIR, REPO_ROOT, load_settings

BROKEN_DAY = date(2024, 1, 10)
MONTH_START = date(2024, 1, 1)
MONTH_END = date(2024, 1, 31)
DAILIES = ("fct_orders", "fct_sessions")
# The roll-ups of fct_orders that read the broken day, and their partitions that contain it.
BROKEN_ROLLUPS = (
    ("agg_daily_revenue", "2024-01-10"),
    ("agg_weekly_revenue", "2024-01-08"),
    ("agg_monthly_revenue", "2024-01-01"),
)

STORY_TAG = "flower/demo"
INSTANCE_TEMPLATE = REPO_ROOT / "dagster_home" / "dagster.yaml"
PROJECT_COPY_IGNORE = shutil.ignore_patterns("target", "state", "logs", "dbt_packages")
_FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
_POLL_SECONDS = 1.0
_STOP_GRACE_SECONDS = 20.0


class StoryError(FlowerError):
    """The demo did not reach its end in time, or the daemon died on the way."""


@dataclass(frozen=True)
class TimelineRun:
    """One run of the story: who launched it, what it built, how it ended."""

    run_id: str
    launched_by: str  # "automation" (the repair rule's sensor) or "backfill" (launched by hand)
    phase: str  # "load" (before the repair) or "repair"
    created_at: datetime
    finished_at: datetime | None
    assets: tuple[str, ...]
    partitions: tuple[str, ...]  # every partition key the run built, in order
    status: str  # Dagster's run status: SUCCESS, FAILURE, ...
    backfill_id: str | None
    title: str | None  # the backfill's title, for runs launched by hand

    @property
    def partition_label(self) -> str:
        if not self.partitions:
            return "-"
        if len(self.partitions) == 1:
            return self.partitions[0]
        return f"{self.partitions[0]}..{self.partitions[-1]} ({len(self.partitions)})"


@dataclass(frozen=True)
class StoryResult:
    """The story's timeline, for a person (printed) and for a test (these fields)."""

    workdir: Path
    daemon_log: Path
    daemon_pid: int
    broken_day: date
    repaired_at: datetime
    runs: tuple[TimelineRun, ...]
    # What blocked each roll-up partition of the broken day before the repair, as printed.
    blocked: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def automation_runs(self, phase: str | None = None) -> list[TimelineRun]:
        return [
            run
            for run in self.runs
            if run.launched_by == "automation" and (phase is None or run.phase == phase)
        ]

    def launched(self, phase: str | None = None) -> dict[str, Counter[str]]:
        """Per asset, how many times the automation launched each partition (in `phase`)."""
        counts: dict[str, Counter[str]] = {}
        for run in self.automation_runs(phase):
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
    """Tell the repair story on a temporary warehouse with the real daemon; return its timeline.

    `workdir` holds the dbt project copy, the DuckDB file, DAGSTER_HOME and the daemon's log (a
    new temporary folder when None; it is kept, for a look at the log). `interval_seconds` is
    the repair rule's evaluation interval. Raises StoryError when the story has not ended
    within `timeout_seconds`, with the tail of the daemon's log.
    """
    deadline = time.monotonic() + timeout_seconds
    root = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="flower-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    say = _Printer(out)

    say(f"flower repair demo in {root}")
    setup = _prepare(root, interval_seconds)
    say(f"  dbt project copied and parsed, demo raw data loaded into {setup.duckdb_path.name}")
    instance = DagsterInstance.from_config(str(setup.dagster_home))
    daemon: subprocess.Popen[bytes] | None = None
    try:
        graph = dbt_definitions(setup.settings).resolve_asset_graph()
        daemon = _start_daemon(setup)
        story = _Story(instance, graph, setup, daemon, deadline, say)
        say(f"dagster-daemon started (pid {daemon.pid}), repair rule every {interval_seconds}s")
        story.wait_for_first_tick()
        result = story.tell()
    finally:
        if daemon is not None:
            _stop_daemon(daemon)
        instance.dispose()
    say(f"dagster-daemon stopped; its log: {setup.daemon_log}")
    say.timeline(result)
    return result


@dataclass(frozen=True)
class _Setup:
    root: Path
    project_dir: Path
    duckdb_path: Path
    dagster_home: Path
    workspace: Path
    daemon_log: Path
    env: Mapping[str, str]
    settings: object


def _prepare(root: Path, interval_seconds: int) -> _Setup:
    project_dir = root / "dbt_project"
    if project_dir.exists():
        shutil.rmtree(project_dir)
    shutil.copytree(DEMO_DBT_PROJECT_DIR, project_dir, ignore=PROJECT_COPY_IGNORE)
    duckdb_path = root / "warehouse.duckdb"
    duckdb_path.unlink(missing_ok=True)
    dagster_home = root / "dagster_home"
    if dagster_home.exists():
        shutil.rmtree(dagster_home)
    dagster_home.mkdir()
    shutil.copy(INSTANCE_TEMPLATE, dagster_home / "dagster.yaml")
    workspace = root / "workspace.yaml"
    workspace.write_text(
        yaml.safe_dump(
            {
                "load_from": [
                    {
                        "python_module": {
                            "module_name": "flower_dagster.definitions",
                            "location_name": "flower_dagster",
                            "working_directory": str(REPO_ROOT),
                        }
                    }
                ]
            },
            sort_keys=False,
        )
    )
    flower_env = {
        "FLOWER_DBT_PROJECT_DIR": str(project_dir),
        "FLOWER_DUCKDB_PATH": str(duckdb_path),
        "FLOWER_AUTOMATION_INTERVAL_SECONDS": str(interval_seconds),
    }
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("FLOWER_WINDOW_START", "FLOWER_WINDOW_END", "FLOWER_DBT_TARGET")
    }
    env.update(flower_env)
    env["DAGSTER_HOME"] = str(dagster_home)
    env["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    settings = load_settings(env)
    # dbt reads FLOWER_DUCKDB_PATH from the environment while parsing the profile.
    with _environment(flower_env):
        FlowerDbtProject.from_settings(settings).parse()
    load_demo_data(duckdb_path)
    return _Setup(
        root=root,
        project_dir=project_dir,
        duckdb_path=duckdb_path,
        dagster_home=dagster_home,
        workspace=workspace,
        daemon_log=root / "dagster-daemon.log",
        env=env,
        settings=settings,
    )


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _start_daemon(setup: _Setup) -> subprocess.Popen[bytes]:
    executable = Path(sys.executable).with_name("dagster-daemon")
    command = [str(executable), "run", "-w", str(setup.workspace)]
    with open(setup.daemon_log, "wb") as log:
        return subprocess.Popen(
            command,
            cwd=setup.root,
            env=dict(setup.env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop_daemon(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the daemon's process group (code server, run workers), SIGKILL what is left."""
    group = process.pid  # start_new_session: the daemon leads its own process group
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + _STOP_GRACE_SECONDS
    while time.monotonic() < deadline:
        process.poll()
        if not _group_alive(group):
            break
        time.sleep(0.2)
    try:
        os.killpg(group, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()
    while _group_alive(group) and time.monotonic() < deadline + 10:
        time.sleep(0.1)


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_processes(group: int) -> list[int]:
    """The processes still in process group or session `group` (zombies excluded)."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...: comm may hold spaces, split after it.
        fields = text[text.rfind(")") + 2 :].split()
        state, pgrp, session = fields[0], int(fields[2]), int(fields[3])
        if state != "Z" and group in (pgrp, session):
            pids.append(int(stat.parent.name))
    return pids


class _Printer:
    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._start = time.monotonic()

    def __call__(self, message: str) -> None:
        elapsed = time.monotonic() - self._start
        print(f"[{elapsed:5.0f}s] {message}", file=self._out, flush=True)

    def timeline(self, result: StoryResult) -> None:
        print("", file=self._out)
        print("Timeline", file=self._out)
        start = min((run.created_at for run in result.runs), default=result.repaired_at)
        for run in result.runs:
            offset = (run.created_at - start).total_seconds()
            who = "repair rule" if run.launched_by == "automation" else "by hand"
            what = ", ".join(run.assets)
            print(
                f"  +{offset:5.0f}s  {run.phase:<6}  {who:<11}  {run.status:<8}  "
                f"{run.partition_label:<28}  {what}",
                file=self._out,
            )
        print("", file=self._out, flush=True)


class _Story:
    def __init__(
        self,
        instance: DagsterInstance,
        graph: BaseAssetGraph,
        setup: _Setup,
        daemon: subprocess.Popen[bytes],
        deadline: float,
        say: _Printer,
    ) -> None:
        self.instance = instance
        self.graph = graph
        self.setup = setup
        self.daemon = daemon
        self.deadline = deadline
        self.say = say
        self.seen: dict[str, DagsterRunStatus] = {}
        self.backfill_titles: dict[str, str] = {}
        self.repaired_at: datetime | None = None

    # -- the story ---------------------------------------------------------------------------

    def tell(self) -> StoryResult:
        self.say("building the unpartitioned models (staging views, dim_users)")
        unpartitioned = [
            key for key in self.graph.materializable_asset_keys if not self._partitions_def(key)
        ]
        self.wait_for_backfills([self.backfill("unpartitioned models", unpartitioned, None)])

        corrupt_day(self.setup.duckdb_path, BROKEN_DAY)
        self.say(f"incident: raw orders of {BROKEN_DAY} hold a duplicate order (a replayed batch)")
        keys = [AssetKey(name) for name in DAILIES]
        before = _days(MONTH_START, BROKEN_DAY - timedelta(days=1))
        after = _days(BROKEN_DAY + timedelta(days=1), MONTH_END)
        self.say(
            "loading January: the days before the incident, the incident day, the days after "
            "(three backfills of fct_orders and fct_sessions)"
        )
        loads = [
            self.backfill(f"January {before[0]}..{before[-1]}", keys, before),
            self.backfill(f"January {BROKEN_DAY}", keys, [BROKEN_DAY.isoformat()]),
            self.backfill(f"January {after[0]}..{after[-1]}", keys, after),
        ]
        self.wait_for_backfills(loads)
        self.wait_until_quiet()

        blocked = self.report_blocked()

        repair_day(self.setup.duckdb_path, BROKEN_DAY)
        self.repaired_at = datetime.now().astimezone()
        self.say(f"repair: the duplicate order of {BROKEN_DAY} removed; re-running that day")
        self.wait_for_backfills(
            [self.backfill(f"repair {BROKEN_DAY}", [AssetKey("fct_orders")], [str(BROKEN_DAY)])]
        )
        self.wait_for(
            "the repair rule to re-run the broken day's roll-ups",
            self._rollups_repaired,
        )
        self.wait_until_quiet()
        return StoryResult(
            workdir=self.setup.root,
            daemon_log=self.setup.daemon_log,
            daemon_pid=self.daemon.pid,
            broken_day=BROKEN_DAY,
            repaired_at=self.repaired_at,
            runs=tuple(self.timeline()),
            blocked=blocked,
        )

    def report_blocked(self) -> dict[str, tuple[str, ...]]:
        blocked: dict[str, tuple[str, ...]] = {}
        for asset, partition in BROKEN_ROLLUPS:
            problems = input_problems(self.instance, self.graph, AssetKey(asset), [partition])
            items = tuple(str(p) for p in problems[partition])
            blocked[f"{asset} {partition}"] = items
            state = f"BLOCKED by {', '.join(items)}" if items else "not blocked"
            self.say(f"  {asset} {partition}: {state}")
        return blocked

    # -- launching ---------------------------------------------------------------------------

    def backfill(
        self, title: str, keys: Sequence[AssetKey], partitions: Sequence[str] | None
    ) -> str:
        backfill_id = make_new_backfill_id()
        self.instance.add_backfill(
            PartitionBackfill.from_asset_partitions(
                backfill_id=backfill_id,
                asset_graph=self.graph,
                partition_names=partitions,
                asset_selection=list(keys),
                backfill_timestamp=time.time(),
                tags={STORY_TAG: "true"},
                dynamic_partitions_store=self.instance,
                all_partitions=partitions is None,
                title=title,
                description=None,
                run_config=None,
            )
        )
        self.backfill_titles[backfill_id] = title
        self.say(f"backfill {backfill_id} requested: {title}")
        return backfill_id

    # -- waiting -----------------------------------------------------------------------------

    def wait_for(self, what: str, done: Callable[[], bool]) -> None:
        while True:
            self.report_runs()
            if done():
                return
            if self.daemon.poll() is not None:
                raise StoryError(
                    f"dagster-daemon exited (code {self.daemon.returncode}) while waiting for "
                    f"{what}\n{_tail(self.setup.daemon_log)}"
                )
            if time.monotonic() > self.deadline:
                raise StoryError(
                    f"timed out waiting for {what}\n"
                    f"last lines of {self.setup.daemon_log}:\n{_tail(self.setup.daemon_log)}"
                )
            time.sleep(_POLL_SECONDS)

    def wait_for_first_tick(self) -> None:
        self.wait_for(f"the first evaluation of {SENSOR_NAME}", lambda: bool(self._ticks()))
        self.say(f"{SENSOR_NAME}: first evaluation done (a fresh cursor requests nothing)")

    def wait_for_backfills(self, backfill_ids: Sequence[str]) -> None:
        def finished() -> bool:
            runs = [r for r in self._runs() if r.tags.get(BACKFILL_ID_TAG) in backfill_ids]
            launched = {r.tags.get(BACKFILL_ID_TAG) for r in runs}
            return launched >= set(backfill_ids) and all(r.status in _FINISHED for r in runs)

        self.wait_for("backfills " + ", ".join(backfill_ids), finished)

    def wait_until_quiet(self) -> None:
        """Until no run or backfill is pending and the rule, evaluated since, requested nothing."""

        def quiet() -> bool:
            runs = self._runs()
            if any(run.status not in _FINISHED for run in runs):
                return False
            for backfill in self.instance.get_backfills(status=BulkActionStatus.REQUESTED):
                own = [r for r in runs if r.tags.get(BACKFILL_ID_TAG) == backfill.backfill_id]
                if not own:
                    return False
            last_end = max(
                (r.end_time or 0.0 for r in self.instance.get_run_records()), default=0.0
            )
            return any(
                tick.status == TickStatus.SKIPPED and tick.timestamp > last_end
                for tick in self._ticks(limit=5)
            )

        self.wait_for("the repair rule to settle", quiet)

    def _rollups_repaired(self) -> bool:
        assert self.repaired_at is not None
        after = self.repaired_at.timestamp()
        done = set()
        for run in self._runs():
            if run.tags.get(AUTO_MATERIALIZE_TAG) != "true" or run.status not in _FINISHED:
                continue
            record_time = self.instance.get_run_record_by_id(run.run_id)
            if record_time is None or record_time.create_timestamp.timestamp() < after:
                continue
            for asset in run.asset_selection or ():
                for partition in self._run_partitions(run, asset):
                    done.add((asset.to_user_string(), partition))
        return all(item in done for item in BROKEN_ROLLUPS)

    # -- reading the instance ----------------------------------------------------------------

    def _ticks(self, limit: int | None = None):
        for state in self.instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
            if state.instigator_name == SENSOR_NAME:
                ticks = self.instance.get_ticks(
                    state.instigator_origin_id, state.selector_id, limit=limit
                )
                return [
                    tick
                    for tick in ticks
                    if tick.status in (TickStatus.SKIPPED, TickStatus.SUCCESS)
                ]
        return []

    def _runs(self) -> list[DagsterRun]:
        return list(self.instance.get_runs(RunsFilter()))

    def _partitions_def(self, key: AssetKey):
        return self.graph.get(key).partitions_def

    def _run_partitions(self, run: DagsterRun, key: AssetKey) -> list[str]:
        partitions_def = self._partitions_def(key)
        if partitions_def is None:
            return []
        start = run.tags.get(ASSET_PARTITION_RANGE_START_TAG)
        end = run.tags.get(ASSET_PARTITION_RANGE_END_TAG)
        if start and end:
            return list(
                partitions_def.get_partition_keys_in_range(PartitionKeyRange(start, end))
            )
        single = run.tags.get(PARTITION_NAME_TAG)
        return [single] if single else []

    def report_runs(self) -> None:
        for run in reversed(self._runs()):
            previous = self.seen.get(run.run_id)
            if previous == run.status:
                continue
            self.seen[run.run_id] = run.status
            assets = ", ".join(sorted(k.to_user_string() for k in run.asset_selection or ()))
            keys = [k for k in run.asset_selection or ()]
            partitions = self._run_partitions(run, keys[0]) if keys else []
            label = _label(partitions)
            who = self._who(run)
            if previous is None:
                self.say(f"  {who} launched run {run.run_id[:8]}: {assets} [{label}]")
            if run.status in _FINISHED:
                word = {"SUCCESS": "succeeded", "FAILURE": "FAILED"}.get(
                    run.status.value, run.status.value.lower()
                )
                self.say(f"  run {run.run_id[:8]} {word}: {assets} [{label}]")

    def _who(self, run: DagsterRun) -> str:
        if run.tags.get(AUTO_MATERIALIZE_TAG) == "true" or run.tags.get(SENSOR_NAME_TAG):
            return "repair rule"
        return "backfill"

    def timeline(self) -> Iterator[TimelineRun]:
        assert self.repaired_at is not None
        records = sorted(self.instance.get_run_records(), key=lambda r: r.create_timestamp)
        for record in records:
            run = record.dagster_run
            keys = sorted(run.asset_selection or (), key=lambda k: k.to_user_string())
            partitions = self._run_partitions(run, keys[0]) if keys else []
            automation = self._who(run) == "repair rule"
            backfill_id = run.tags.get(BACKFILL_ID_TAG)
            yield TimelineRun(
                run_id=run.run_id,
                launched_by="automation" if automation else "backfill",
                phase="repair" if record.create_timestamp >= self.repaired_at else "load",
                created_at=record.create_timestamp,
                finished_at=(
                    datetime.fromtimestamp(record.end_time).astimezone()
                    if record.end_time
                    else None
                ),
                assets=tuple(k.to_user_string() for k in keys),
                partitions=tuple(partitions),
                status=run.status.value,
                backfill_id=backfill_id,
                title=self.backfill_titles.get(backfill_id or ""),
            )


def _days(first: date, last: date) -> list[str]:
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
