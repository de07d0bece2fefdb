"""`flower oncall who | schedule | report`: the rotation and the after-hours report."""

from __future__ import annotations

import argparse
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flower_dagster.errors import FlowerError, SettingsError
from flower_dagster.settings import load_settings


def register(commands: argparse._SubParsersAction) -> None:
    """Add `oncall` and its actions to the `flower` command's subcommands."""
    oncall = commands.add_parser("oncall", help="who is on call, the rotation, after-hours report")
    actions = oncall.add_subparsers(dest="oncall_command", required=True, metavar="ACTION")
    who = actions.add_parser("who", help="who is on call now (or at --at)")
    who.add_argument(
        "--at",
        default=None,
        help="a time, e.g. '2026-12-24 03:00' (in schedule.timezone) or ISO with an offset",
    )
    who.set_defaults(handler=_who)
    table = actions.add_parser("schedule", help="the on-call days ahead, as a table")
    table.add_argument("--days", type=int, default=14, help="how many days (default 14)")
    table.add_argument("--from", dest="first", default=None, help="first day (default today)")
    table.set_defaults(handler=_schedule)
    report = actions.add_parser(
        "report", help="the after-hours report (markdown) from the Dagster instance"
    )
    report.add_argument("--since", required=True, help="first day, YYYY-MM-DD")
    report.add_argument("--until", required=True, help="last day (included), YYYY-MM-DD")
    report.set_defaults(handler=_report)


def _loaded():
    from flower_dagster.alerts.oncall import load_rotation
    from flower_dagster.alerts.people import load_directory

    settings = load_settings()
    if settings.alerts is None:
        raise SettingsError(
            f"{settings.source.name if settings.source else 'settings'}: no alerts section; "
            "allowed: an alerts section naming people_file and oncall_file (docs/alerts.md)"
        )
    directory = load_directory(settings.alerts.people_file)
    return (
        settings,
        directory,
        load_rotation(settings.alerts.oncall_file, directory, settings.timezone),
    )


def _instant(text: str | None, zone: ZoneInfo) -> datetime:
    if text is None:
        return datetime.now(zone)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise FlowerError(
            f"--at is {text!r}; allowed: a time such as '2026-12-24 03:00' or "
            "'2026-12-24T03:00+09:00'"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise FlowerError(f"{option} is {text!r}; allowed: a date, YYYY-MM-DD") from None


def _who(args: argparse.Namespace) -> int:
    from flower_dagster.alerts.oncall import oncall_for

    settings, directory, rotation = _loaded()
    at = _instant(args.at, settings.zone)
    shift = oncall_for(at, rotation)
    print(f"on call at {at.astimezone(settings.zone):%a %Y-%m-%d %H:%M %Z}:")
    for name in shift.people:
        person = directory.person(name)
        print(f"  {name}  <@{person.slack_id if person else '?'}>")
    print(f"shift {shift.starts:%a %Y-%m-%d %H:%M} → {shift.ends:%a %Y-%m-%d %H:%M %Z}")
    if shift.note:
        print(f"({shift.note})")
    return 0


def _schedule(args: argparse.Namespace) -> int:
    from flower_dagster.alerts.oncall import oncall_day, render_schedule, schedule

    settings, _, rotation = _loaded()
    if args.days < 1 or args.days > 366:
        raise FlowerError(f"--days is {args.days}; allowed: a whole number of days from 1 to 366")
    first = (
        _day(args.first, "--from")
        if args.first
        else oncall_day(datetime.now(settings.zone), rotation)
    )
    print(render_schedule(schedule(rotation, first, args.days)))
    return 0


def _report(args: argparse.Namespace) -> int:
    from flower_dagster.alerts.report import incidents, render_report, window
    from flower_dagster.impact import instance_from_environment

    settings, _, rotation = _loaded()
    since, until = _day(args.since, "--since"), _day(args.until, "--until")
    if until < since:
        raise FlowerError(f"--until is {until}; allowed: a day on or after --since ({since})")
    assert settings.alerts is not None
    start, end = window(since, until, settings.zone)
    with instance_from_environment() as (instance, why):
        if instance is None:
            raise FlowerError(f"no Dagster instance to read: {why}")
        rows = incidents(
            instance,
            start,
            end,
            settings.alerts,
            rotation,
            settings.zone,
            settings.dbt_project_dir / "target",
        )
    print(
        render_report(
            rows, since, until, settings.alerts, settings.timezone, settings.alerts.ui_base_url
        )
    )
    return 0
