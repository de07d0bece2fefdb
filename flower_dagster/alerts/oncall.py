"""The on-call rotation: who is on call at an instant, and the schedule ahead (pure functions).

oncall.yaml names the roster (people of people.yaml), the rotation (a shift is a day or a week),
how many people share a shift (1 or 2), the hour shifts hand off at (in schedule.timezone), the
day the first shift starts, and one-off overrides. An on-call day runs from the hand-off hour to
the next day's hand-off hour: at 03:00 on Tuesday, with a 10:00 hand-off, Monday's people are on
call.

With two people per shift the pairs overlap: shift n is roster[n] and roster[n+1], so every
hand-off keeps one person who was on call the shift before.

Overrides cover whole on-call days, `from` inclusive, `until` exclusive, applied in file order:
`oncall: [a, b]` replaces everyone (a holiday), `replace: a, with: b` swaps one person.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from flower_dagster.alerts.people import Directory, _describe, _join, _read
from flower_dagster.errors import SettingsError


class RotationKind(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


@dataclass(frozen=True)
class Override:
    first_day: date  # inclusive on-call day
    end_day: date  # exclusive
    oncall: tuple[str, ...] = ()  # everyone on call instead, or
    replace: str | None = None  # one person...
    replacement: str | None = None  # ...covered by another

    def covers(self, day: date) -> bool:
        return self.first_day <= day < self.end_day

    def apply(self, people: tuple[str, ...]) -> tuple[str, ...]:
        if self.oncall:
            return self.oncall
        return tuple(self.replacement if p == self.replace else p for p in people)

    def describe(self) -> str:
        if self.oncall:
            return f"override: {', '.join(self.oncall)}"
        return f"swap: {self.replacement} for {self.replace}"


@dataclass(frozen=True)
class Rotation:
    roster: tuple[str, ...]
    kind: RotationKind = RotationKind.WEEKLY
    per_shift: int = 1
    handoff_hour: int = 10
    start: date = date(2026, 1, 5)
    timezone: str = "Asia/Seoul"
    overrides: tuple[Override, ...] = ()

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Shift:
    """Who is on call over one stretch of time, and why when it is not the rotation's turn."""

    people: tuple[str, ...]
    starts: datetime  # aware, in the rotation's time zone
    ends: datetime
    note: str | None = None  # the override that put these people there


@dataclass(frozen=True)
class _Day:
    day: date
    people: tuple[str, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)


def oncall_day(instant: datetime, rotation: Rotation) -> date:
    """The on-call day an instant belongs to: before the hand-off hour, the day before."""
    local = _aware(instant).astimezone(rotation.zone)
    return (local - timedelta(hours=rotation.handoff_hour)).date()


def handoff(day: date, rotation: Rotation) -> datetime:
    """When the on-call day `day` starts: its hand-off hour, in the rotation's zone."""
    return datetime.combine(day, time(rotation.handoff_hour), tzinfo=rotation.zone)


def scheduled(day: date, rotation: Rotation) -> tuple[str, ...]:
    """The rotation's people for an on-call day, before overrides."""
    days = (day - rotation.start).days
    shift = days if rotation.kind is RotationKind.DAILY else days // 7
    size = len(rotation.roster)
    people = [rotation.roster[(shift + i) % size] for i in range(rotation.per_shift)]
    return tuple(dict.fromkeys(people))


def _people_of(day: date, rotation: Rotation) -> _Day:
    people = scheduled(day, rotation)
    notes = []
    for override in rotation.overrides:
        if override.covers(day):
            people = tuple(dict.fromkeys(override.apply(people)))
            notes.append(override.describe())
    return _Day(day, people, tuple(notes))


def oncall_for(instant: datetime, rotation: Rotation) -> Shift:
    """Who is on call at `instant`, from when until when (consecutive days with the same people
    and notes are one shift)."""
    day = oncall_day(instant, rotation)
    today = _people_of(day, rotation)
    first = day
    while (day - first).days < 366:
        before = _people_of(first - timedelta(days=1), rotation)
        if (before.people, before.notes) != (today.people, today.notes):
            break
        first -= timedelta(days=1)
    last = day
    while (last - day).days < 366:
        after = _people_of(last + timedelta(days=1), rotation)
        if (after.people, after.notes) != (today.people, today.notes):
            break
        last += timedelta(days=1)
    return Shift(
        people=today.people,
        starts=handoff(first, rotation),
        ends=handoff(last + timedelta(days=1), rotation),
        note="; ".join(today.notes) or None,
    )


def schedule(rotation: Rotation, first_day: date, days: int) -> list[Shift]:
    """One row per on-call day from `first_day`, for `days` days."""
    rows = []
    for offset in range(days):
        day = first_day + timedelta(days=offset)
        item = _people_of(day, rotation)
        rows.append(
            Shift(
                item.people,
                handoff(day, rotation),
                handoff(day + timedelta(days=1), rotation),
                "; ".join(item.notes) or None,
            )
        )
    return rows


def _aware(instant: datetime) -> datetime:
    if instant.tzinfo is None:
        raise ValueError("an instant must carry its time zone")
    return instant


# --- oncall.yaml -------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class _Override(_Strict):
    from_: date = Field(alias="from")
    until: date
    oncall: list[str] | None = Field(None, min_length=1, max_length=2)
    replace: str | None = None
    with_: str | None = Field(None, alias="with")

    @model_validator(mode="after")
    def _one_kind(self) -> _Override:
        if self.until <= self.from_:
            raise ValueError("until is not after from")
        swap = self.replace is not None and self.with_ is not None
        if (self.oncall is None) == (not swap):
            raise ValueError("give either oncall: [names] or replace: name with: name")
        return self


class _OncallFile(_Strict):
    rotation: RotationKind = RotationKind.WEEKLY
    per_shift: int = Field(1, ge=1, le=2, strict=True)
    handoff_hour: int = Field(10, ge=0, le=23, strict=True)
    start: date
    roster: list[str] = Field(min_length=1)
    overrides: list[_Override] = Field(default_factory=list)


_ALLOWED = {
    "rotation": "daily or weekly",
    "per_shift": "1 or 2",
    "handoff_hour": "a whole hour from 0 to 23 (in schedule.timezone)",
    "start": "the date the first shift starts, e.g. 2026-11-02",
    "roster": "a list of names under people: in people.yaml",
    "from": "a date: the first on-call day of the override",
    "until": "a date after from: the override ends at that day's hand-off",
    "oncall": "a list of one or two names under people:",
}


def load_rotation(path: Path, directory: Directory, timezone: str) -> Rotation:
    """Read oncall.yaml; names must be people of people.yaml. One line per mistake."""
    raw = _read(path)
    try:
        parsed = _OncallFile.model_validate(raw)
    except ValidationError as error:
        raise SettingsError(_describe(error, path.name, _ALLOWED, "on-call file")) from None
    problems = []
    names = ", ".join(directory.people) or "none yet"

    def known(name: str | None, where: str) -> None:
        if name is not None and name not in directory.people:
            problems.append(
                f"{path.name}: {where} is {name!r}; allowed: a name under people: in "
                f"people.yaml ({names})"
            )

    for i, name in enumerate(parsed.roster):
        known(name, f"roster[{i}]")
    if parsed.per_shift > len(parsed.roster):
        problems.append(
            f"{path.name}: per_shift is {parsed.per_shift} with {len(parsed.roster)} person in "
            "the roster; allowed: at most as many as the roster has"
        )
    overrides = []
    for i, item in enumerate(parsed.overrides):
        for name in item.oncall or []:
            known(name, f"overrides[{i}].oncall")
        known(item.replace, f"overrides[{i}].replace")
        known(item.with_, f"overrides[{i}].with")
        overrides.append(
            Override(item.from_, item.until, tuple(item.oncall or ()), item.replace, item.with_)
        )
    if problems:
        raise SettingsError(_join(problems, "on-call file"))
    return Rotation(
        roster=tuple(parsed.roster),
        kind=parsed.rotation,
        per_shift=parsed.per_shift,
        handoff_hour=parsed.handoff_hour,
        start=parsed.start,
        timezone=timezone,
        overrides=tuple(overrides),
    )


def render_schedule(rows: Sequence[Shift]) -> str:
    """`flower oncall schedule`: a table, one row per on-call day."""
    header = ("day", "from", "until", "on call", "note")
    table = [
        (
            row.starts.strftime("%a %Y-%m-%d"),
            row.starts.strftime("%H:%M"),
            row.ends.strftime("%a %H:%M"),
            ", ".join(row.people),
            row.note or "",
        )
        for row in rows
    ]
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(header))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip()
        for r in [header, *table]
    )
