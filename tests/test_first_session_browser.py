"""The README's first session in the real Dagster UI, with the UI's own defaults.

`dagster dev` (webserver and daemon) runs on 127.0.0.1 with a temporary DAGSTER_HOME and the
demo's calendar as `make dev` sets it (FLOWER_PARTITION_END); headless Chromium (tests/cdp.py)
opens fct_orders as a new user does. The partition list opens on the last partitions and the
Materialize dialog's range ends with the calendar: both must be days with demo data, not empty
days up to today. (This Dagster's dialog opens with an empty "Custom" selection; whatever it
preselects must lie within the demo's days.)
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator

import pytest
from dagster import AssetSelection, DagsterInstance, DagsterRunStatus, RunsFilter, materialize

from flower_dagster.settings import REPO_ROOT
from tests.admin_support import dagster_dev_command, free_port, has_assets, spawn, stop
from tests.cdp import Browser
from tests.conftest import Warehouse, make_instance, private_warehouse

pytestmark = pytest.mark.slow

DEMO_END = "2024-03-31"  # `make dev`'s DEMO_PARTITION_END: the demo data's last day


@pytest.fixture(scope="module")
def dagster_ui(
    chromium, warehouse: Warehouse, tmp_path_factory
) -> Iterator[tuple[str, DagsterInstance]]:
    own = private_warehouse(warehouse, tmp_path_factory, "first_session")
    wh = next(own)
    root = tmp_path_factory.mktemp("first_session_ui")
    instance = make_instance(root / "dagster_home")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWER_", "DAGSTER_"))}
    env.update(
        FLOWER_DBT_PROJECT_DIR=str(wh.project_dir),
        FLOWER_DUCKDB_PATH=str(wh.duckdb_path),
        FLOWER_PARTITION_END=DEMO_END,
        DAGSTER_HOME=str(instance.root_directory),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    process = spawn(dagster_dev_command(port), REPO_ROOT, env, root / "dagster-dev.log")
    try:
        built = materialize(
            list(wh.defs.assets or []),
            selection=AssetSelection.tag("flower/grain", "unpartitioned"),
            instance=instance,
            resources=wh.defs.resources,
            raise_on_error=False,
        )
        assert built.success
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while not has_assets(url):
            assert process.poll() is None and time.monotonic() < deadline, root
            time.sleep(1)
        yield url, instance
    finally:
        stop(process)
        instance.dispose()
        own.close()


DIALOG = "document.querySelector('[role=dialog]')"
RANGE_INPUT = f"{DIALOG}?.querySelector('input[placeholder^=\"ex:\"]')"


def _texts(scope: str, selector: str) -> str:
    return f"[...{scope}.querySelectorAll({selector!r})].map(e => e.textContent.trim())"


def _button(scope: str, text: str) -> str:
    return f"[...{scope}.querySelectorAll('button')].find(b => b.textContent.trim() === {text!r})"


def test_the_first_session_opens_on_the_demo_data_and_backfills_january(
    dagster_ui: tuple[str, DagsterInstance], browser: Browser
):
    url, instance = dagster_ui
    # The partition list of fct_orders: its range and its first rows are the demo's last days.
    browser.open(url + "/assets/fct_orders?view=partitions")
    selected = browser.wait_for(
        "[...document.querySelectorAll('input')].find(i => i.value.startsWith('['))?.value",
        timeout=60,
    )
    assert selected == "[2024-01-01...2024-03-31]"
    rows = browser.wait_for(
        f"{_texts('document', 'div')}.filter(t => /^2024-03-[0-9][0-9]$/.test(t))"
        ".filter((t, i, a) => a.indexOf(t) === i).slice(0, 3)"
    )
    assert rows == ["2024-03-31", "2024-03-30", "2024-03-29"], rows
    assert browser.evaluate(
        f"{_texts('document', 'div')}.some(t => t === '91 Partitions Selected')"
    )

    # The Materialize dialog: a single-run backfill over the demo's calendar, up to 2024-03-31.
    browser.open(url + "/assets/fct_orders")
    # The button is there before the asset has loaded: click until the dialog opens.
    browser.wait_for(
        f"!!{DIALOG} || void [...document.querySelectorAll('button')]"
        ".find(b => b.textContent.trim().startsWith('Materialize') && !b.disabled)?.click()",
        timeout=60,
    )
    placeholder = browser.wait_for(f"{RANGE_INPUT}?.placeholder", timeout=60)
    assert placeholder.endswith("[2024-01-03...2024-03-31]"), placeholder
    axis = browser.wait_for(
        f"{_texts(DIALOG, 'span')}.filter(t => /^[0-9]+-[0-9]+-[0-9]+$/.test(t))"
    )
    assert axis == ["2024-01-01", "2024-03-31"], axis
    preselected = browser.evaluate(f"{RANGE_INPUT}.value")
    assert all(
        "2024-01-01" <= day <= DEMO_END for day in re.findall(r"\d{4}-\d\d-\d\d", preselected)
    )
    assert browser.evaluate(f"{DIALOG}.textContent").count("in a single run") == 1

    # Step 2: January, typed as the README says, then Launch backfill.
    browser.type_into("[role=dialog] input[placeholder^='ex:']", "[2024-01-01...2024-01-31]")
    browser.evaluate(f"{RANGE_INPUT}.blur()")
    browser.wait_for(f"{DIALOG}.textContent.includes('31 partitions')")
    browser.wait_for(f"!{_button(DIALOG, 'Launch backfill')}.disabled")
    browser.evaluate(f"{_button(DIALOG, 'Launch backfill')}.click()")
    browser.wait_for(f"!{DIALOG}", timeout=60)

    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        backfills = instance.get_backfills()
        if backfills and backfills[0].status.value != "REQUESTED":
            break
        time.sleep(1)
    assert len(backfills) == 1
    backfill = backfills[0]
    assert backfill.status.value == "COMPLETED_SUCCESS", backfill.status
    runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill.backfill_id}))
    assert [r.status for r in runs] == [DagsterRunStatus.SUCCESS]
    assert (
        runs[0].tags["dagster/asset_partition_range_start"],
        runs[0].tags["dagster/asset_partition_range_end"],
    ) == ("2024-01-01", "2024-01-31")
