"""dbt's per-invocation target folders: slimmed, pruned to a count, partial parse per environment.

Plain files (the end-to-end case, with real dbt runs and the alerts, is in test_publish.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flower_dagster.dbt.target_dirs import (
    BUSY_SECONDS,
    KEPT_FILES,
    environment_key,
    keep_count,
    prune,
    seed_partial_parse,
    slim,
    store_partial_parse,
)
from flower_dagster.errors import FlowerError
from flower_dagster.settings import DEMO_DBT_PROJECT_DIR


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
