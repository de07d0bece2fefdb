"""The alert sensor and its Slack resource, where flower.yaml has an alerts section and
SLACK_BOT_TOKEN is set; otherwise nothing, and one log line saying why alerts are off."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from dagster import Definitions, EnvVar

from flower_dagster.alerts.delivery import TOKEN_VARIABLE, FlowerSlackResource
from flower_dagster.alerts.oncall import load_rotation
from flower_dagster.alerts.people import load_directory
from flower_dagster.alerts.sensors import AlertConfig, alert_sensor
from flower_dagster.dbt.project import FlowerDbtProject
from flower_dagster.settings import Settings

log = logging.getLogger("flower_dagster.alerts")


def alert_definitions(settings: Settings, manifest: Mapping[str, Any] | None = None) -> Definitions:
    # Off is a warning where the environment wants alerts (prod), a note elsewhere.
    say = log.warning if settings.environment.alerts else log.info
    if settings.alerts is None:
        say("alerts off: flower.yaml has no alerts section (see docs/alerts.md)")
        return Definitions()
    if not os.environ.get(TOKEN_VARIABLE):
        say(f"alerts off: {TOKEN_VARIABLE} is not set")
        return Definitions()
    return Definitions(
        sensors=[
            alert_sensor(alert_config(settings, manifest), running=settings.environment.alerts)
        ],
        resources={
            "slack": FlowerSlackResource(
                token=EnvVar(TOKEN_VARIABLE), base_url=settings.alerts.slack_api_url
            )
        },
    )


def alert_config(settings: Settings, manifest: Mapping[str, Any] | None = None) -> AlertConfig:
    """people.yaml, oncall.yaml and the models' files (from `manifest`, read here when not
    given), read and checked once."""
    assert settings.alerts is not None
    directory = load_directory(settings.alerts.people_file)
    rotation = load_rotation(settings.alerts.oncall_file, directory, settings.timezone)
    if manifest is None:
        manifest = FlowerDbtProject.from_settings(settings).load_manifest()
    model_files = {
        node["name"]: node["original_file_path"]
        for node in manifest.get("nodes", {}).values()
        if node.get("resource_type") in ("model", "seed", "snapshot")
    }
    return AlertConfig(
        alerts=settings.alerts,
        timezone=settings.timezone,
        directory=directory,
        rotation=rotation,
        model_files=model_files,
        dbt_target_root=settings.dbt_project_dir / "target",
    )
