"""`dagster dev` as `make dev` starts it: the UI on 127.0.0.1 shows every model, partitioned."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flower_dagster.settings import REPO_ROOT
from tests.conftest import Warehouse, make_instance
from tests.http_support import free_port, graphql

pytestmark = pytest.mark.slow

ASSETS_QUERY = "{ assetNodes { assetKey { path } partitionDefinition { description } } }"


def test_dagster_dev_serves_the_partitioned_assets_on_loopback(warehouse: Warehouse, tmp_path):
    port = free_port()
    home = make_instance(tmp_path / "home").root_directory
    dagster = Path(sys.executable).with_name("dagster")
    process = subprocess.Popen(
        [str(dagster), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO_ROOT,
        env={**os.environ, "DAGSTER_HOME": home},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        nodes = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                nodes = graphql(port, ASSETS_QUERY)["assetNodes"]
                if nodes:
                    break
            except OSError:
                pass
            time.sleep(1)
        assert nodes, "dagster dev did not serve the assets within 120 s"
        partitions = {
            "/".join(n["assetKey"]["path"]): (n["partitionDefinition"] or {}).get("description")
            for n in nodes
        }
        assert partitions["fct_orders"] == "Daily, starting 2024-01-01 Asia/Seoul."
        assert partitions["agg_weekly_revenue"] == "Weekly, starting 2024-01-01 Asia/Seoul."
        assert partitions["agg_monthly_revenue"] == "Monthly, starting 2024-01-01 Asia/Seoul."
        assert partitions["dim_users"] is None

        # Bound to loopback only: the machine's other addresses do not answer.
        listening = subprocess.run(
            ["ss", "-ltn", f"sport = :{port}"], capture_output=True, text=True, check=False
        ).stdout
        if listening:
            assert f"127.0.0.1:{port}" in listening
            assert f"0.0.0.0:{port}" not in listening and f"*:{port}" not in listening
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
