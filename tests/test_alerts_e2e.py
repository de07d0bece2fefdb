"""Alerts end to end: real failing dbt runs on a real Dagster instance, the real alert sensor, the
real slack_sdk client (through dagster-slack) against a local Slack Web API server.

The module builds its own copy of the demo project (one model's SQL is broken and put back),
its own DuckDB file and Dagster instance, and runs, in this order:

- `test`:   fct_orders 2024-02-20 with a duplicated order: its blocking unique test fails;
- `sql`:    fct_sessions 2024-02-21 with a column that does not exist in its SQL;
- `inputs`: agg_weekly_revenue 2024-01-08 while none of its seven days are built;
- `lock`:   fct_orders 2024-02-22 while another process holds the DuckDB file's lock;
- `repair`: fct_orders 2024-02-20 .. 2024-02-22, data fixed: succeeds, resolving `test` and `lock`.

Each test evaluates a sensor of its own name (its own delivery records) against a server of its
own, from the cursor taken before the failures.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import pytest
from dagster import (
    AssetSelection,
    DagsterEventType,
    DefaultSensorStatus,
    Definitions,
    EnvVar,
    build_sensor_context,
)

from flower_dagster.alerts.classify import Cause, classify, headline
from flower_dagster.alerts.delivery import FlowerSlackResource
from flower_dagster.alerts.facts import run_facts
from flower_dagster.alerts.report import incidents, render_report
from flower_dagster.alerts.sensors import Cursor, alert_sensor
from flower_dagster.cli import main
from flower_dagster.dagster_tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)
from flower_dagster.dbt.project import FlowerDbtProject
from flower_dagster.defs.alerts import alert_config, alert_definitions
from flower_dagster.defs.dbt import dbt_definitions
from flower_dagster.demo.data import corrupt_day, load_demo_data, repair_day
from flower_dagster.settings import REPO_ROOT, WEEKDAYS, Settings, WorkingHours, load_settings
from tests.conftest import Warehouse, copy_demo_project, make_instance
from tests.slack_server import Received, SlackServer, channel_id

pytestmark = pytest.mark.slow

TOKEN = "xoxb-flower-test-7f3a9c-never-logged"
SEOUL = ZoneInfo("Asia/Seoul")
UI = "http://127.0.0.1:3000"
# people.yaml of the repository: commerce = jiyoon, minho; growth = seoyeon.
JIYOON, MINHO, SEOYEON = "U07JIYOON1", "U07MINHO01", "U07SEOYEON"
HANA, DANIEL = "U07HANA001", "U07DANIEL1"
BROKEN_SQL = (
    "count(events.event_id) as event_count",
    "count(events.event_identifier) as event_count",
)


@dataclass
class Story:
    warehouse: Warehouse
    settings: Settings
    defs: Definitions
    start: str  # the sensor cursor taken before the failures
    runs: dict[str, str] = field(default_factory=dict)
    ended: dict[str, float] = field(default_factory=dict)  # run label -> when its run ended


def _settings_file(root: Path, project_dir: Path, slack_url: str) -> Path:
    """flower.yaml for this module: alerts on in dev; on call now: hana and daniel."""
    now = datetime.now(SEOUL)
    handoff = (now.hour + 12) % 24  # no hand-off during the test
    first_day = (now - timedelta(hours=handoff)).date()
    (root / "people.yaml").write_text((REPO_ROOT / "people.yaml").read_text())
    (root / "oncall.yaml").write_text(
        f"rotation: daily\nper_shift: 2\nhandoff_hour: {handoff}\nstart: {first_day}\n"
        "roster: [hana, daniel, jiyoon]\n"
    )
    path = root / "flower.yaml"
    path.write_text(
        f"dbt: {{project_dir: {project_dir}}}\n"
        "alerts:\n"
        "  platform_channel: '#data-platform'\n"
        f"  slack_api_url: {slack_url}\n"
        f"  ui_base_url: {UI}\n"
        "environments:\n"
        "  dev: {target: duckdb, alerts: true}\n"
        "  prod: {target: prod, alerts: false}\n"
    )
    return path


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    root = tmp_path_factory.mktemp("alerts")
    project_dir = copy_demo_project(root / "dbt_project")
    duckdb_path = root / "warehouse.duckdb"
    with pytest.MonkeyPatch.context() as patch:
        settings_file = _settings_file(root, project_dir, "http://127.0.0.1:9/api/")
        patch.setenv("FLOWER_SETTINGS_FILE", str(settings_file))
        patch.setenv("FLOWER_DUCKDB_PATH", str(duckdb_path))
        patch.setenv("FLOWER_ENV", "dev")
        patch.setenv("SLACK_BOT_TOKEN", TOKEN)
        for name in ("FLOWER_DBT_PROJECT_DIR", "FLOWER_DBT_TARGET", "FLOWER_WINDOW_START"):
            patch.delenv(name, raising=False)
        patch.delenv("FLOWER_WINDOW_END", raising=False)
        settings = load_settings()
        FlowerDbtProject.from_settings(settings).parse()
        load_demo_data(duckdb_path)
        instance = make_instance(root / "dagster_home")
        dbt_defs = dbt_definitions(settings)
        warehouse = Warehouse(
            root, project_dir, duckdb_path, root / "dagster_home", settings, dbt_defs, instance
        )
        assert warehouse.materialize(AssetSelection.tag("flower/grain", "unpartitioned")).success
        start = Cursor(instance.event_log_storage.get_maximum_record_id()).dump()
        story = Story(
            warehouse,
            settings,
            Definitions.merge(dbt_defs, alert_definitions(settings)),
            start,
        )

        def run(label: str, names: list[str], first: str, last: str | None = None) -> bool:
            result = warehouse.materialize(
                names,
                tags={
                    ASSET_PARTITION_RANGE_START_TAG: first,
                    ASSET_PARTITION_RANGE_END_TAG: last or first,
                },
            )
            story.runs[label] = result.run_id
            story.ended[label] = time.time()
            return result.success

        corrupt_day(duckdb_path, date(2024, 2, 20))
        assert not run("test", ["fct_orders"], "2024-02-20")
        repair_day(duckdb_path, date(2024, 2, 20))
        model = project_dir / "models" / "marts" / "fct_sessions.sql"
        original = model.read_text()
        assert BROKEN_SQL[0] in original
        model.write_text(original.replace(*BROKEN_SQL))
        try:
            assert not run("sql", ["fct_sessions"], "2024-02-21")
        finally:
            model.write_text(original)
        assert not run("inputs", ["agg_weekly_revenue"], "2024-01-08")
        with duckdb.connect(str(duckdb_path)):
            assert not run("lock", ["fct_orders"], "2024-02-22")
        # The step's error says what dbt said, though dbt wrote no run_results.json.
        (failure,) = warehouse.instance.all_logs(
            story.runs["lock"], of_type=DagsterEventType.STEP_FAILURE
        )
        error = str(failure.dagster_event.step_failure_data.error)
        assert "dbt stopped:" in error and "Could not set lock" in error
        assert run("repair", ["fct_orders"], "2024-02-20", "2024-02-22")
        yield story
        instance.dispose()


@pytest.fixture
def slack() -> Iterator[SlackServer]:
    server = SlackServer().start()
    yield server
    server.stop()


def _tick(story: Story, name: str, server: SlackServer, cursor: str | None):
    """One evaluation of an alert sensor named `name`, built as the definitions build it."""
    sensor_def = alert_sensor(alert_config(story.settings), running=True, name=name)
    context = build_sensor_context(
        instance=story.warehouse.instance,
        cursor=cursor,
        definitions=story.defs,
        resources={
            "slack": FlowerSlackResource(token=EnvVar("SLACK_BOT_TOKEN"), base_url=server.url)
        },
    )
    return sensor_def(context)


def _text(body: dict) -> str:
    """A posted message as one text: its fallback text and every block's text."""
    parts = [body.get("text", "")]
    for block in body.get("blocks") or []:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts.extend(e.get("text", "") for e in block.get("elements", []))
    return "\n".join(parts)


def _alerts(server: SlackServer) -> dict[str, dict]:
    """Top-level messages accepted by the server, by the run id they link to."""
    found: dict[str, dict] = {}
    for body in server.posts():
        if body.get("thread_ts"):
            continue
        run_ids = _run_ids(body)
        assert len(run_ids) == 1, f"one run per message: {run_ids}"
        assert run_ids[0] not in found, f"run {run_ids[0]} alerted twice"
        found[run_ids[0]] = body
    return found


def _run_ids(body: dict) -> list[str]:
    return sorted(set(re.findall(rf"{re.escape(UI)}/runs/([0-9a-f-]{{36}})", _text(body))))


def _replies(server: SlackServer) -> list[dict]:
    return [body for body in server.posts() if body.get("thread_ts")]


# --- the definitions ---------------------------------------------------------------------------


def test_the_definitions_run_the_alert_sensor_with_dagster_slack_where_alerts_are_on(story):
    sensor_def = story.defs.get_sensor_def("flower_alerts")
    assert sensor_def.default_status == DefaultSensorStatus.RUNNING
    resource = story.defs.resources["slack"]
    assert isinstance(resource, FlowerSlackResource)
    assert resource.base_url == "http://127.0.0.1:9/api/"
    # The token is the variable, not its value: Dagster shows the name only.
    assert resource.token == EnvVar("SLACK_BOT_TOKEN")
    # Where the environment does not want alerts (dev by default), the sensor starts stopped.
    environment = story.settings.environment.model_copy(update={"alerts": False})
    quiet = story.settings.model_copy(update={"environment": environment})
    stopped = alert_definitions(quiet).get_sensor_def("flower_alerts")
    assert stopped.default_status == DefaultSensorStatus.STOPPED


# --- classification on the real failures -------------------------------------------------------


def test_each_real_failure_is_classified_from_the_run_it_left_behind(story):
    instance, target = story.warehouse.instance, story.warehouse.project_dir / "target"
    config = alert_config(story.settings)

    def findings(label: str):
        facts = run_facts(instance, story.runs[label], target, config.model_files)
        return facts, classify(facts)

    facts, found = findings("test")
    assert headline(found) is Cause.DATA_TEST
    assert facts.failed == (("fct_orders", "2024-02-20"),)
    assert (found[0].test, found[0].failing_rows) == ("unique_fct_orders_order_id", 1)

    facts, found = findings("sql")
    assert headline(found) is Cause.SQL_ERROR
    assert facts.failed == (("fct_sessions", "2024-02-21"),)
    assert found[0].model == "fct_sessions"
    assert found[0].file == "models/marts/fct_sessions.sql"
    assert "event_identifier" in found[0].detail and "Error" in found[0].detail

    facts, found = findings("inputs")
    assert headline(found) is Cause.INPUTS_INCOMPLETE
    assert facts.failed == (("agg_weekly_revenue", "2024-01-08"),)
    assert found[0].upstream == tuple(f"fct_orders 2024-01-{d:02d} (missing)" for d in range(8, 15))

    facts, found = findings("lock")
    assert headline(found) is Cause.PLATFORM
    assert "locked" in found[0].detail and "Could not set lock" in found[0].detail

    facts, found = findings("repair")
    assert facts.succeeded and found == []
    assert {p for _, p in facts.materialized} == {"2024-02-20", "2024-02-21", "2024-02-22"}


# --- one message per failed run, in an analyst's words ------------------------------------------


@pytest.fixture(scope="module")
def delivered(story) -> Iterator[tuple[SlackServer, list[Received], object]]:
    """One tick of the sensor over the story, against a server that accepts everything."""
    server = SlackServer().start()
    result = _tick(story, "flower_alerts_main", server, story.start)
    received = list(server.received)
    example = os.environ.get("FLOWER_ALERTS_EXAMPLE")
    if example:  # the rendered example of docs/alerts.md is written from here
        Path(example).write_text(json.dumps([r.body for r in received], indent=2))
    again = _tick(story, "flower_alerts_main", server, result.cursor)
    yield server, received, (result, again)
    server.stop()


def test_one_message_per_failed_run_and_nothing_twice(story, delivered):
    server, received, (result, again) = delivered
    alerts = _alerts(server)
    failed = {story.runs[label] for label in ("test", "sql", "inputs", "lock")}
    assert set(alerts) == failed
    assert len(_replies(server)) == 2
    # The next tick finds nothing new and sends nothing.
    assert len(server.received) == len(received) == 6
    assert Cursor.parse(again.cursor).after == Cursor.parse(result.cursor).after
    assert Cursor.parse(result.cursor).after > Cursor.parse(story.start).after
    # Read again from the start (a cursor reset, or a crash before Dagster saved the cursor):
    # what was delivered is known from the instance, nothing is sent twice.
    replay = _tick(story, "flower_alerts_main", server, story.start)
    assert len(server.received) == 6
    assert replay.cursor == result.cursor


def test_a_data_test_alert_names_the_test_rows_owners_oncall_and_the_repair(story, delivered):
    server, *_ = delivered
    run_id = story.runs["test"]
    body = _alerts(server)[run_id]
    text = _text(body)
    assert body["channel"] == "#commerce-data"  # fct_orders: meta.owner commerce
    assert "`fct_orders` 2024-02-20 failed" in text
    assert "data test failed" in text
    assert "`unique_fct_orders_order_id` on `fct_orders` (1 failing row)" in text
    assert f"<@{JIYOON}> <@{MINHO}> (commerce)" in text  # the owners, mentioned
    assert f"<@{HANA}> <@{DANIEL}> (hana, daniel" in text  # on call now, mentioned
    assert f"<{UI}/runs/{run_id}|" in text
    assert story.warehouse.instance.get_run_by_id(run_id) is not None  # the link's run exists
    assert "`flower impact fct_orders 2024-02-20`" in text
    assert "`dbt test --select unique_fct_orders_order_id`" in text
    # Engineer details last, in a context block: the run id and the error excerpt.
    context = body["blocks"][-1]
    assert context["type"] == "context"
    assert run_id in context["elements"][0]["text"]
    assert "test unique_fct_orders_order_id failed" in context["elements"][0]["text"]


def test_a_sql_error_alert_gives_dbts_line_and_the_models_file(story, delivered):
    server, *_ = delivered
    text = _text(_alerts(server)[story.runs["sql"]])
    assert _alerts(server)[story.runs["sql"]]["channel"] == "#growth-data"
    assert "*`fct_sessions` 2024-02-21 failed* — SQL error in the model" in text
    assert "its SQL in `models/marts/fct_sessions.sql` fails:" in text
    assert (
        'Binder Error: Values list "events" does not have a column named "event_identifier"' in text
    )
    assert f"<@{SEOYEON}> (growth)" in text
    assert "Fix the SQL in `models/marts/fct_sessions.sql`" in text
    assert "`flower impact fct_sessions 2024-02-21`" in text


def test_an_inputs_alert_lists_the_missing_upstream_partitions_and_where_to_start(story, delivered):
    server, *_ = delivered
    text = _text(_alerts(server)[story.runs["inputs"]])
    assert "*`agg_weekly_revenue` 2024-01-08 failed* — inputs incomplete" in text
    assert "• fct_orders 2024-01-08 (missing)" in text
    assert "• fct_orders 2024-01-14 (missing)" in text
    assert "`flower impact fct_orders 2024-01-08 2024-01-09" in text
    assert "the repair rule builds it by itself" in text


def test_a_platform_problem_goes_to_the_platform_channel(story, delivered):
    server, *_ = delivered
    body = _alerts(server)[story.runs["lock"]]
    text = _text(body)
    assert body["channel"] == "#data-platform"
    assert "platform problem" in text
    assert "Could not set lock on file" in text
    assert f"<@{JIYOON}> <@{MINHO}> (commerce)" in text  # the owners are still told
    assert "Re-execute the run" in text


def test_a_resolved_partition_gets_a_reply_in_its_alerts_thread(story, delivered):
    server, *_ = delivered
    alerts = _alerts(server)
    replies = {r["thread_ts"]: r for r in _replies(server)}
    repair = story.runs["repair"]
    # Each alert's ts, from the server's answers.
    ts = {
        _run_ids(r.body)[0]: r.answer["ts"]
        for r in server.received
        if r.method == "chat.postMessage" and r.ok and not r.body.get("thread_ts")
    }
    for label in ("test", "lock"):
        reply = replies[ts[story.runs[label]]]
        assert reply["channel"] == channel_id(alerts[story.runs[label]]["channel"])
        text = _text(reply)
        assert "Resolved" in text and f"<{UI}/runs/{repair}|{repair[:8]}>" in text
    assert "`fct_orders` 2024-02-20 built by run" in _text(replies[ts[story.runs["test"]]])
    assert "`fct_orders` 2024-02-22 built by run" in _text(replies[ts[story.runs["lock"]]])
    # The SQL error and the inputs are not resolved: no reply in their threads.
    assert set(replies) == {ts[story.runs["test"]], ts[story.runs["lock"]]}


# --- never lost, never doubled -----------------------------------------------------------------


def test_a_new_sensor_starts_at_the_end_of_the_log_not_with_history(story, slack):
    fresh = _tick(story, "flower_alerts_fresh", slack, None)
    assert slack.received == []
    latest = story.warehouse.instance.event_log_storage.get_maximum_record_id()
    assert Cursor.parse(fresh.cursor) == Cursor(latest, None)
    assert _tick(story, "flower_alerts_fresh", slack, fresh.cursor).cursor == fresh.cursor
    assert slack.received == []


def test_slack_down_for_a_tick_then_up_delivers_everything_exactly_once(story, slack):
    slack.stop()
    down = _tick(story, "flower_alerts_down", slack, story.start)
    assert "unreachable" in down.skip_reason.skip_message
    assert Cursor.parse(down.cursor).after == Cursor.parse(story.start).after
    slack.start()  # the same port
    assert slack.received == []
    up = _tick(story, "flower_alerts_down", slack, down.cursor)
    assert len(_alerts(slack)) == 4 and len(_replies(slack)) == 2
    again = _tick(story, "flower_alerts_down", slack, up.cursor)
    assert len(slack.received) == 6
    assert again.cursor == up.cursor


def test_a_429_waits_for_retry_after_and_delivers_later_exactly_once(story, slack):
    slack.fail_next(429, retry_after=1, after=1)  # the second message is rate limited
    first = _tick(story, "flower_alerts_429", slack, story.start)
    cursor = Cursor.parse(first.cursor)
    assert len(slack.posts()) == 1  # the first alert went out
    assert cursor.not_before is not None and cursor.not_before > time.time()
    # The cursor moved past the delivered run only.
    assert Cursor.parse(story.start).after < cursor.after
    waiting = _tick(story, "flower_alerts_429", slack, first.cursor)
    assert "wait" in waiting.skip_reason.skip_message
    assert len(slack.received) == 2  # no call while Slack asked to wait
    time.sleep(max(0.0, cursor.not_before - time.time()) + 0.1)
    later = _tick(story, "flower_alerts_429", slack, waiting.cursor)
    assert len(_alerts(slack)) == 4 and len(_replies(slack)) == 2
    assert len(slack.posts()) == 6  # 6 delivered, none twice (_alerts checks duplicates)
    assert _tick(story, "flower_alerts_429", slack, later.cursor).cursor == later.cursor
    assert len(slack.received) == 7  # 6 accepted + the one 429


def test_a_500_on_a_reply_retries_the_reply_not_the_alerts(story, slack):
    slack.fail_next(500, after=4)  # the four alerts pass, the first reply gets a 500
    first = _tick(story, "flower_alerts_500", slack, story.start)
    assert len(_alerts(slack)) == 4 and len(_replies(slack)) == 0
    assert "server error (500" in first.skip_reason.skip_message
    _tick(story, "flower_alerts_500", slack, first.cursor)
    assert len(_alerts(slack)) == 4 and len(_replies(slack)) == 2
    assert len(slack.posts()) == 6


def test_a_refused_alert_goes_in_its_safe_form_and_every_other_message_goes_out(story, slack):
    sql = story.runs["sql"]
    slack.refuse("invalid_blocks", lambda body: sql in json.dumps(body) and "blocks" in body)
    first = _tick(story, "flower_alerts_refused", slack, story.start)
    again = _tick(story, "flower_alerts_refused", slack, first.cursor)
    alerts = _alerts(slack)  # one message per run, none twice
    assert set(alerts) == {story.runs[label] for label in ("test", "sql", "inputs", "lock")}
    assert alerts[sql]["channel"] == "#data-platform" and "blocks" not in alerts[sql]
    assert "could not be posted in full (invalid_blocks)" in alerts[sql]["text"]
    assert len(_replies(slack)) == 2 and len(slack.posts()) == 6
    assert again.cursor == first.cursor
    assert Cursor.parse(first.cursor).after > Cursor.parse(story.start).after


def test_a_reply_whose_answer_is_lost_is_found_in_its_thread_not_sent_twice(story, slack):
    slack.lose_next("drop", after=4)  # the four alerts pass; the first reply's answer is lost
    first = _tick(story, "flower_alerts_lost", slack, story.start)
    assert "unreachable" in first.skip_reason.skip_message
    _tick(story, "flower_alerts_lost", slack, first.cursor)
    assert len(_alerts(slack)) == 4 and len(_replies(slack)) == 2
    assert len({r["thread_ts"] for r in _replies(slack)}) == 2
    assert [r.method for r in slack.received].count("conversations.replies") == 1


def test_an_unknown_channel_falls_back_to_the_platform_channel(story, slack):
    slack.known_channels = {"#data-platform", "#commerce-data"}  # no #growth-data
    _tick(story, "flower_alerts_fallback", slack, story.start)
    alerts = _alerts(slack)
    assert alerts[story.runs["sql"]]["channel"] == "#data-platform"
    assert alerts[story.runs["test"]]["channel"] == "#commerce-data"


def test_the_token_is_used_but_never_logged_stored_or_sent_in_a_message(story, slack, caplog):
    caplog.set_level(logging.DEBUG)
    slack.fail_next(500, after=2)
    first = _tick(story, "flower_alerts_token", slack, story.start)
    last = _tick(story, "flower_alerts_token", slack, first.cursor)
    assert len(slack.posts()) == 6
    # Used: every call carried it as the bearer token...
    assert {r.headers.get("Authorization") for r in slack.received} == {f"Bearer {TOKEN}"}
    # ...and nowhere else.
    assert TOKEN not in caplog.text
    assert caplog.text  # the logs were captured (slack_sdk logs each request at DEBUG)
    assert TOKEN not in first.cursor and TOKEN not in last.cursor
    assert all(TOKEN not in r.raw for r in slack.received)
    storage = story.warehouse.instance.run_storage
    keys = {f"flower_alerts/flower_alerts_token/{k}" for k in ("open",)} | {
        f"flower_alerts/flower_alerts_token/sent/{run}" for run in story.runs.values()
    }
    values = storage.get_cursor_values(keys)
    assert len(values) == 5  # open + the four alerts
    assert all(TOKEN not in value for value in values.values())


# --- the after-hours report --------------------------------------------------------------------


def test_the_report_reads_incidents_with_oncall_hours_and_resolution(story):
    """Working hours end between the `sql` and the `inputs` failures (real timestamps)."""
    config = alert_config(story.settings)
    ends = {label: datetime.fromtimestamp(t, SEOUL) for label, t in story.ended.items()}
    boundary = ends["sql"] + (ends["inputs"] - ends["sql"]) / 2
    alerts = config.alerts
    every_day = WorkingHours(days=list(WEEKDAYS), start=clock(0), end=boundary.time())
    hours = alerts.model_copy(update={"working_hours": every_day})
    day = ends["test"].date()
    start = datetime.combine(day - timedelta(days=1), clock(), tzinfo=SEOUL)
    rows = incidents(
        story.warehouse.instance,
        start,
        start + timedelta(days=3),
        hours,
        config.rotation,
        SEOUL,
        story.warehouse.project_dir / "target",
    )
    by_model = {(r.model, r.partitions): r for r in rows}
    assert set(by_model) == {
        ("fct_orders", ("2024-02-20",)),
        ("fct_sessions", ("2024-02-21",)),
        ("agg_weekly_revenue", ("2024-01-08",)),
        ("fct_orders", ("2024-02-22",)),
    }
    test, sql = (
        by_model[("fct_orders", ("2024-02-20",))],
        by_model[("fct_sessions", ("2024-02-21",))],
    )
    inputs = by_model[("agg_weekly_revenue", ("2024-01-08",))]
    lock = by_model[("fct_orders", ("2024-02-22",))]
    assert (test.outside_hours, sql.outside_hours) == (False, False)
    assert (inputs.outside_hours, lock.outside_hours) == (True, True)
    assert (test.cause, sql.cause, inputs.cause, lock.cause) == (
        "data test failed",
        "SQL error in the model",
        "inputs incomplete",
        "platform problem",
    )
    assert all(r.oncall == ("hana", "daniel") for r in rows)
    repair = story.runs["repair"]
    assert test.resolved_by == repair and lock.resolved_by == repair
    assert sql.resolved is None and inputs.resolved is None
    assert test.took is not None and timedelta(0) < test.took < timedelta(minutes=5)
    assert test.first_failure <= ends["test"]
    text = render_report(rows, day, day, hours, "Asia/Seoul", UI)
    assert "4 incidents, 2 outside working hours." in text
    assert f"[{repair[:8]}]({UI}/runs/{repair})" in text


def test_flower_oncall_report_prints_the_markdown_for_the_instance(story, monkeypatch, capsys):
    monkeypatch.setenv("DAGSTER_HOME", str(story.warehouse.dagster_home))
    day = datetime.fromtimestamp(story.ended["test"], SEOUL).date()
    assert main(["oncall", "report", "--since", str(day), "--until", str(day)]) == 0
    out = capsys.readouterr().out
    example = os.environ.get("FLOWER_ALERTS_EXAMPLE")
    if example:  # the report example of docs/alerts.md
        Path(example).with_suffix(".md").write_text(out)
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert len(rows) == 4
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")]
        first = datetime.strptime(cells[0].split(" (")[0], "%a %Y-%m-%d %H:%M")
        # Default working hours: Monday to Friday, 09:00 to 18:00 in Seoul.
        inside = first.weekday() < 5 and 9 <= first.hour < 18
        assert cells[5] == ("no" if inside else "yes"), line
        assert cells[4] == "hana, daniel"
    assert out.startswith(f"# After-hours report {day} to {day}")
