"""Alerts without dbt: the alerts settings, people and routing, classification of failures that
cannot be staged for real (memory, timeouts), the message wording, delivery against the local
Slack server, and alerts off without a section or a token.

The real failures (SQL error, data test, inputs, a locked warehouse) are in test_alerts_e2e.py.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    DagsterInstance,
    Definitions,
    asset,
    asset_check,
    build_sensor_context,
    materialize,
)

from flower_dagster.alerts.classify import Cause, DbtResult, FailedCheck, RunFacts, classify
from flower_dagster.alerts.delivery import (
    FlowerSlackResource,
    NotDelivered,
    Posted,
    post,
    retry_after_seconds,
)
from flower_dagster.alerts.messages import Alert, render_alert, render_resolution
from flower_dagster.alerts.oncall import Rotation, oncall_for
from flower_dagster.alerts.people import load_directory, route
from flower_dagster.alerts.report import outside_working_hours
from flower_dagster.alerts.sensors import AlertConfig, Outbox, alert_sensor
from flower_dagster.dbt.run import failure_summary
from flower_dagster.defs.alerts import alert_definitions
from flower_dagster.errors import SettingsError
from flower_dagster.settings import (
    DEMO_DBT_PROJECT_DIR,
    REPO_ROOT,
    AlertSettings,
    WorkingHours,
    load_settings,
)
from tests import alerts_child
from tests.alerts_child import PLATFORM
from tests.conftest import make_instance
from tests.slack_server import SlackServer, channel_id

SEOUL = ZoneInfo("Asia/Seoul")
DIRECTORY = load_directory(REPO_ROOT / "people.yaml")


def _settings(tmp_path: Path, text: str):
    path = tmp_path / "flower.yaml"
    # Without dbt.project_dir the project is dbt_project/ next to the file: name the demo's.
    path.write_text(f"dbt: {{project_dir: {DEMO_DBT_PROJECT_DIR}}}\n{text}")
    return load_settings({"FLOWER_SETTINGS_FILE": str(path)})


# --- the alerts section of flower.yaml ---------------------------------------------------------


def test_the_alerts_section_has_defaults_and_resolves_files_next_to_it(tmp_path):
    settings = _settings(tmp_path, "alerts:\n  platform_channel: '#data-platform'\n")
    alerts = settings.alerts
    assert alerts == AlertSettings(
        slack_api_url="https://slack.com/api/",
        ui_base_url="http://127.0.0.1:3000",
        platform_channel="#data-platform",
        people_file=tmp_path / "people.yaml",
        oncall_file=tmp_path / "oncall.yaml",
        working_hours=WorkingHours(days=["mon", "tue", "wed", "thu", "fri"], start=9, end=18),
    )
    assert (alerts.working_days, alerts.working_start, alerts.working_end) == (
        (0, 1, 2, 3, 4),
        time(9),
        time(18),
    )
    assert _settings(tmp_path, "schedule: {hour: 7}\n").alerts is None


def test_the_repositorys_flower_yaml_has_alerts_with_real_files():
    alerts = load_settings({}).alerts
    assert alerts is not None
    assert alerts.people_file == REPO_ROOT / "people.yaml" and alerts.people_file.is_file()
    assert alerts.oncall_file.is_file()


def test_working_hours_take_whole_hours_or_hh_mm_up_to_midnight(tmp_path):
    settings = _settings(
        tmp_path,
        "alerts:\n  platform_channel: C0123ABCD\n"
        "  working_hours: {days: [sat, sun], start: '08:30', end: 24}\n",
    )
    assert settings.alerts.working_days == (5, 6)
    assert settings.alerts.working_start == time(8, 30)
    assert settings.alerts.working_end is None  # until midnight


def test_alerts_mistakes_are_one_line_each(tmp_path):
    with pytest.raises(SettingsError) as error:
        _settings(
            tmp_path,
            "alerts:\n  slack_api_url: slack.com\n  platform_chanel: x\n"
            "  working_hours: {days: [mon, funday], start: '25:00'}\n",
        )
    assert str(error.value).splitlines() == [
        "5 settings problems:",
        "  - flower.yaml: alerts.slack_api_url is 'slack.com'; allowed: an http(s) URL of the "
        "Slack Web API, e.g. https://slack.com/api/",
        "  - flower.yaml: alerts.platform_channel is missing; allowed: a Slack channel id or "
        "name, e.g. C0123ABCD or #data-platform",
        "  - flower.yaml: alerts.working_hours.days is ['mon', 'funday']; allowed: a list of "
        "weekdays out of mon, tue, wed, thu, fri, sat, sun",
        "  - flower.yaml: alerts.working_hours.start is '25:00'; allowed: a time of day as "
        "'HH:MM' (quoted) or a whole hour 0-24",
        "  - flower.yaml: unknown key 'alerts.platform_chanel' in alerts; allowed: "
        "slack_api_url, ui_base_url, platform_channel, people_file, oncall_file, working_hours",
    ]
    with pytest.raises(SettingsError) as error:
        _settings(
            tmp_path,
            "alerts:\n  platform_channel: x\n  working_hours: {start: 18, end: '09:00'}\n",
        )
    assert str(error.value) == (
        "flower.yaml: alerts.working_hours is {'start': 18, 'end': '09:00'}; allowed: an end "
        "after the start, e.g. {start: '09:00', end: '18:00'}"
    )


def test_outside_working_hours_default_is_weekdays_nine_to_six_in_seoul():
    alerts = AlertSettings(platform_channel="c", people_file=Path("p"), oncall_file=Path("o"))
    friday = date(2026, 11, 27)

    def outside(day: date, hour: int, minute: int = 0) -> bool:
        moment = datetime(day.year, day.month, day.day, hour, minute, tzinfo=SEOUL)
        return outside_working_hours(moment, alerts, SEOUL)

    assert not outside(friday, 9) and not outside(friday, 17, 59)
    assert outside(friday, 8, 59) and outside(friday, 18) and outside(friday, 23)
    assert outside(date(2026, 11, 28), 12)  # Saturday
    # The zone counts: 01:00 UTC on Friday is 10:00 in Seoul.
    utc = datetime(2026, 11, 27, 1, 0, tzinfo=ZoneInfo("UTC"))
    assert not outside_working_hours(utc, alerts, SEOUL)


# --- people and routing ------------------------------------------------------------------------


def test_a_teams_models_go_to_its_channel_mentioning_its_members():
    where = route(["team:commerce"], DIRECTORY, "#data-platform")
    assert (where.channel, where.mentions, where.owners) == (
        "#commerce-data",
        ("U07JIYOON1", "U07MINHO01"),
        ("commerce",),
    )
    assert not where.fallback


def test_an_email_owner_is_mentioned_in_their_teams_channel():
    where = route(["seoyeon.lee@flower.example"], DIRECTORY, "#data-platform")
    assert (where.channel, where.mentions) == ("#growth-data", ("U07SEOYEON",))


def test_unknown_none_or_mixed_owners_fall_back_to_the_platform_channel():
    unknown = route(["team:finance"], DIRECTORY, "#data-platform")
    assert (unknown.channel, unknown.unknown, unknown.fallback) == (
        "#data-platform",
        ("finance",),
        True,
    )
    assert route([], DIRECTORY, "#data-platform").channel == "#data-platform"
    mixed = route(["team:commerce", "team:growth"], DIRECTORY, "#data-platform")
    assert mixed.channel == "#data-platform"
    assert mixed.mentions == ("U07JIYOON1", "U07MINHO01", "U07SEOYEON")


def test_people_file_mistakes_are_one_line_each(tmp_path):
    path = tmp_path / "people.yaml"
    path.write_text(
        "people:\n  ana: {slack: ana, email: ana@x.example}\n"
        "teams:\n  ops: {channel: '#ops', members: [ana, bob], lead: ana}\n"
    )
    with pytest.raises(SettingsError) as error:
        load_directory(path)
    lines = str(error.value).splitlines()
    assert lines[0] == "2 people file problems:"
    assert lines[1].startswith("  - people.yaml: people.ana.slack is 'ana'; allowed: a Slack user")
    assert lines[2] == "  - people.yaml: unknown key 'teams.ops.lead'"
    path.write_text("people:\n  ana: {slack: U0ANA}\nteams:\n  ops: {channel: x, members: [bob]}\n")
    with pytest.raises(SettingsError, match=r"teams.ops.members has 'bob'; allowed: a name"):
        load_directory(path)


# --- classification of what cannot be staged for real ------------------------------------------


@pytest.mark.parametrize(
    ("error", "sign"),
    [
        ("dagster._core.errors.DagsterExecutionStepExecutionError\nMemoryError", "out of memory"),
        ("Out of Memory Error: could not allocate block of size 256.0 KiB", "out of memory"),
        ("Run timed out after 3600 seconds (dagster/max_runtime)", "timed out"),
        ("Run worker process for run abc exited with code -9: SIGKILL", "killed"),
        ('IO Error: Could not set lock on file "w.duckdb": Conflicting lock', "locked"),
    ],
)
def test_platform_signs_win_over_what_they_cause(error, sign):
    facts = RunFacts(
        "r1",
        succeeded=False,
        failed=(("fct_orders", "2024-01-09"),),
        # A locked or killed dbt leaves failed models behind: the platform is the cause.
        dbt_results=(DbtResult("model.p.fct_orders", "error", "Runtime Error in model"),),
        step_errors=(error,),
    )
    findings = classify(facts)
    assert [f.cause for f in findings] == [Cause.PLATFORM]
    assert sign in findings[0].detail


def test_an_unrecognised_failure_is_a_platform_problem_with_its_first_line():
    facts = RunFacts("r1", succeeded=False, step_errors=("\nKeyError: 'x'\n  more",))
    (finding,) = classify(facts)
    assert (finding.cause, finding.detail) == (Cause.PLATFORM, "KeyError: 'x'")


def test_without_run_results_the_step_errors_dbt_summary_is_read():
    """dbt's target folder may be cleaned: flower's own summary in the error still tells."""
    summary = failure_summary(
        {
            "results": [
                {
                    "unique_id": "model.p.fct_orders",
                    "status": "error",
                    "message": "Binder Error: x",
                },
                {
                    "unique_id": "test.p.unique_x.ab12",
                    "status": "fail",
                    "failures": 3,
                    "message": "Got 3 results, configured to fail if != 0",
                },
            ]
        },
        "2024-01-09",
    )
    facts = RunFacts("r1", succeeded=False, step_errors=(f"DbtRunError: {summary}",))
    findings = classify(facts)
    assert [(f.cause, f.model, f.test, f.failing_rows) for f in findings] == [
        (Cause.SQL_ERROR, "fct_orders", None, None),
        (Cause.DATA_TEST, None, "unique_x", 3),
    ]
    assert findings[0].detail == "Binder Error: x"


def test_a_failed_check_that_is_not_a_dbt_test_is_a_check_finding():
    late = FailedCheck("fct_orders", "late", ("2026-11-26",), None, "3 h late", dbt_test=False)
    (finding,) = classify(RunFacts("r2", succeeded=True, failed_checks=(late,)))
    assert (finding.cause, finding.test, finding.detail) == (Cause.CHECK, "late", "3 h late")
    dbt = FailedCheck("fct_orders", "unique_x", (), 2, None, dbt_test=True)
    (finding,) = classify(RunFacts("r3", succeeded=True, failed_checks=(dbt,)))
    assert (finding.cause, finding.failing_rows) == (Cause.DATA_TEST, 2)


# --- messages ----------------------------------------------------------------------------------


def _alert(**changes) -> Alert:
    rotation = Rotation(("daniel", "hana"), start=date(2026, 11, 2))
    at = datetime(2026, 11, 27, 3, 10, tzinfo=SEOUL)
    values = dict(
        run_id="0123456789abcdef-run",
        run_url="http://ui/runs/0123456789abcdef-run",
        failed=tuple(("fct_orders", f"2024-01-{d:02d}") for d in range(1, 32)),
        findings=tuple(classify(RunFacts("x", False, step_errors=("Run timed out",)))),
        route=route(["team:commerce"], DIRECTORY, "#data-platform"),
        oncall=oncall_for(at, rotation),
        oncall_ids=("U07HANA001",),
        at=at,
        excerpt="x" * 1000,
    )
    values.update(changes)
    return Alert(**values)


def test_a_backfill_range_is_one_line_and_the_excerpt_is_short():
    message = render_alert(_alert())
    blocks = [b["text"]["text"] for b in message["blocks"] if b["type"] == "section"]
    assert blocks[0] == (
        ":rotating_light: *`fct_orders` 2024-01-01 … 2024-01-31 (31 partitions) failed* — "
        "platform problem"
    )
    assert "Owner: <@U07JIYOON1> <@U07MINHO01> (commerce)" in blocks[3]
    assert "On call: <@U07HANA001> (hana, until Mon 10:00 KST)" in blocks[3]
    context = message["blocks"][-1]["elements"][0]["text"]
    assert len(context) < 420 and context.endswith("…`")


def test_a_check_alert_of_a_successful_run_says_the_run_succeeded():
    late = FailedCheck("fct_orders", "late", (), None, "3 h late", dbt_test=False)
    facts = RunFacts("r2", True, failed_checks=(late,))
    message = render_alert(_alert(failed=(), findings=tuple(classify(facts)), run_succeeded=True))
    text = "\n".join(b["text"]["text"] for b in message["blocks"] if b["type"] == "section")
    assert "checks failed on `fct_orders`" in text
    assert "The run itself succeeded; these checks did not pass:\n• `late` on `fct_orders`" in text


def test_a_partial_resolution_says_what_still_fails():
    reply = render_resolution(
        [("fct_orders", "2024-01-09")],
        "abcdef1234567890",
        "http://ui/runs/abcdef1234567890",
        datetime(2026, 11, 27, 7, 5, tzinfo=SEOUL),
        [("agg_daily_revenue", "2024-01-09")],
    )
    assert reply["text"] == (
        ":white_check_mark: Resolved: `fct_orders` 2024-01-09 built by run "
        "<http://ui/runs/abcdef1234567890|abcdef12> at 2026-11-27 07:05 KST.\n"
        "Still failing: `agg_daily_revenue` 2024-01-09."
    )


# --- delivery against the local Slack server ---------------------------------------------------


@pytest.fixture
def slack():
    server = SlackServer().start()
    yield server
    server.stop()


def _client(server: SlackServer):
    return FlowerSlackResource(token="xoxb-unit", base_url=server.url).get_client()


MESSAGE = {
    "text": "hello",
    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}],
}


def test_a_post_returns_the_channel_id_and_ts_for_thread_replies(slack):
    posted = post(_client(slack), "#commerce-data", MESSAGE)
    assert posted == Posted(channel_id("#commerce-data"), slack.received[0].answer["ts"])
    reply = post(_client(slack), posted.channel, MESSAGE, thread_ts=posted.ts)
    assert isinstance(reply, Posted)
    assert slack.received[1].body["thread_ts"] == posted.ts
    assert slack.received[0].body["blocks"] == MESSAGE["blocks"]


def test_a_429_is_not_delivered_with_its_retry_after_and_no_retry_inside_the_call(slack):
    slack.fail_next(429, retry_after=7)
    result = post(_client(slack), "#x", MESSAGE)
    assert result == NotDelivered("Slack rate limit (429, retry after 7 s)", 7.0)
    assert len(slack.received) == 1  # the sensor retries on a later tick, not here


def test_retry_after_is_whole_seconds_and_a_decimal_is_rounded_up(slack):
    assert [retry_after_seconds(v) for v in ("7", "1.5", "0.2", ["3"], "soon", None, "-1")] == [
        7.0,
        2.0,
        1.0,
        3.0,
        30.0,
        30.0,
        30.0,
    ]
    slack.fail_next(429, retry_after="1.5")
    result = post(_client(slack), "#x", MESSAGE)
    assert result == NotDelivered("Slack rate limit (429, retry after 2 s)", 2.0)


def test_a_500_and_a_server_that_is_down_are_not_delivered(slack):
    slack.fail_next(500)
    server_error = post(_client(slack), "#x", MESSAGE)
    assert isinstance(server_error, NotDelivered) and "server error (500" in server_error.reason
    client = _client(slack)
    slack.stop()
    down = post(client, "#x", MESSAGE)
    assert isinstance(down, NotDelivered) and down.reason.startswith("Slack is unreachable")
    assert down.retry_after is None and not down.channel_problem


def test_an_unknown_channel_is_a_channel_problem(slack):
    slack.known_channels = {"#data-platform"}
    result = post(_client(slack), "#nowhere", MESSAGE)
    assert isinstance(result, NotDelivered) and result.channel_problem
    assert result.reason == "Slack refused the message (channel_not_found)"


# --- alerts off --------------------------------------------------------------------------------


def test_no_alerts_section_means_alerts_off_with_one_log_line(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-unit")
    settings = _settings(tmp_path, "schedule: {hour: 7}\n")
    with caplog.at_level(logging.INFO, logger="flower_dagster.alerts"):
        defs = alert_definitions(settings)
    assert isinstance(defs, Definitions) and not list(defs.sensors or [])
    lines = [r for r in caplog.records if r.name == "flower_dagster.alerts"]
    assert [r.getMessage() for r in lines] == [
        "alerts off: flower.yaml has no alerts section (see docs/alerts.md)"
    ]
    assert lines[0].levelno == logging.INFO  # dev: alerts are not wanted here anyway


def test_no_token_means_alerts_off_with_one_warning_where_alerts_are_wanted(
    tmp_path, caplog, monkeypatch
):
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    path = tmp_path / "flower.yaml"
    path.write_text(
        f"dbt: {{project_dir: {DEMO_DBT_PROJECT_DIR}}}\n"
        "alerts: {platform_channel: '#p'}\nenvironments: {prod: {alerts: true}}\n"
    )
    settings = load_settings({"FLOWER_SETTINGS_FILE": str(path), "FLOWER_ENV": "prod"})
    with caplog.at_level(logging.INFO, logger="flower_dagster.alerts"):
        defs = alert_definitions(settings)
    assert not list(defs.sensors or []) and not defs.resources
    lines = [r for r in caplog.records if r.name == "flower_dagster.alerts"]
    assert [(r.levelno, r.getMessage()) for r in lines] == [
        (logging.WARNING, "alerts off: SLACK_BOT_TOKEN is not set")
    ]


# --- a failed asset check of a successful run, on a real instance ------------------------------

LATE = {"passed": False}


@asset(owners=["team:growth"])
def traffic_probe() -> None:
    """Stands in for a model whose data can be late."""


@asset_check(asset=traffic_probe, name="late")
def traffic_probe_late() -> AssetCheckResult:
    passed = LATE["passed"]
    return AssetCheckResult(
        passed=passed,
        severity=AssetCheckSeverity.WARN,
        description="on time" if passed else "yesterday's partition is 3 h late",
    )


def test_a_failed_asset_check_alerts_once_and_its_pass_resolves_it(tmp_path, slack):
    """Any asset check, not only dbt tests (the late-data check of flower_dagster/late_data)."""
    instance = make_instance(tmp_path / "home")
    defs = Definitions(assets=[traffic_probe], asset_checks=[traffic_probe_late])
    alerts = AlertSettings(
        ui_base_url="http://ui",
        platform_channel="#data-platform",
        people_file=Path("p"),
        oncall_file=Path("o"),
    )
    rotation = Rotation(("daniel", "hana"), start=date(2026, 11, 2))
    config = AlertConfig(alerts, "Asia/Seoul", DIRECTORY, rotation)
    sensor_def = alert_sensor(config, running=True, name="checks")
    resources = {"slack": FlowerSlackResource(token="xoxb-unit", base_url=slack.url)}

    def tick(cursor):
        context = build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs, resources=resources
        )
        return sensor_def(context).cursor

    cursor = tick(None)  # a new sensor starts at the end of the log
    LATE["passed"] = False
    failing = materialize([traffic_probe, traffic_probe_late], instance=instance)
    assert failing.success  # a WARN check does not fail the run
    cursor = tick(cursor)
    (alert,) = slack.posts()
    text = "\n".join(b["text"]["text"] for b in alert["blocks"] if b["type"] == "section")
    assert alert["channel"] == "#growth-data"
    assert "checks failed on `traffic_probe`* — check failed" in text
    assert "`late` on `traffic_probe`: yesterday's partition is 3 h late." in text
    assert "<@U07SEOYEON> (growth)" in text
    assert f"http://ui/runs/{failing.run_id}" in text
    LATE["passed"] = True
    passing = materialize([traffic_probe, traffic_probe_late], instance=instance)
    cursor = tick(cursor)
    tick(cursor)
    alert_ts = slack.received[0].answer["ts"]
    (reply,) = [b for b in slack.posts() if b.get("thread_ts") == alert_ts]
    assert f"built by run <http://ui/runs/{passing.run_id}|" in reply["text"]
    assert len(slack.posts()) == 2
    instance.dispose()


# --- exactly once: lost answers, refused messages, crashes (a real instance, the local server) --


def test_a_refusal_retrying_cannot_fix_is_told_from_one_it_can(slack):
    slack.refuse("invalid_blocks", lambda body: body.get("text") == "bad")
    slack.refuse("invalid_auth", lambda body: body.get("text") == "token")
    refused = post(_client(slack), "#x", {"text": "bad", "blocks": []})
    assert isinstance(refused, NotDelivered) and refused.refused
    assert refused.code == "invalid_blocks"
    waits = post(_client(slack), "#x", {"text": "token"})
    assert isinstance(waits, NotDelivered) and not waits.refused and not waits.channel_problem


@dataclass
class Feed:
    """A Dagster instance on disk whose `feed` asset fails or succeeds on demand."""

    home: Path
    instance: DagsterInstance
    slack: SlackServer
    name: str = "exactly_once"
    cursor: str | None = None
    runs: list[str] = field(default_factory=list)

    def run(self, fail: bool) -> str:
        alerts_child.FEED["fail"] = fail
        result = materialize([alerts_child.feed], instance=self.instance, raise_on_error=False)
        assert result.success is not fail
        self.runs.append(result.run_id)
        return result.run_id

    def tick(self, timeout: int = 10):
        result = alerts_child.tick(self.instance, self.name, self.slack.url, self.cursor, timeout)
        self.cursor = result.cursor
        return result

    def tick_killed(self, post: int, writes: int = 0, pattern: str = ".") -> None:
        """The tick in a child process that is SIGKILLed at the chosen point (alerts_child)."""
        args = [str(self.home), self.name, self.slack.url, self.cursor or ""]
        args += [str(post), str(writes), pattern]
        child = subprocess.run(
            [sys.executable, "-m", "tests.alerts_child", *args],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert child.returncode == -signal.SIGKILL, child.stderr[-2000:]

    def alerts(self) -> dict[str, list[dict]]:
        """Top-level messages Slack accepted, by the run id they name."""
        found: dict[str, list[dict]] = {}
        for body in self.slack.posts():
            if not body.get("thread_ts"):
                (run_id,) = {r for r in self.runs if r in body["text"]}
                found.setdefault(run_id, []).append(body)
        return found

    def replies(self) -> list[dict]:
        return [body for body in self.slack.posts() if body.get("thread_ts")]


@pytest.fixture
def feed(tmp_path, slack) -> Iterator[Feed]:
    home = tmp_path / "home"
    instance = make_instance(home)
    feed = Feed(home, instance, slack)
    feed.tick()  # a new sensor starts at the end of the log
    yield feed
    instance.dispose()


@pytest.mark.parametrize("how", ["late", "drop"])
def test_an_answer_lost_after_slack_accepted_is_found_not_posted_again(feed, how):
    first, second = feed.run(fail=True), feed.run(fail=True)
    feed.slack.late_seconds = 2.5
    feed.slack.lose_next(how)  # the first alert is accepted, its answer lost
    lost = feed.tick(timeout=1)
    assert "unreachable" in lost.skip_reason.skip_message
    assert len(feed.slack.posts()) == 1
    feed.tick(timeout=1)
    alerts = feed.alerts()
    assert {run: len(bodies) for run, bodies in alerts.items()} == {first: 1, second: 1}
    # The reply of a resolution whose answer is lost is looked for in its thread.
    feed.run(fail=False)
    feed.slack.lose_next(how)
    feed.tick(timeout=1)
    feed.tick(timeout=1)
    feed.tick(timeout=1)
    # One reply in each alert's thread (a lost answer's ts is in what the server answered).
    alert_ts = [
        r.answer["ts"]
        for r in feed.slack.received
        if r.method == "chat.postMessage" and r.ok and not r.body.get("thread_ts")
    ]
    assert sorted(r["thread_ts"] for r in feed.replies()) == sorted(alert_ts)
    assert any(r.method == "conversations.replies" for r in feed.slack.received)


@pytest.mark.parametrize("error", ["invalid_blocks", "msg_too_long"])
def test_a_refused_alert_goes_once_in_its_safe_form_and_every_later_one_goes_out(feed, error):
    first, refused, third = (feed.run(fail=True) for _ in range(3))
    feed.slack.refuse(error, lambda body: refused in body["text"] and "blocks" in body)
    result = feed.tick()
    feed.run(fail=False)
    feed.tick()
    feed.tick()
    alerts = feed.alerts()
    assert {run: len(bodies) for run, bodies in alerts.items()} == {first: 1, refused: 1, third: 1}
    (safe,) = alerts[refused]
    assert safe["channel"] == PLATFORM and "blocks" not in safe
    assert safe["text"].startswith(f"Alert for run {refused} (feed) could not be posted in full")
    assert f"({error})" in safe["text"] and f"http://ui/runs/{refused}" in safe["text"]
    assert "blocks" in alerts[first][0] and "blocks" in alerts[third][0]
    # Every alert, the safe one too, gets its resolution in its thread.
    assert len(feed.replies()) == 3
    assert len({r["thread_ts"] for r in feed.replies()}) == 3
    assert f"alert for run {third}" in result.skip_reason.skip_message


def test_a_message_refused_in_its_safe_form_too_is_recorded_and_the_sensor_moves_on(feed):
    first, refused, third = (feed.run(fail=True) for _ in range(3))
    feed.slack.refuse("invalid_arguments", lambda body: refused in body["text"])
    result = feed.tick()
    assert f"UNDELIVERABLE alert for run {refused}" in result.skip_reason.skip_message
    feed.run(fail=False)
    feed.tick()
    assert set(feed.alerts()) == {first, third} and len(feed.replies()) == 2
    (entry,) = Outbox(feed.instance, feed.name).undeliverable()
    assert entry["key"] == refused and "invalid_arguments" in entry["reason"]
    assert "its safe form too" in entry["reason"]


@pytest.mark.parametrize(
    ("writes", "pattern"),
    [(0, "."), (1, "/(sent|open)")],
    ids=["after-the-post", "between-the-two-writes"],
)
def test_killed_while_recording_an_alert_it_is_neither_posted_again_nor_its_reply_lost(
    feed, writes, pattern
):
    failed = feed.run(fail=True)
    feed.tick_killed(post=1, writes=writes, pattern=pattern)
    assert len(feed.slack.posts()) == 1  # Slack has it; the process died before recording it
    feed.tick()
    feed.run(fail=False)
    feed.tick()
    assert {run: len(b) for run, b in feed.alerts().items()} == {failed: 1}
    assert len(feed.replies()) == 1


def test_killed_between_the_post_of_a_reply_and_its_record_it_is_not_posted_again(feed):
    feed.run(fail=True)
    feed.tick()
    feed.run(fail=False)
    feed.tick_killed(post=1)
    assert len(feed.replies()) == 1
    feed.tick()
    feed.tick()
    assert len(feed.replies()) == 1


def test_killed_between_the_two_writes_of_a_reply_it_is_neither_lost_nor_doubled(feed):
    feed.run(fail=True)
    feed.tick()
    feed.run(fail=False)
    feed.tick_killed(post=1, writes=1, pattern="/(reply/|open)")
    feed.tick()
    feed.run(fail=False)  # builds the partition again: nothing is left to resolve
    feed.tick()
    assert len(feed.replies()) == 1
    assert len(feed.alerts()) == 1
