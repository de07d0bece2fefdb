"""The admin page in headless Chromium: sign in with a token, launch a backfill, watch it run.

Chromium is installed by the project's own set-up (scripts/ensure-chromium.sh) when missing,
and driven over the DevTools protocol (tests/cdp.py). With FLOWER_SCREENSHOTS=<folder> the test
also saves the screenshots of docs/backfills.md there (`make docs-screenshots`).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster._core.execution.backfill import BulkActionStatus

from flower_dagster.admin.dagster_client import LAUNCHED_BY_TAG, REASON_TAG
from tests.admin_support import AdminStack, start_admin_stack
from tests.cdp import Browser
from tests.conftest import Warehouse

pytestmark = pytest.mark.slow

SHOTS = os.environ.get("FLOWER_SCREENSHOTS")
REASON = "payments of 16-18 January were late"


@pytest.fixture(scope="module")
def stack(chromium, warehouse: Warehouse, tmp_path_factory) -> Iterator[AdminStack]:
    # The demo's calendar, as `make dev` and `make admin` run it: partitions end with the data.
    yield from start_admin_stack(warehouse, tmp_path_factory, "admin_browser", "2024-03-31")


def _shot(browser: Browser, name: str, tmp_path: Path) -> None:
    folder = Path(SHOTS) if SHOTS else tmp_path
    browser.screenshot(folder / f"{name}.png")


def _row(backfill_id: str, what: str) -> str:
    return f"document.querySelector('tr[data-id={json.dumps(backfill_id)}]')?.{what}"


def test_an_author_signs_in_launches_a_backfill_and_sees_it_progress(
    stack: AdminStack, browser: Browser, tmp_path: Path
):
    browser.open(stack.admin_url + "/")
    browser.wait_for("!document.getElementById('signin').hidden")
    assert browser.evaluate("document.getElementById('app').hidden") is True
    _shot(browser, "admin-sign-in", tmp_path)

    browser.type_into("#token", stack.tokens["jimin"])
    browser.click("#login")
    browser.wait_for("document.querySelectorAll('#models tbody tr').length > 0")
    assert browser.evaluate("document.getElementById('whoami').textContent").startswith(
        "Jimin Park (commerce-authors)"
    )
    shown = browser.evaluate(
        "[...document.querySelectorAll('#models tbody tr')].map(r => r.dataset.model)"
    )
    assert shown == ["agg_daily_revenue", "agg_monthly_revenue", "agg_weekly_revenue", "fct_orders"]

    # A range above the limit: refused in the page, nothing reaches Dagster.
    before = stack.backfill_ids()
    browser.evaluate("document.getElementById('bf-model').value = 'fct_orders'")
    browser.type_into("#bf-from", "2024-01-01")
    browser.type_into("#bf-to", "2024-03-31")
    browser.type_into("#bf-reason", REASON)
    browser.click("#launch")
    refused = browser.wait_for(
        "document.getElementById('message').className === 'error' && "
        "document.getElementById('message').textContent"
    )
    assert refused.startswith("to: 91 partitions of fct_orders") and "allowed: at most" in refused
    assert stack.backfill_ids() == before
    _shot(browser, "admin-refused", tmp_path)

    browser.type_into("#bf-from", "2024-01-16")
    browser.type_into("#bf-to", "2024-01-18")
    browser.click("#launch")
    message = browser.wait_for(
        "document.getElementById('message').className === 'ok' && "
        "document.getElementById('message').textContent"
    )
    match = re.match(r"Launched backfill (\w+): fct_orders 2024-01-16 to 2024-01-18 \(3 ", message)
    assert match, message
    backfill_id = match.group(1)
    assert stack.backfill_ids() == before | {backfill_id}

    # The list refreshes by itself; collect what the progress cell shows until it is done.
    seen: list[str] = []
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        text = browser.evaluate(_row(backfill_id, "querySelector('.progress')?.textContent"))
        if text and (not seen or seen[-1] != text):
            seen.append(text)
            if len(seen) == 1:
                _shot(browser, "admin-progress", tmp_path)
        if browser.evaluate(_row(backfill_id, "dataset.status")) == "COMPLETED_SUCCESS":
            break
        time.sleep(0.5)
    assert seen and seen[0].strip().startswith("0/3 done"), seen
    assert seen[-1].strip() == "3/3 done", seen
    assert browser.evaluate(_row(backfill_id, "dataset.status")) == "COMPLETED_SUCCESS"
    assert browser.evaluate(_row(backfill_id, "querySelector('button')")) is None  # no Cancel
    _shot(browser, "admin-done", tmp_path)

    # What the page showed is what Dagster recorded.
    backfill = stack.instance.get_backfill(backfill_id)
    assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS
    assert (backfill.tags[LAUNCHED_BY_TAG], backfill.tags[REASON_TAG]) == ("jimin", REASON)
    launches = [a for a in stack.audit() if a.get("action") == "launch"]
    assert [(a["status"], a.get("backfill_id")) for a in launches] == [
        (422, None),
        (201, backfill_id),
    ]


def test_the_author_sees_the_calendar_previews_the_impact_and_launches(
    stack: AdminStack, browser: Browser, tmp_path: Path
):
    browser.open(stack.admin_url + "/")
    browser.wait_for("!document.getElementById('signin').hidden")
    browser.type_into("#token", stack.tokens["jimin"])
    browser.click("#login")
    orders = "document.querySelector('.calendar[data-model=fct_orders]')"
    cells = browser.wait_for(
        f"{orders} && [...{orders}.querySelectorAll('.cell')].map(c => c.dataset.partition)"
    )
    assert len(cells) == 91 and (cells[0], cells[-1]) == ("2024-01-01", "2024-03-31")
    weeks = browser.evaluate(
        "document.querySelectorAll('.calendar[data-model=agg_weekly_revenue] .cell').length"
    )
    assert weeks == 13

    # A roll-up over days never built: the preview names them and what to backfill first.
    browser.evaluate("document.getElementById('bf-model').value = 'agg_daily_revenue'")
    browser.type_into("#bf-from", "2024-02-12")
    browser.type_into("#bf-to", "2024-02-18")
    browser.click("#preview-button")
    preview = browser.wait_for(
        "document.getElementById('preview').textContent.includes('Inputs not built') && "
        "document.getElementById('preview').textContent"
    )
    assert "fct_orders 2024-02-12..2024-02-18 missing" in preview
    assert "backfill first: fct_orders" in browser.evaluate(
        "document.getElementById('message').textContent"
    )

    # The days themselves: ready, and the week and month the repair rule re-runs after.
    browser.evaluate("document.getElementById('bf-model').value = 'fct_orders'")
    browser.click("#preview-button")
    preview = browser.wait_for(
        "document.getElementById('message').className === 'ok' && "
        "document.getElementById('preview').textContent"
    )
    assert "agg_weekly_revenue (weekly): 2024-02-12" in preview
    assert "agg_monthly_revenue (monthly): 2024-02-01" in preview
    _shot(browser, "admin-preview", tmp_path)

    before = stack.backfill_ids()
    browser.type_into("#bf-reason", "orders of 12-18 February reloaded")
    browser.click("#launch")
    launched = browser.wait_for(
        "/^(Launched|.*: )/.test(document.getElementById('message').textContent) && "
        "!document.getElementById('message').textContent.startsWith('Ready') && "
        "document.getElementById('message').textContent"
    )
    assert launched.startswith("Launched backfill"), launched
    assert len(stack.backfill_ids() - before) == 1
    # The calendar turns those days green once Dagster has them (the page refreshes by itself).
    built = (
        f"[...{orders}.querySelectorAll('.cell.materialized')]"
        ".map(c => c.dataset.partition).filter(p => p >= '2024-02-12' && p <= '2024-02-18')"
    )
    browser.wait_for(f"{built}.length === 7", timeout=240)
    _shot(browser, "admin-calendar", tmp_path)


@pytest.mark.skipif(not SHOTS, reason="docs screenshots only: FLOWER_SCREENSHOTS=<folder>")
def test_the_dagster_ui_path_backfills_january_and_the_weeks_and_month_follow(
    stack: AdminStack, browser: Browser, tmp_path: Path
):
    """The engineers' path of docs/backfills.md, clicked in the Dagster UI as documented."""
    ui = stack.dagster_url
    browser.open(f"{ui}/assets/fct_orders?view=partitions")
    browser.wait_for(_button("Materialize…") + " !== undefined", timeout=60)
    time.sleep(3)
    browser.evaluate(_button("Skip") + "?.click()")  # Dagster's newsletter prompt, if shown
    time.sleep(1)
    browser.evaluate(_button("Materialize…") + ".click()")
    browser.wait_for(_button("Show all partitions", "[role=dialog]") + " !== undefined")
    browser.evaluate(_button("Show all partitions", "[role=dialog]") + ".click()")
    browser.type_into("[role=dialog] input[type=text]", "[2024-01-01...2024-01-31]")
    browser.evaluate("document.querySelector('[role=dialog] input[type=text]').blur()")
    browser.wait_for("document.querySelector('[role=dialog]').innerText.includes('31 partitions')")
    _shot(browser, "ui-launch-backfill", tmp_path)
    before = stack.backfill_ids()
    browser.evaluate(_button("Launch backfill", "[role=dialog]") + ".click()")
    new = stack.wait_for("the UI's backfill", lambda: stack.backfill_ids() - before, timeout=30)
    (backfill_id,) = new
    stack.wait_for(
        "the UI's backfill to succeed",
        lambda: (
            stack.instance.get_backfill(backfill_id).status == BulkActionStatus.COMPLETED_SUCCESS
        ),
        timeout=240,
    )
    browser.open(f"{ui}/runs/b/{backfill_id}")
    browser.wait_for("document.body.innerText.includes('100% completed')", timeout=60)
    time.sleep(2)
    _shot(browser, "ui-backfill-done", tmp_path)

    from dagster import AssetKey

    weeks = {"2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22"}
    stack.wait_for(
        "the repair rule to build January's complete weeks and the month",
        lambda: (
            weeks <= stack.instance.get_materialized_partitions(AssetKey("agg_weekly_revenue"))
            and "2024-01-01"
            in stack.instance.get_materialized_partitions(AssetKey("agg_monthly_revenue"))
        ),
        timeout=300,
    )
    # The week 2024-01-29 reads February's first days: it waits for them.
    assert "2024-01-29" not in stack.instance.get_materialized_partitions(
        AssetKey("agg_weekly_revenue")
    )
    browser.open(f"{ui}/assets/agg_weekly_revenue?view=partitions")
    browser.wait_for("document.body.innerText.includes('Materialized (4)')", timeout=60)
    time.sleep(2)
    _shot(browser, "ui-weekly-follows", tmp_path)
    browser.open(f"{ui}/assets/agg_monthly_revenue?view=partitions")
    browser.wait_for("document.body.innerText.includes('Materialized (1)')", timeout=60)
    time.sleep(2)
    _shot(browser, "ui-monthly-follows", tmp_path)


def _button(text: str, scope: str = "") -> str:
    root = f"document.querySelector('{scope}')" if scope else "document"
    return (
        f"[...({root}?.querySelectorAll('button, a') ?? [])]"
        f".find(x => x.textContent.trim() === {json.dumps(text)})"
    )
