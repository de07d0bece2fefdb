"""The on-call rotation: pure functions over a month, the oncall.yaml checks, and the CLI."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from flower_dagster.alerts.oncall import (
    Override,
    Rotation,
    RotationKind,
    load_rotation,
    oncall_day,
    oncall_for,
    schedule,
)
from flower_dagster.alerts.people import load_directory
from flower_dagster.cli import main
from flower_dagster.errors import SettingsError
from flower_dagster.settings import DEMO_DBT_PROJECT_DIR, REPO_ROOT

SEOUL = ZoneInfo("Asia/Seoul")
NOVEMBER = [date(2026, 11, 1) + timedelta(days=i) for i in range(30)]
START = date(2026, 11, 2)  # a Monday


def at(day: date, hour: int, minute: int = 0, zone: ZoneInfo = SEOUL) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)


def test_daily_one_person_over_a_month_changes_at_the_handoff_hour():
    roster = ("ana", "bo", "cy", "di")
    rotation = Rotation(roster, RotationKind.DAILY, per_shift=1, handoff_hour=10, start=START)
    for day in NOVEMBER:
        expected = roster[(day - START).days % 4]
        before = roster[(day - START).days % 4 - 1]
        assert oncall_for(at(day, 12), rotation).people == (expected,), day
        assert oncall_for(at(day, 10, 0), rotation).people == (expected,), day
        # 09:59 still belongs to the day before; so does 03:00 at night.
        assert oncall_for(at(day, 9, 59), rotation).people == (before,), day
        assert oncall_for(at(day, 3), rotation).people == (before,), day
    shift = oncall_for(at(date(2026, 11, 5), 3), rotation)
    assert (shift.starts, shift.ends) == (at(date(2026, 11, 4), 10), at(date(2026, 11, 5), 10))
    # Fair: every person gets the same number of on-call days over four weeks.
    days = Counter(p for row in schedule(rotation, START, 28) for p in row.people)
    assert days == {name: 7 for name in roster}


def test_weekly_two_people_per_shift_overlap_by_one_person_at_each_handoff():
    roster = ("ana", "bo", "cy", "di", "eu")
    rotation = Rotation(roster, RotationKind.WEEKLY, per_shift=2, handoff_hour=10, start=START)
    weeks = {}
    for day in NOVEMBER[1:]:  # from the start day on
        week = (day - START).days // 7
        pair = (roster[week % 5], roster[(week + 1) % 5])
        assert oncall_for(at(day, 15), rotation).people == pair, day
        weeks[week] = pair
    # Each hand-off keeps one person of the shift before.
    for week in range(1, len(weeks)):
        assert weeks[week - 1][1] == weeks[week][0]
    # Monday 09:59 is last week's pair, 10:00 the new one; the shift is the whole week.
    monday = date(2026, 11, 9)
    assert oncall_for(at(monday, 9, 59), rotation).people == ("ana", "bo")
    assert oncall_for(at(monday, 10), rotation).people == ("bo", "cy")
    shift = oncall_for(at(date(2026, 11, 12), 23), rotation)
    assert (shift.starts, shift.ends) == (at(monday, 10), at(monday + timedelta(days=7), 10))
    # Every person serves two weeks out of five: twice as many shifts, each half as alone.
    weeks_served = Counter(p for pair in [weeks[w] for w in range(5)] for p in pair)
    assert set(weeks_served.values()) == {2}


def test_overrides_swap_one_person_or_replace_the_shift_for_whole_days():
    roster = ("ana", "bo", "cy", "di")
    rotation = Rotation(
        roster,
        RotationKind.WEEKLY,
        per_shift=2,
        handoff_hour=10,
        start=START,
        overrides=(
            Override(date(2026, 11, 10), date(2026, 11, 12), replace="bo", replacement="di"),
            Override(date(2026, 11, 20), date(2026, 11, 23), oncall=("cy",)),
        ),
    )
    # Week of 2026-11-09: bo and cy; bo swapped for di on the 10th and 11th.
    assert oncall_for(at(date(2026, 11, 10), 9, 59), rotation).people == ("bo", "cy")
    swapped = oncall_for(at(date(2026, 11, 10), 10), rotation)
    assert swapped.people == ("di", "cy")
    assert swapped.note == "swap: di for bo"
    assert (swapped.starts, swapped.ends) == (
        at(date(2026, 11, 10), 10),
        at(date(2026, 11, 12), 10),
    )
    assert oncall_for(at(date(2026, 11, 12), 9, 59), rotation).people == ("di", "cy")
    assert oncall_for(at(date(2026, 11, 12), 10), rotation).people == ("bo", "cy")
    # A holiday: cy alone from the 20th to the 23rd's hand-off, then the rotation again.
    assert oncall_for(at(date(2026, 11, 21), 4), rotation).people == ("cy",)
    assert oncall_for(at(date(2026, 11, 23), 9), rotation).people == ("cy",)
    assert oncall_for(at(date(2026, 11, 23), 10), rotation).people == ("di", "ana")
    rows = {row.starts.date(): row for row in schedule(rotation, date(2026, 11, 1), 30)}
    assert [d for d, row in rows.items() if row.note] == [
        date(2026, 11, 10),
        date(2026, 11, 11),
        date(2026, 11, 20),
        date(2026, 11, 21),
        date(2026, 11, 22),
    ]


def test_the_handoff_stays_at_its_local_hour_across_daylight_saving():
    berlin = ZoneInfo("Europe/Berlin")
    rotation = Rotation(
        ("ana", "bo"),
        RotationKind.DAILY,
        handoff_hour=9,
        start=date(2026, 3, 27),
        timezone="Europe/Berlin",
    )
    # Clocks go forward on 2026-03-29: the shift of the 28th lasts 23 hours, still 09:00 local.
    shift = oncall_for(at(date(2026, 3, 28), 20, zone=berlin), rotation)
    assert shift.starts == at(date(2026, 3, 28), 9, zone=berlin)
    assert shift.ends == at(date(2026, 3, 29), 9, zone=berlin)
    assert shift.ends.astimezone(UTC) - shift.starts.astimezone(UTC) == timedelta(hours=23)
    assert oncall_day(at(date(2026, 3, 29), 8, 59, zone=berlin), rotation) == date(2026, 3, 28)


def test_an_instant_without_a_time_zone_is_refused():
    rotation = Rotation(("ana",), start=START)
    with pytest.raises(ValueError, match="time zone"):
        oncall_for(datetime(2026, 11, 3, 12), rotation)


# --- oncall.yaml -------------------------------------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "oncall.yaml"
    path.write_text(text)
    return path


def test_the_repositorys_oncall_file_loads_with_its_people():
    directory = load_directory(REPO_ROOT / "people.yaml")
    rotation = load_rotation(REPO_ROOT / "oncall.yaml", directory, "Asia/Seoul")
    assert set(rotation.roster) <= set(directory.people)
    assert rotation.per_shift in (1, 2)


def test_oncall_file_mistakes_are_one_line_each_naming_key_value_and_allowed(tmp_path):
    directory = load_directory(REPO_ROOT / "people.yaml")
    path = _write(
        tmp_path,
        "rotation: monthly\nper_shift: 3\nhandoff_hour: 24\nstart: 2026-11-02\n"
        "roster: [jiyoon]\noverrides:\n  - {from: 2026-12-02, until: 2026-12-01, oncall: [hana]}\n",
    )
    with pytest.raises(SettingsError) as error:
        load_rotation(path, directory, "Asia/Seoul")
    lines = str(error.value).splitlines()
    assert lines[0] == "4 on-call file problems:"
    assert "  - oncall.yaml: rotation is 'monthly'; allowed: daily or weekly" in lines
    assert "  - oncall.yaml: per_shift is 3; allowed: 1 or 2" in lines
    assert (
        "  - oncall.yaml: handoff_hour is 24; allowed: a whole hour from 0 to 23 "
        "(in schedule.timezone)" in lines
    )
    assert any(line.startswith("  - oncall.yaml: overrides.0 is ") for line in lines)


def test_oncall_file_names_must_be_people(tmp_path):
    directory = load_directory(REPO_ROOT / "people.yaml")
    path = _write(
        tmp_path,
        "start: 2026-11-02\nroster: [jiyoon, bob]\n"
        "overrides:\n  - {from: 2026-12-01, until: 2026-12-02, replace: jiyoon, with: alice}\n",
    )
    with pytest.raises(SettingsError) as error:
        load_rotation(path, directory, "Asia/Seoul")
    text = str(error.value)
    assert "oncall.yaml: roster[1] is 'bob'; allowed: a name under people: in people.yaml" in text
    assert "oncall.yaml: overrides[0].with is 'alice'" in text
    assert "jiyoon, minho, seoyeon, daniel, hana" in text


# --- the CLI -----------------------------------------------------------------------------------


@pytest.fixture
def settings_file(tmp_path, monkeypatch) -> Path:
    (tmp_path / "people.yaml").write_text((REPO_ROOT / "people.yaml").read_text())
    (tmp_path / "oncall.yaml").write_text(
        "rotation: daily\nper_shift: 2\nhandoff_hour: 10\nstart: 2026-11-02\n"
        "roster: [jiyoon, minho, seoyeon]\n"
        "overrides:\n  - {from: 2026-11-04, until: 2026-11-05, oncall: [hana]}\n"
    )
    path = tmp_path / "flower.yaml"
    path.write_text(
        f"dbt: {{project_dir: {DEMO_DBT_PROJECT_DIR}}}\n"
        "alerts:\n  platform_channel: '#data-platform'\n"
    )
    monkeypatch.setenv("FLOWER_SETTINGS_FILE", str(path))
    return path


def test_flower_oncall_who_at_a_time(settings_file, capsys):
    assert main(["oncall", "who", "--at", "2026-11-04 09:30"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "on call at Wed 2026-11-04 09:30 KST:",
        "  minho  <@U07MINHO01>",
        "  seoyeon  <@U07SEOYEON>",
        "shift Tue 2026-11-03 10:00 → Wed 2026-11-04 10:00 KST",
    ]
    assert main(["oncall", "who", "--at", "2026-11-04T03:00:00+00:00"]) == 0  # 12:00 KST
    out = capsys.readouterr().out
    assert "  hana  <@U07HANA001>" in out and "(override: hana)" in out


def test_flower_oncall_schedule_is_a_table_of_days(settings_file, capsys):
    assert main(["oncall", "schedule", "--days", "4", "--from", "2026-11-02"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["day", "from", "until", "on", "call", "note"]
    assert [line.split("  ")[0] for line in out[1:]] == [
        "Mon 2026-11-02",
        "Tue 2026-11-03",
        "Wed 2026-11-04",
        "Thu 2026-11-05",
    ]
    assert "jiyoon, minho" in out[1] and "minho, seoyeon" in out[2]
    assert "hana" in out[3] and "override: hana" in out[3]
    assert "jiyoon, minho" in out[4]  # day 3 of a roster of three: round again


def test_flower_oncall_says_what_is_wrong_without_a_stack(settings_file, capsys):
    assert main(["oncall", "who", "--at", "tomorrow"]) == 2
    assert capsys.readouterr().err.startswith("flower: --at is 'tomorrow'; allowed: a time")
    settings_file.write_text(f"dbt: {{project_dir: {DEMO_DBT_PROJECT_DIR}}}\n")
    assert main(["oncall", "who"]) == 2
    assert "no alerts section" in capsys.readouterr().err
