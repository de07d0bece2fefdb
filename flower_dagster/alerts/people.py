"""Who owns what, in Slack: owners (a team or an email) -> the channel and the people to mention.

A model's owner is a Dagster asset owner (`team:commerce` from `meta.owner: commerce`, an email,
or the dbt group's owner). people.yaml maps teams to a channel and members, and people to their
Slack user id. A failure no team or person can be found for goes to the platform channel.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flower_dagster.errors import SettingsError
from flower_dagster.settings import read_yaml_mapping

SLACK_USER_ID = r"^[UW][A-Z0-9]{2,}$"
SLACK_CHANNEL = r"^#?[A-Za-z0-9][A-Za-z0-9._-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Person(_Strict):
    slack: str = Field(pattern=SLACK_USER_ID)
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+$")


class _Team(_Strict):
    channel: str = Field(pattern=SLACK_CHANNEL)
    members: list[str] = Field(default_factory=list)


class _PeopleFile(_Strict):
    people: dict[str, _Person] = Field(default_factory=dict)
    teams: dict[str, _Team] = Field(default_factory=dict)


_ALLOWED = {
    "slack": "a Slack user id such as U04ABCDE12 (profile -> ... -> Copy member ID)",
    "email": "an email address",
    "channel": "a Slack channel id or name, e.g. C0123ABCD or #commerce-data",
    "members": "a list of names under people:",
}


@dataclass(frozen=True)
class Person:
    name: str
    slack_id: str
    email: str | None = None

    @property
    def mention(self) -> str:
        return f"<@{self.slack_id}>"


@dataclass(frozen=True)
class Team:
    name: str
    channel: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class Directory:
    """people.yaml, validated: people by name and teams by name."""

    people: Mapping[str, Person] = field(default_factory=dict)
    teams: Mapping[str, Team] = field(default_factory=dict)

    def person(self, name: str) -> Person | None:
        return self.people.get(name)

    def by_email(self, email: str) -> Person | None:
        lowered = email.lower()
        return next((p for p in self.people.values() if (p.email or "").lower() == lowered), None)

    def team_of(self, person: str) -> Team | None:
        return next((t for t in self.teams.values() if person in t.members), None)


@dataclass(frozen=True)
class Route:
    """Where one alert goes and whom it mentions."""

    channel: str
    mentions: tuple[str, ...]  # Slack user ids
    owners: tuple[str, ...]  # owners as written, for the message (`commerce`, an email)
    unknown: tuple[str, ...] = ()  # owners people.yaml does not know
    fallback: bool = False  # the platform channel, for want of an owner's channel


def route(owners: Iterable[str], directory: Directory, platform_channel: str) -> Route:
    """The channel and the mentions for failures of models with these owners.

    All owners in one team channel -> that channel; owners in several channels, or none known
    -> the platform channel. Every known owner is mentioned (a team: each of its members).
    """
    channels: list[str] = []
    mentions: list[str] = []
    labels: list[str] = []
    unknown: list[str] = []
    for owner in dict.fromkeys(owners):
        label = owner.removeprefix("team:")
        labels.append(label)
        if owner.startswith("team:") or "@" not in owner:
            team = directory.teams.get(label)
            if team is None:
                unknown.append(label)
                continue
            channels.append(team.channel)
            mentions.extend(directory.people[m].slack_id for m in team.members)
            continue
        person = directory.by_email(owner)
        if person is None:
            unknown.append(label)
            continue
        mentions.append(person.slack_id)
        team = directory.team_of(person.name)
        if team is not None:
            channels.append(team.channel)
    distinct = list(dict.fromkeys(channels))
    single = len(distinct) == 1 and not unknown
    return Route(
        channel=distinct[0] if single else platform_channel,
        mentions=tuple(dict.fromkeys(mentions)),
        owners=tuple(labels),
        unknown=tuple(unknown),
        fallback=not single,
    )


def load_directory(path: Path) -> Directory:
    """Read people.yaml: one line per mistake, naming the file, key, value and what is allowed."""
    raw = _read(path)
    try:
        parsed = _PeopleFile.model_validate(raw)
    except ValidationError as error:
        raise SettingsError(_describe(error, path.name)) from None
    problems = [
        f"{path.name}: teams.{team}.members has {member!r}; allowed: a name under people: "
        f"({', '.join(parsed.people) or 'none yet'})"
        for team, spec in parsed.teams.items()
        for member in spec.members
        if member not in parsed.people
    ]
    if problems:
        raise SettingsError(_join(problems, "people file"))
    return Directory(
        people={n: Person(n, p.slack, p.email) for n, p in parsed.people.items()},
        teams={n: Team(n, t.channel, tuple(t.members)) for n, t in parsed.teams.items()},
    )


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SettingsError(f"{path}: no such file (alerts.people_file / alerts.oncall_file)")
    return read_yaml_mapping(path, "people and channels")


def _describe(
    error: ValidationError,
    label: str,
    allowed: Mapping[str, str] = _ALLOWED,
    noun: str = "people file",
) -> str:
    lines = []
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        key = ".".join(loc)
        if item["type"] == "extra_forbidden":
            lines.append(f"{label}: unknown key {key!r}")
            continue
        what = allowed.get(loc[-1]) or allowed.get(key) or item["msg"]
        value = "missing" if item["type"] == "missing" else repr(item["input"])
        lines.append(f"{label}: {key} is {value}; allowed: {what}")
    return _join(lines, noun)


def _join(lines: list[str], noun: str) -> str:
    if len(lines) == 1:
        return lines[0]
    return "\n".join([f"{len(lines)} {noun} problems:", *(f"  - {line}" for line in lines)])
