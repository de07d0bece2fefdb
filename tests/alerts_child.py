"""One alert sensor tick in a process of its own, which can be killed (SIGKILL) at a chosen point.

A sensor's process can die anywhere: between Slack accepting a post and the post being recorded,
or between two writes to the instance's key-value store. The test runs the tick here, against
the same on-disk Dagster instance and local Slack server, and this process kills itself with
SIGKILL once the chosen point is reached: after its Nth accepted chat.postMessage, optionally
after K more store writes of keys matching a pattern. Nothing after that point runs; what the
process left behind is all the next tick has, as after a real crash.

    python -m tests.alerts_child HOME SENSOR SLACK_URL CURSOR [KILL_POST [WRITES PATTERN]]

prints `{"cursor": ...}` when it was not killed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from datetime import date
from pathlib import Path
from typing import Any

from dagster import DagsterInstance, Definitions, asset, build_sensor_context
from slack_sdk import WebClient

from flower_dagster.alerts.delivery import FlowerSlackResource
from flower_dagster.alerts.oncall import Rotation
from flower_dagster.alerts.people import load_directory
from flower_dagster.alerts.sensors import AlertConfig, alert_sensor
from flower_dagster.settings import REPO_ROOT, AlertSettings

FEED = {"fail": True}
PLATFORM = "#data-platform"
UI = "http://ui"


@asset(owners=["team:growth"])
def feed() -> None:
    """Fails while its source is empty: a plain Dagster asset, alerted like a dbt model."""
    if FEED["fail"]:
        raise RuntimeError("feed: the source table is empty")


def definitions() -> Definitions:
    return Definitions(assets=[feed])


def config() -> AlertConfig:
    alerts = AlertSettings(
        ui_base_url=UI, platform_channel=PLATFORM, people_file=Path("p"), oncall_file=Path("o")
    )
    rotation = Rotation(("daniel", "hana"), start=date(2026, 11, 2))
    return AlertConfig(alerts, "Asia/Seoul", load_directory(REPO_ROOT / "people.yaml"), rotation)


def tick(
    instance: DagsterInstance, name: str, slack_url: str, cursor: str | None, timeout: int = 10
) -> Any:
    """One evaluation of the alert sensor `name`, as Dagster's daemon runs it."""
    sensor_def = alert_sensor(config(), running=True, name=name)
    resource = FlowerSlackResource(token="xoxb-unit", base_url=slack_url, timeout_seconds=timeout)
    context = build_sensor_context(
        instance=instance, cursor=cursor, definitions=definitions(), resources={"slack": resource}
    )
    return sensor_def(context)


def _die_at(instance: DagsterInstance, post: int, writes: int, pattern: str) -> None:
    """SIGKILL this process after the `post`th accepted post and `writes` matching writes."""
    state = {"posts": 0, "writes": None}

    def die() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    api_call = WebClient.api_call

    def counting_call(self: WebClient, api_method: str, **kwargs: Any) -> Any:
        response = api_call(self, api_method, **kwargs)  # raises when Slack did not accept
        if api_method == "chat.postMessage":
            state["posts"] += 1
            if state["posts"] == post:
                if writes == 0:
                    die()
                state["writes"] = 0
        return response

    storage = instance.run_storage
    set_values = storage.set_cursor_values

    def counting_set(pairs: dict[str, str]) -> None:
        set_values(pairs)
        if state["writes"] is not None and any(re.search(pattern, key) for key in pairs):
            state["writes"] += 1
            if state["writes"] == writes:
                die()

    WebClient.api_call = counting_call  # type: ignore[method-assign]
    storage.set_cursor_values = counting_set  # type: ignore[method-assign]


def main(argv: list[str]) -> int:
    home, name, slack_url, cursor, *kill = argv
    instance = DagsterInstance.from_config(home)
    if kill:
        writes = int(kill[1]) if len(kill) > 1 else 0
        _die_at(instance, int(kill[0]), writes, kill[2] if len(kill) > 2 else ".")
    result = tick(instance, name, slack_url, cursor or None)
    print(json.dumps({"cursor": result.cursor}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
