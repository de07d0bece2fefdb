"""`flower backfill`: the token from the environment, the progress bar, refusals as one line.

The CLI against the real admin service and Dagster is in test_admin_e2e.py; here its own logic.
"""

from __future__ import annotations

import io

import pytest

from flower_dagster.admin.cli import (
    BAR_WIDTH,
    AdminClient,
    client_from_environment,
    follow,
    progress_line,
)
from flower_dagster.cli import main
from flower_dagster.errors import FlowerError
from tests.admin_support import free_port


def _status(done, failed, running, targeted=3, status="REQUESTED", finished=False):
    return {
        "id": "abcdefgh",
        "status": status,
        "finished": finished,
        "models": ["fct_orders"],
        "from": "2024-01-09",
        "to": "2024-01-11",
        "partitions": {
            "targeted": targeted,
            "done": done,
            "failed": failed,
            "in_progress": running,
        },
    }


@pytest.mark.parametrize(
    ("done", "failed", "running"), [(0, 0, 0), (1, 0, 2), (2, 1, 0), (3, 0, 0)]
)
def test_the_bar_shows_done_failed_and_running_in_proportion(done, failed, running):
    line = progress_line(_status(done, failed, running))
    bar = line[1 : 1 + BAR_WIDTH]
    assert len(bar) == BAR_WIDTH and line[BAR_WIDTH + 1] == "]"
    assert bar.count("#") == round(BAR_WIDTH * done / 3)
    assert bar.count("x") == round(BAR_WIDTH * failed / 3)
    assert bar.count("~") == round(BAR_WIDTH * running / 3)
    assert f"{done}/3 done, {failed} failed, {running} in progress" in line
    assert line.endswith("abcdefgh fct_orders 2024-01-09 .. 2024-01-11")


class _Replay(AdminClient):
    """A client that answers with the given statuses, one per poll."""

    def __init__(self, answers):
        super().__init__("http://unused", "token")
        self.answers = list(answers)
        self.polls = 0

    def call(self, method, path, body=None):
        assert (method, path) == ("GET", "/api/backfills/abcdefgh")
        self.polls += 1
        return self.answers.pop(0)


def test_follow_polls_until_finished_and_prints_each_change_once():
    client = _Replay(
        [
            _status(0, 0, 3),
            _status(0, 0, 3),
            _status(3, 0, 0, status="COMPLETED_SUCCESS", finished=True),
        ]
    )
    out = io.StringIO()
    slept = []
    assert follow(client, "abcdefgh", out, interval=0.5, sleep=slept.append) == 0
    lines = out.getvalue().splitlines()
    assert client.polls == 3 and slept == [0.5, 0.5]
    assert len(lines) == 2 and "0/3 done" in lines[0] and "COMPLETED_SUCCESS" in lines[1]


def test_follow_exits_1_when_the_backfill_failed_or_was_cancelled():
    for final in ("COMPLETED_FAILED", "CANCELED", "FAILED"):
        client = _Replay([_status(1, 2, 0, status=final, finished=True)])
        assert follow(client, "abcdefgh", io.StringIO(), sleep=lambda _: None) == 1


def test_on_a_terminal_the_bar_is_redrawn_in_place():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    client = _Replay(
        [_status(1, 0, 2), _status(3, 0, 0, status="COMPLETED_SUCCESS", finished=True)]
    )
    out = Tty()
    follow(client, "abcdefgh", out, sleep=lambda _: None)
    text = out.getvalue()
    assert text.count("\r\x1b[2K") == 2 and text.endswith("\n") and text.count("\n") == 1


def test_the_token_comes_from_the_environment_only(monkeypatch):
    with pytest.raises(FlowerError, match="FLOWER_TOKEN is not set"):
        client_from_environment({"FLOWER_ADMIN_URL": "http://127.0.0.1:1"})
    client = client_from_environment(
        {"FLOWER_TOKEN": " secret-token ", "FLOWER_ADMIN_URL": "http://h:1/"}
    )
    assert client.url == "http://h:1"
    # Without FLOWER_ADMIN_URL, the address of flower.yaml's admin section.
    monkeypatch.delenv("FLOWER_SETTINGS_FILE", raising=False)
    default = client_from_environment({"FLOWER_TOKEN": "t"})
    assert default.url == "http://127.0.0.1:3100"


def test_the_launch_command_has_no_token_option():
    with pytest.raises(SystemExit):
        main(
            [
                "backfill",
                "launch",
                "fct_orders",
                "--from",
                "2024-01-01",
                "--to",
                "2024-01-01",
                "--reason",
                "x",
                "--token",
                "secret",
            ]
        )


def test_a_service_that_does_not_answer_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("FLOWER_TOKEN", "some-token-value-for-the-test")
    monkeypatch.setenv("FLOWER_ADMIN_URL", f"http://127.0.0.1:{free_port()}")
    assert main(["backfill", "status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("flower: the backfill admin at http://127.0.0.1:")
    assert "did not answer" in err and "some-token-value" not in err


def test_a_launch_without_a_reason_is_refused_before_any_request(capsys):
    with pytest.raises(SystemExit) as caught:
        main(["backfill", "launch", "fct_orders", "--from", "2024-01-01", "--to", "2024-01-02"])
    assert caught.value.code == 2
    assert "--reason" in capsys.readouterr().err
