"""dbt's per-invocation target folders: slimmed, pruned to a count, partial parse per environment.

Plain files, then 20 real partition runs (Dagster, dbt, DuckDB) whose folders stay bounded while
the alerts of the failed ones still name their tests (more in test_publish.py).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from dagster import AssetKey, AssetSelection

from flower_dagster.alerts.classify import Cause, classify
from flower_dagster.alerts.facts import run_facts
from flower_dagster.alerts.messages import Alert, render_alert
from flower_dagster.alerts.oncall import Rotation, oncall_for
from flower_dagster.alerts.people import Route
from flower_dagster.dbt.target_dirs import (
    BUSY_SECONDS,
    KEEP_ENV,
    KEPT_FILES,
    environment_key,
    invocation_folders,
    keep_count,
    prune,
    seed_partial_parse,
    slim,
    store_partial_parse,
)
from flower_dagster.demo.data import corrupt_day, repair_day
from flower_dagster.errors import FlowerError
from flower_dagster.settings import DEMO_DBT_PROJECT_DIR
from tests.conftest import Warehouse, make_instance, private_warehouse


def _invocation(root: Path, name: str, age: float, finished: bool = True) -> Path:
    folder = root / name
    (folder / "compiled").mkdir(parents=True)
    (folder / "manifest.json").write_text("{}")
    (folder / "dbt.log").write_text("log\n")
    if finished:
        (folder / "run_results.json").write_text('{"results": []}')
    stamp = 1_000_000.0 - age
    for path in (folder / "dbt.log", folder):
        os.utime(path, (stamp, stamp))
    return folder


def test_prune_keeps_the_newest_folders_and_any_still_being_written(tmp_path):
    now = 1_000_000.0
    old = [
        _invocation(tmp_path, f"dbt_daily_models-abcdef{i}-0123456", 100.0 + i) for i in range(5)
    ]
    running = _invocation(tmp_path, "dbt_daily_models-fffffff-7654321", 500.0, finished=False)
    stale = _invocation(
        tmp_path, "dbt_daily_models-eeeeeee-7654321", BUSY_SECONDS + 1, finished=False
    )
    (tmp_path / "partial_parse").mkdir()  # not an invocation folder
    removed = prune(tmp_path, keep=2, now=now)
    assert sorted(removed) == sorted([*old[2:], stale])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [old[0].name, old[1].name, running.name, "partial_parse"]
    )


def test_slim_keeps_what_is_read_after_a_step(tmp_path):
    folder = _invocation(tmp_path, "op-1234567-abcdefg", 0.0)
    (folder / "partial_parse.msgpack").write_bytes(b"x")
    slim(folder)
    assert {p.name for p in folder.iterdir()} == set(KEPT_FILES)


def test_keep_count_reads_the_environment():
    assert keep_count({}) == 50
    assert keep_count({"FLOWER_DBT_TARGET_KEEP": "7"}) == 7
    for bad in ("0", "many"):
        with pytest.raises(FlowerError, match="FLOWER_DBT_TARGET_KEEP"):
            keep_count({"FLOWER_DBT_TARGET_KEEP": bad})


def test_each_environment_keeps_its_own_partial_parse(tmp_path):
    profiles = DEMO_DBT_PROJECT_DIR
    dev = environment_key(DEMO_DBT_PROJECT_DIR, profiles, None, {"FLOWER_DUCKDB_PATH": "/a.db"})
    other = environment_key(DEMO_DBT_PROJECT_DIR, profiles, None, {"FLOWER_DUCKDB_PATH": "/b.db"})
    prod = environment_key(DEMO_DBT_PROJECT_DIR, profiles, "prod", {"FLOWER_DUCKDB_PATH": "/a.db"})
    assert len({dev, other, prod}) == 3 and dev.startswith("flower_demo-duckdb-")

    parsed = tmp_path / "parsed"
    parsed.mkdir()
    (parsed / "partial_parse.msgpack").write_bytes(b"dev parse")
    store_partial_parse(tmp_path, dev, parsed)
    (parsed / "partial_parse.msgpack").write_bytes(b"prod parse")
    store_partial_parse(tmp_path, prod, parsed)
    seed_partial_parse(tmp_path, dev, tmp_path / "target" / "run-1234567-abcdefg")
    seeded = tmp_path / "target" / "run-1234567-abcdefg" / "partial_parse.msgpack"
    assert seeded.read_bytes() == b"dev parse"


# -- 20 partition runs through Dagster ---------------------------------------------------------

KEEP = 5
RUNS = 20
FIRST_DAY = date(2024, 2, 1)
# Days whose raw orders hold a replayed duplicate when their partition runs: `unique` fails.
BAD_DAYS = {date(2024, 2, 2), date(2024, 2, 7), date(2024, 2, 13), date(2024, 2, 19)}
FAILING_TEST = "unique_fct_orders_order_id"


@pytest.fixture
def own(warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """The session's dbt project (its target folder, where the folders pile up) on a DuckDB file
    and a Dagster instance of its own, with what fct_orders reads built."""
    home = tmp_path_factory.mktemp("target_dirs_home")
    for mine in private_warehouse(warehouse, tmp_path_factory, "target_dirs"):
        instance = make_instance(home)
        try:
            own = replace(mine, instance=instance, dagster_home=home)
            staging = AssetSelection.assets(
                *[AssetKey(name) for name in ("stg_orders", "stg_users", "stg_payments")]
            )
            assert own.materialize(staging).success
            yield own
        finally:
            instance.dispose()


def _alert_text(own: Warehouse, run_id: str) -> tuple[list, str]:
    """What the alert sensor makes of a run (sensors.py: run_facts, classify, render_alert)."""
    facts = run_facts(own.instance, run_id, own.project_dir / "target")
    findings = classify(facts)
    at = datetime(2024, 3, 1, 9, tzinfo=ZoneInfo("Asia/Seoul"))
    alert = Alert(
        run_id=run_id,
        run_url=f"http://ui/runs/{run_id}",
        failed=facts.failed,
        findings=tuple(findings),
        route=Route("#data-platform", (), ("commerce",)),
        oncall=oncall_for(at, Rotation(("hana",))),
        oncall_ids=(),
        at=at,
    )
    message = render_alert(alert)
    return findings, "\n".join(b["text"]["text"] for b in message["blocks"] if "text" in b)


@pytest.mark.slow
def test_twenty_partition_runs_keep_the_target_folder_bounded_and_alerts_name_the_tests(
    own: Warehouse, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.setenv(KEEP_ENV, str(KEEP))
    target = own.project_dir / "target"
    # Another step's folder, dbt still writing it (no run_results.json yet): never pruned.
    running = target / "dbt_daily_models-running-0000000"
    running.mkdir(parents=True)
    (running / "dbt.log").write_text("another step's dbt is running\n")
    request.addfinalizer(lambda: shutil.rmtree(running, ignore_errors=True))
    failed: dict[str, str] = {}  # run id: its partition
    ours: set[str] = set()  # the short run ids in this test's folder names
    for offset in range(RUNS):
        day = FIRST_DAY + timedelta(days=offset)
        bad = day in BAD_DAYS
        if bad:
            corrupt_day(own.duckdb_path, day)
        try:
            result = own.materialize(["fct_orders"], partition_key=day.isoformat())
        finally:
            if bad:
                repair_day(own.duckdb_path, day)
        assert result.success is not bad, day
        if bad:
            failed[result.run_id] = day.isoformat()
        # The run's own folder is kept, slimmed. Never more than KEEP finished folders: besides
        # them, prune leaves only folders without run_results.json written in the last hour
        # (a step that may still be running; in this session, also earlier tests' killed dbt).
        (folder,) = own.target_dirs(result.run_id)
        assert {f.name for f in folder.iterdir()} <= KEPT_FILES
        folders = invocation_folders(target)
        finished = [f for f in folders if (f / "run_results.json").is_file()]
        assert len(finished) <= KEEP, (day, folders)
        ours.add(result.run_id[:7])
        unfinished = [f for f in folders if f not in finished]
        assert not [f for f in unfinished if f.name.rsplit("-", 2)[1] in ours], day

    assert running.is_dir()
    kept = {f.name.rsplit("-", 2)[1] for f in invocation_folders(target)}
    pruned = [run_id for run_id in failed if run_id[:7] not in kept]
    assert len(pruned) == 3 and len(failed) - len(pruned) == 1  # the last bad day is kept
    for run_id, day in failed.items():
        findings, text = _alert_text(own, run_id)
        tests = [(f.cause, f.model, f.test, f.partitions) for f in findings]
        assert tests == [(Cause.DATA_TEST, "fct_orders", FAILING_TEST, (day,))], run_id
        assert f"`{FAILING_TEST}` on `fct_orders`" in text
        assert day in text
