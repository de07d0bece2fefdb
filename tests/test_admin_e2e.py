"""The backfill admin end to end: a real `dagster dev` (webserver + daemon) and `flower admin`.

An author launches a backfill of their own daily model over HTTP; it runs to success in Dagster,
tagged with their name and reason, and the repair rule rolls its days up. Everything else is
refused with 401/403/404/415/422, launches nothing, and leaves an audit line. The status endpoint
and `flower backfill status` agree with what Dagster itself records.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from dagster import AssetKey, DagsterRunStatus, RunsFilter
from dagster._core.execution.backfill import BulkActionStatus

from flower_dagster.admin.dagster_client import LAUNCHED_BY_TAG, REASON_TAG
from flower_dagster.dagster_tags import BACKFILL_ID_TAG
from flower_dagster.demo.data import corrupt_day, repair_day
from flower_dagster.partitions import Grain, partitions_for
from tests.admin_support import MAX_PARTITIONS, AdminStack, start_admin_stack
from tests.conftest import Warehouse

pytestmark = pytest.mark.slow

DAYS = ("2024-01-09", "2024-01-10", "2024-01-11")
REASON = "orders of 9-11 January reloaded by the shop team"


@pytest.fixture(scope="module")
def stack(warehouse: Warehouse, tmp_path_factory) -> Iterator[AdminStack]:
    yield from start_admin_stack(warehouse, tmp_path_factory, "admin_e2e")


def _launch(stack: AdminStack, token: str | None, **body) -> tuple[int, dict]:
    return stack.call("POST", "/api/backfills", token=token, body=body)


GOOD = {"model": "fct_orders", "from": DAYS[0], "to": DAYS[-1], "reason": REASON}


@pytest.mark.parametrize(
    ("case", "token_of", "body", "headers", "status", "field"),
    [
        ("no token", None, GOOD, {}, 401, "token"),
        ("a wrong token", "wrong", GOOD, {}, 401, "token"),
        # Not configured to trust a proxy: the header names nobody.
        ("a proxy header", None, GOOD, {"X-Forwarded-User": "jimin"}, 401, "token"),
        ("another team's model", "jimin", {**GOOD, "model": "fct_sessions"}, {}, 403, "model"),
        ("an unknown model", "jimin", {**GOOD, "model": "fct_order"}, {}, 404, "model"),
        ("before the partitions", "jimin", {**GOOD, "from": "2023-12-30"}, {}, 422, "from"),
        ("after the partitions", "jimin", {**GOOD, "to": "2099-01-01"}, {}, 422, "to"),
        (
            "above the limit",
            "jimin",
            {**GOOD, "from": "2024-01-01", "to": "2024-03-01"},
            {},
            422,
            "to",
        ),
        ("end before start", "jimin", {**GOOD, "from": DAYS[-1], "to": DAYS[0]}, {}, 422, "to"),
        ("an invalid date", "jimin", {**GOOD, "from": "2024-02-30"}, {}, 422, "from"),
        ("no reason", "jimin", {k: v for k, v in GOOD.items() if k != "reason"}, {}, 422, "reason"),
        ("a blank reason", "jimin", {**GOOD, "reason": "  "}, {}, 422, "reason"),
        (
            "not a week's Monday",
            "jimin",
            {**GOOD, "model": "agg_weekly_revenue", "from": "2024-01-10", "to": "2024-01-15"},
            {},
            422,
            "from",
        ),
    ],
)
def test_a_refused_request_launches_nothing_and_is_audited(
    stack: AdminStack, case, token_of, body, headers, status, field
):
    token = stack.tokens.get(token_of, token_of)  # "wrong" stays a wrong token
    before_ids = stack.backfill_ids()
    before_audit = len(stack.audit())

    got, answer = stack.call("POST", "/api/backfills", token=token, body=body, headers=headers)

    assert got == status, (case, answer)
    assert answer["field"] == field
    assert answer["error"] and answer.get("allowed"), answer
    assert stack.backfill_ids() == before_ids, f"{case}: Dagster got a backfill"
    lines = stack.audit()[before_audit:]
    assert len(lines) == 1
    line = lines[0]
    assert (line["path"], line["status"], line["outcome"]) == ("/api/backfills", status, "refused")
    assert line["user"] == ("jimin" if token_of == "jimin" else None)
    if token:
        assert token not in stack.audit_log.read_text()


def test_the_refusal_messages_say_what_is_allowed(stack: AdminStack):
    jimin = stack.tokens["jimin"]
    _, other = _launch(stack, jimin, **{**GOOD, "model": "fct_sessions"})
    assert other["allowed"] == (
        "one of your models: agg_daily_revenue, agg_monthly_revenue, agg_weekly_revenue, fct_orders"
    )
    _, big = _launch(stack, jimin, **{**GOOD, "from": "2024-01-01", "to": "2024-03-01"})
    assert (
        f"above the limit of {MAX_PARTITIONS}" in big["error"] and "61 partitions" in big["error"]
    )
    _, week = _launch(
        stack,
        jimin,
        model="agg_weekly_revenue",
        **{"from": "2024-01-10"},
        to="2024-01-15",
        reason="x",
    )
    assert "the partition that contains it is 2024-01-08" in week["error"]


def test_a_post_that_is_not_json_is_refused(stack: AdminStack):
    before = stack.backfill_ids()
    status, answer = stack.call(
        "POST",
        "/api/backfills",
        token=stack.tokens["jimin"],
        raw=b"model=fct_orders&from=2024-01-09&to=2024-01-11&reason=x",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert status == 415 and answer["field"] == "body"
    assert stack.backfill_ids() == before


def test_each_author_sees_only_their_models(stack: AdminStack):
    status, jimin = stack.call("GET", "/api/models", token=stack.tokens["jimin"])
    assert status == 200
    names = [m["model"] for m in jimin["models"]]
    assert names == ["agg_daily_revenue", "agg_monthly_revenue", "agg_weekly_revenue", "fct_orders"]
    orders = next(m for m in jimin["models"] if m["model"] == "fct_orders")
    assert orders["grain"] == "daily" and orders["first_partition"] == "2024-01-01"
    # Nothing is built in this instance yet: every partition is missing.
    assert [p["status"] for p in orders["recent"]] == ["missing"] * 7
    days = partitions_for(Grain.DAILY, date(2024, 1, 1), "Asia/Seoul").get_partition_keys()
    assert orders["counts"] == {
        "materialized": 0,
        "failed": 0,
        "materializing": 0,
        "total": len(days),
    }
    assert jimin["dagster_error"] is None
    _, seoyeon = stack.call("GET", "/api/models", token=stack.tokens["seoyeon"])
    assert "fct_sessions" in [m["model"] for m in seoyeon["models"]]
    assert not {m["model"] for m in seoyeon["models"]} & set(names)
    assert stack.call("GET", "/api/models")[0] == 401


def test_an_author_backfills_their_daily_model_and_its_rollup_follows(stack: AdminStack):
    jimin = stack.tokens["jimin"]
    before = stack.backfill_ids()

    status, launched = _launch(stack, jimin, **GOOD)

    assert status == 201, launched
    backfill_id = launched["id"]
    assert stack.backfill_ids() == before | {backfill_id}
    assert (launched["from"], launched["to"], launched["partitions"]) == (DAYS[0], DAYS[-1], 3)
    audit = [line for line in stack.audit() if line.get("backfill_id") == backfill_id]
    assert audit[0]["action"] == "launch" and audit[0]["user"] == "jimin"
    assert audit[0]["reason"] == REASON and audit[0]["outcome"] == "allowed"

    # The same request again while it runs: that backfill, not a second one.
    status, again = _launch(stack, jimin, **GOOD)
    assert status == 200 and again == {**launched, "already_running": True}
    assert stack.backfill_ids() == before | {backfill_id}

    # Another author can neither see nor cancel it.
    seoyeon = stack.tokens["seoyeon"]
    assert stack.call("GET", f"/api/backfills/{backfill_id}", token=seoyeon)[0] == 403
    assert (
        stack.call("POST", f"/api/backfills/{backfill_id}/cancel", token=seoyeon, body={})[0] == 403
    )
    assert backfill_id not in [
        b["id"] for b in stack.call("GET", "/api/backfills", seoyeon)[1]["backfills"]
    ]

    # Followed with the CLI, as an author does: a progress bar until it is done.
    followed = stack.flower("backfill", "status", backfill_id, "--interval", "1", token=jimin)
    assert followed.returncode == 0, followed.stdout + followed.stderr
    assert (
        followed.stdout.strip()
        .splitlines()[-1]
        .startswith(
            "[##############################] 3/3 done, 0 failed, 0 in progress  COMPLETED_SUCCESS"
        )
    )

    # What Dagster itself recorded: the backfill, one run of the three days, their tags.
    backfill = stack.instance.get_backfill(backfill_id)
    assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS
    assert backfill.tags[LAUNCHED_BY_TAG] == "jimin" and backfill.tags[REASON_TAG] == REASON
    runs = stack.instance.get_runs(RunsFilter(tags={BACKFILL_ID_TAG: backfill_id}))
    assert [run.status for run in runs] == [DagsterRunStatus.SUCCESS]
    assert runs[0].tags[LAUNCHED_BY_TAG] == "jimin" and runs[0].tags[REASON_TAG] == REASON
    assert stack.instance.get_materialized_partitions(AssetKey("fct_orders")) == set(DAYS)

    # The status endpoint and the CLI agree with Dagster.
    status, shown = stack.call("GET", f"/api/backfills/{backfill_id}", token=jimin)
    assert status == 200
    assert shown["status"] == backfill.status.value
    assert shown["partitions"] == {"targeted": 3, "done": 3, "failed": 0, "in_progress": 0}
    assert (shown["launched_by"], shown["reason"], shown["models"]) == (
        "jimin",
        REASON,
        ["fct_orders"],
    )
    once = stack.flower("backfill", "status", backfill_id, "--once", token=jimin)
    assert once.returncode == 0 and f"COMPLETED_SUCCESS  {backfill_id} fct_orders" in once.stdout
    listed = stack.flower("backfill", "status", token=jimin)
    assert backfill_id in listed.stdout and "3/0/0 of 3" in listed.stdout

    # The roll-up follows by the repair rule: agg_daily_revenue for exactly those days.
    revenue = AssetKey("agg_daily_revenue")
    stack.wait_for(
        "agg_daily_revenue to roll up the three days",
        lambda: stack.instance.get_materialized_partitions(revenue) == set(DAYS),
        timeout=150,
    )
    _, models = stack.call("GET", "/api/models", token=jimin)
    counts = {m["model"]: m["counts"]["materialized"] for m in models["models"]}
    assert counts["fct_orders"] == len(
        stack.instance.get_materialized_partitions(AssetKey("fct_orders"))
    )
    assert counts["agg_daily_revenue"] == 3
    shown_models = stack.flower("backfill", "models", token=jimin)
    assert shown_models.returncode == 0 and "fct_orders" in shown_models.stdout
    assert "fct_sessions" not in shown_models.stdout


WEEK = ("2024-02-12", "2024-02-18")  # a Monday to Sunday no other test of this module builds


def test_a_rollup_whose_days_are_missing_is_refused_before_launch_naming_them(stack: AdminStack):
    jimin = stack.tokens["jimin"]
    before_ids = stack.backfill_ids()
    before_audit = len(stack.audit())
    body = {"model": "agg_daily_revenue", "from": WEEK[0], "to": WEEK[1], "reason": "rerun"}

    status, answer = _launch(stack, jimin, **body)

    assert status == 409, answer
    assert answer["field"] == "inputs"
    assert "fct_orders 2024-02-12..2024-02-18 missing" in answer["error"]
    assert answer["allowed"].startswith("backfill first: fct_orders 2024-02-12..2024-02-18")
    assert "include_inputs" in answer["allowed"]  # fct_orders is jimin's too
    assert answer["inputs"] == [
        {
            "model": "fct_orders",
            "problem": "missing",
            "partitions": [f"2024-02-{d}" for d in range(12, 19)],
            "ranges": ["2024-02-12..2024-02-18"],
            "text": "fct_orders 2024-02-12..2024-02-18 missing",
        }
    ]
    assert stack.backfill_ids() == before_ids, "a refused backfill reached Dagster"
    line = stack.audit()[before_audit:][-1]
    assert (line["status"], line["outcome"], line["field"]) == (409, "refused", "inputs")

    # agg_daily_revenue is a leaf: the repair rule re-runs nothing after it.
    assert answer["impact"]["reruns"] == []

    # The CLI says the same in one line and launches nothing.
    cli = stack.flower(
        "backfill",
        "launch",
        "agg_daily_revenue",
        "--from",
        WEEK[0],
        "--to",
        WEEK[1],
        "--reason",
        "rerun",
        token=jimin,
    )
    assert cli.returncode == 2, cli.stdout + cli.stderr
    assert "409 inputs:" in cli.stderr and "fct_orders 2024-02-12..2024-02-18 missing" in cli.stderr
    preview = stack.flower(
        "backfill", "preview", "agg_daily_revenue", "--from", WEEK[0], "--to", WEEK[1], token=jimin
    )
    assert preview.returncode == 1 and "would be refused" in preview.stdout
    assert "input not built: fct_orders 2024-02-12..2024-02-18 missing" in preview.stdout

    # A preview of the days themselves: ready, and the days, week and month it re-runs after.
    status, days = stack.call(
        "POST",
        "/api/backfills/preview",
        token=jimin,
        body={"model": "fct_orders", "from": WEEK[0], "to": WEEK[1]},
    )
    assert status == 200 and days["ready"] and days["inputs"] == [], days
    reruns = {r["model"]: r["ranges"] for r in days["impact"]["reruns"]}
    assert reruns == {
        "agg_daily_revenue": ["2024-02-12..2024-02-18"],
        "agg_weekly_revenue": ["2024-02-12"],
        "agg_monthly_revenue": ["2024-02-01"],
    }
    shown = stack.flower(
        "backfill", "preview", "fct_orders", "--from", WEEK[0], "--to", WEEK[1], token=jimin
    )
    assert shown.returncode == 0 and "ready to launch" in shown.stdout
    assert "agg_weekly_revenue (weekly): 2024-02-12 (1 partition)" in shown.stdout
    assert stack.backfill_ids() == before_ids
    # Previews and reads are not audited; the two refused launches are.
    assert [a["status"] for a in stack.audit()[before_audit:]] == [409, 409]


def test_with_include_inputs_the_missing_days_are_built_first_in_the_same_backfill(
    stack: AdminStack,
):
    jimin = stack.tokens["jimin"]
    days = ("2024-02-20", "2024-02-21")
    status, launched = _launch(
        stack,
        jimin,
        model="agg_daily_revenue",
        **{"from": days[0]},
        to=days[1],
        reason="orders and revenue of 20-21 February",
        include_inputs=True,
    )
    assert status == 201, launched
    assert launched["included_inputs"] == {"fct_orders": [list(days)]}
    backfill_id = launched["id"]
    stack.wait_for(
        "the backfill with its inputs to finish",
        lambda: stack.instance.get_backfill(backfill_id).status != BulkActionStatus.REQUESTED,
    )
    assert stack.instance.get_backfill(backfill_id).status == BulkActionStatus.COMPLETED_SUCCESS
    for model in ("fct_orders", "agg_daily_revenue"):
        assert set(days) <= stack.instance.get_materialized_partitions(AssetKey(model))


def test_a_failing_test_is_the_reason_shown_for_its_partitions_in_the_api_and_the_cli(
    stack: AdminStack,
):
    jimin = stack.tokens["jimin"]
    duckdb_path = stack.env["FLOWER_DUCKDB_PATH"]
    corrupt_day(duckdb_path, date(2024, 3, 5))  # a duplicated order: unique_fct_orders_order_id
    try:
        status, launched = _launch(
            stack, jimin, model="fct_orders", **{"from": "2024-03-04"}, to="2024-03-05", reason="x"
        )
        assert status == 201, launched
        backfill_id = launched["id"]
        stack.wait_for(
            "the backfill to fail",
            lambda: stack.instance.get_backfill(backfill_id).status != BulkActionStatus.REQUESTED,
        )
        status, shown = stack.call("GET", f"/api/backfills/{backfill_id}", token=jimin)
        assert status == 200 and shown["status"] == "COMPLETED_FAILED", shown
        reasons = {f["partition"]: f for f in shown["failures"]}
        assert set(reasons) == {"2024-03-04", "2024-03-05"}  # one run, one dbt build: both
        failure = reasons["2024-03-05"]
        assert (failure["model"], failure["cause"], failure["test"], failure["failing_rows"]) == (
            "fct_orders",
            "data test failed",
            "unique_fct_orders_order_id",
            1,
        )
        assert failure["reason"] == "data test failed: unique_fct_orders_order_id (1 failing row)"
        assert shown["partitions"]["failed"] == 2 and shown["partitions"]["in_progress"] == 0

        once = stack.flower("backfill", "status", backfill_id, "--once", token=jimin)
        assert once.returncode == 1, once.stdout + once.stderr
        assert (
            "failed fct_orders 2024-03-04, 2024-03-05: data test failed: "
            "unique_fct_orders_order_id (1 failing row)"
        ) in once.stdout
        listed = stack.flower("backfill", "status", token=jimin)
        assert f"{backfill_id}: failed fct_orders 2024-03-04, 2024-03-05: data test" in (
            listed.stdout
        )
    finally:
        repair_day(duckdb_path, date(2024, 3, 5))


def test_an_author_cancels_their_backfill(stack: AdminStack):
    jimin = stack.tokens["jimin"]
    status, launched = _launch(
        stack,
        jimin,
        model="fct_orders",
        **{"from": "2024-02-01"},
        to="2024-02-03",
        reason="cancel test",
    )
    assert status == 201
    backfill_id = launched["id"]

    cancelled = stack.flower("backfill", "cancel", backfill_id, token=jimin)

    assert cancelled.returncode == 0, cancelled.stderr
    assert f"backfill {backfill_id}: CANCELING" in cancelled.stdout
    stack.wait_for(
        "the backfill to be cancelled",
        lambda: (
            stack.instance.get_backfill(backfill_id).status
            in (BulkActionStatus.CANCELING, BulkActionStatus.CANCELED)
        ),
        timeout=30,
    )
    line = [a for a in stack.audit() if a.get("action") == "cancel"][-1]
    assert (line["user"], line["backfill_id"], line["status"]) == ("jimin", backfill_id, 200)


def test_the_cli_without_a_token_asks_for_one_and_sends_nothing(stack: AdminStack):
    before = len(stack.audit())
    result = stack.flower("backfill", "models", token=None)
    assert result.returncode == 2
    assert "FLOWER_TOKEN is not set" in result.stderr
    assert len(stack.audit()) == before
    wrong = stack.flower(
        "backfill",
        "launch",
        "fct_orders",
        "--from",
        DAYS[0],
        "--to",
        DAYS[0],
        "--reason",
        "x",
        token="not-a-token",
    )
    assert wrong.returncode == 2 and "401 token: the token is not recognised" in wrong.stderr
