"""The settings flower-dagster runs with: `flower.yaml`, validated once into one object.

The file holds the batch hour and time zone, the partition start, the dbt project, the
automation interval, the warehouse pool and the environments (dev, stage, prod), each with its
dbt target and whether schedules, automation and alerts run there. Environment variables override
single values (FLOWER_ENV picks the environment, FLOWER_SCHEDULE_HOUR the hour; see
`ENV_OVERRIDES`). Every mistake stops loading with one line naming the file or variable, the
key, the value and what is allowed; all mistakes are listed at once.

The file is found as other tools find theirs: FLOWER_SETTINGS_FILE, else flower.yaml in the
current directory; its relative paths resolve against its folder (docs/settings.md).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from flower_dagster.errors import SettingsError

# The source checkout this module runs from: its demo project and dagster_home template, for
# tests and the demo only. An installed flower reads the team's files from the settings file's
# folder (or the current directory), never from here.
REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"
# Looked for in the current directory, as git, ruff or dbt find their own files.
SETTINGS_FILE_NAME = "flower.yaml"
SETTINGS_FILE_VARIABLE = "FLOWER_SETTINGS_FILE"
DEFAULT_DBT_PROJECT_DIR = "dbt_project"

DEFAULT_TIMEZONE = "Asia/Seoul"
DEFAULT_PARTITION_START = date(2024, 1, 1)
DEFAULT_SCHEDULE_HOUR = 7
# A daily partition not materialized this many hours after the batch hour is late.
DEFAULT_LATE_AFTER_HOURS = 3
# Every dbt asset claims a slot in this Dagster concurrency pool. The instance limits pools to
# one slot by default (dagster_home/dagster.yaml), which serializes writes to DuckDB.
DEFAULT_WAREHOUSE_POOL = "warehouse"
# How many dbt steps may write at once, by the adapter of the target: DuckDB has one writer; an
# adapter not listed gets one slot until the settings say more (e.g. `spark: 4`).
DEFAULT_WAREHOUSE_SLOTS = {"duckdb": 1}
# How often the daemon evaluates the repair rule (Dagster's default for sensors is 30 s).
DEFAULT_AUTOMATION_INTERVAL_SECONDS = 30
DEFAULT_ENVIRONMENT = "dev"
# Alerts (flower_dagster/alerts): Slack's Web API, the Dagster UI the alert links to, and the
# working hours the after-hours report counts from (in schedule.timezone).
DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_UI_BASE_URL = "http://127.0.0.1:3000"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# The backfill admin (flower_dagster/admin): loopback by default, Dagster on its internal address.
DEFAULT_ADMIN_HOST = "127.0.0.1"
DEFAULT_ADMIN_PORT = 3100
DEFAULT_DAGSTER_GRAPHQL_URL = "http://127.0.0.1:3000/graphql"
DEFAULT_MAX_PARTITIONS = 93
PRODUCTION = "prod"

# Environment variable -> the key of flower.yaml it overrides.
ENV_OVERRIDES: dict[str, str] = {
    "FLOWER_SCHEDULE_HOUR": "schedule.hour",
    "FLOWER_LATE_AFTER_HOURS": "schedule.late_after_hours",
    "FLOWER_TIMEZONE": "schedule.timezone",
    "FLOWER_PARTITION_START": "partitions.start",
    "FLOWER_PARTITION_END": "partitions.end",
    "FLOWER_DBT_PROJECT_DIR": "dbt.project_dir",
    "FLOWER_DBT_PROFILES_DIR": "dbt.profiles_dir",
    "FLOWER_AUTOMATION_INTERVAL_SECONDS": "automation.interval_seconds",
    "FLOWER_WAREHOUSE_POOL": "warehouse.pool",
}

# What is allowed, per key, in the words of the error messages.
ALLOWED: dict[str, str] = {
    "schedule.hour": "a whole hour from 0 to 23, e.g. 5, 7 or 8",
    "schedule.late_after_hours": "a whole number of hours from 1 to 23",
    "schedule.timezone": "an IANA time zone name such as 'Asia/Seoul', 'UTC' or 'Europe/Berlin'",
    "partitions.start": "a date (YYYY-MM-DD) that is not in the future, e.g. 2024-01-01",
    "dbt.project_dir": "a folder that holds dbt_project.yml",
    "dbt.profiles_dir": "a folder that holds profiles.yml (or leave it out for dbt's default)",
    "automation.interval_seconds": "a whole number of seconds from 1 to 3600",
    "warehouse.pool": "a non-empty pool name",
    "warehouse.slots": "a mapping of dbt adapter types to whole numbers of slots from 1 to 64, "
    "e.g. {duckdb: 1, spark: 4}",
    "environments": "a mapping of environment names to {target, schedules, automation, alerts}",
    "target": "a target name of the dbt profile (or leave it out for the profile's default)",
    "schedules": "true or false",
    "automation": "true or false",
    "alerts": "true or false",
    "alerts.slack_api_url": "an http(s) URL of the Slack Web API, e.g. https://slack.com/api/",
    "alerts.ui_base_url": "the http(s) URL of the Dagster UI, e.g. http://127.0.0.1:3000",
    "alerts.platform_channel": "a Slack channel id or name, e.g. C0123ABCD or #data-platform",
    "alerts.people_file": "a YAML file of owners and their Slack ids, e.g. people.yaml",
    "alerts.oncall_file": "a YAML file of the on-call rotation, e.g. oncall.yaml",
    "alerts.working_hours": "an end after the start, e.g. {start: '09:00', end: '18:00'}",
    "alerts.working_hours.days": f"a list of weekdays out of {', '.join(WEEKDAYS)}",
    "alerts.working_hours.start": "a time of day as 'HH:MM' (quoted) or a whole hour 0-24",
    "alerts.working_hours.end": "a time of day as 'HH:MM' (quoted) or a whole hour 0-24, "
    "after start",
    "admin.host": "an address to bind, e.g. 127.0.0.1 (loopback: the default)",
    "admin.port": "a TCP port from 1 to 65535, e.g. 3100",
    "admin.dagster_graphql_url": "the http(s) URL of Dagster's GraphQL endpoint, "
    "e.g. http://127.0.0.1:3000/graphql",
    "admin.access_file": "a YAML file of people, groups and their models, e.g. access.yaml",
    "admin.max_partitions": "a whole number of partitions per backfill from 1 to 10000",
    "admin.audit_log": "a file the admin service appends its audit lines to, e.g. "
    "admin-audit.jsonl",
    "admin.trust_proxy_header": "an HTTP header name set by an authenticating proxy, e.g. "
    "X-Forwarded-User (or leave it out: tokens only)",
    "lint": "a mapping with select, ignore and per_file_ignores (docs/lint.md)",
    "lint.select": "a list of lint rule codes or prefixes, e.g. [FL001, FL003] or [FL]",
    "lint.ignore": "a list of lint rule codes or prefixes, e.g. [FL006]",
    "lint.per_file_ignores": "a mapping of path globs to rule codes, e.g. "
    "{'models/legacy/*': [FL006]}",
    "admin.trusted_proxies": "a list of the authenticating proxy's IP addresses or networks, "
    "e.g. [10.0.4.7, 10.0.8.0/24]; required with admin.trust_proxy_header",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=False, frozen=True)


def _against_base(value: Path, info: ValidationInfo) -> Path:
    """A path of the file, relative to the file's folder (`base` of the validation context);
    defaults are validated too (validate_default), so they resolve against the same folder.

    Without a context (a section built in code) the path stays as given.
    """
    base = (info.context or {}).get("base")
    return _resolve(str(value), base) if base is not None else value


def _not_empty(value: Any) -> Any:
    if value == "":
        raise ValueError("empty")
    return value


class _Schedule(_Strict):
    hour: int = Field(DEFAULT_SCHEDULE_HOUR, ge=0, le=23, strict=True)
    late_after_hours: int = Field(DEFAULT_LATE_AFTER_HOURS, ge=1, le=23, strict=True)
    timezone: str = DEFAULT_TIMEZONE

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("no such time zone") from None
        return value


class _Partitions(_Strict):
    start: date = DEFAULT_PARTITION_START
    # The last day with partitions, inclusive; none: partitions go on to the last ended window.
    end: date | None = None

    @field_validator("start")
    @classmethod
    def _not_in_future(cls, value: date) -> date:
        if value > date.today():
            raise ValueError("in the future")
        return value

    @model_validator(mode="after")
    def _end_after_start(self) -> _Partitions:
        if self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class _Dbt(_Strict):
    # As written; load_settings checks them into Settings.dbt_project_dir and dbt_profiles_dir.
    project_dir: str | None = None
    profiles_dir: str | None = None


class _Automation(_Strict):
    interval_seconds: int = Field(DEFAULT_AUTOMATION_INTERVAL_SECONDS, ge=1, le=3600, strict=True)


class _Warehouse(_Strict):
    pool: str = Field(DEFAULT_WAREHOUSE_POOL, min_length=1)
    slots: dict[str, Annotated[int, Field(ge=1, le=64, strict=True)]] = Field(
        default_factory=lambda: dict(DEFAULT_WAREHOUSE_SLOTS)
    )


class Environment(_Strict):
    """One environment of flower.yaml: its dbt target and what runs in it."""

    target: str | None = None
    schedules: bool = Field(False, strict=True)
    automation: bool = Field(True, strict=True)
    alerts: bool = Field(False, strict=True)
    # The key of the environments mapping, set by Settings: not a key inside an entry.
    _name: str = PrivateAttr(DEFAULT_ENVIRONMENT)

    @property
    def name(self) -> str:
        return self._name

    @classmethod
    def named(cls, name: str, **values: Any) -> Environment:
        environment = cls(**values)
        environment._name = name
        return environment


def _time_of_day(value: Any) -> time | None:
    """'HH:MM' ('09:30'), a whole hour (9) or a time; 24 or '24:00' is midnight, the day's end."""
    if isinstance(value, time):
        return value
    if isinstance(value, bool):
        raise ValueError("not a time of day")
    if isinstance(value, int):
        hours, minutes = value, 0
    elif isinstance(value, str) and value.count(":") == 1:
        hh, mm = value.split(":")
        if not (hh.isdigit() and mm.isdigit() and len(mm) == 2):
            raise ValueError("not a time of day")
        hours, minutes = int(hh), int(mm)
    else:
        raise ValueError("not a time of day")
    if not (0 <= hours <= 24 and 0 <= minutes < 60) or hours * 60 + minutes > 24 * 60:
        raise ValueError("not a time of day")
    return None if hours == 24 else time(hours, minutes)


class WorkingHours(_Strict):
    """The hours the after-hours report counts from, in schedule.timezone."""

    days: list[str] = Field(default_factory=lambda: list(WEEKDAYS[:5]), min_length=1)
    start: time | None = Field(time(9), validate_default=True)
    end: time | None = Field(time(18), validate_default=True)  # None: until midnight

    @field_validator("days")
    @classmethod
    def _weekdays(cls, value: list[str]) -> list[str]:
        if any(day not in WEEKDAYS for day in value):
            raise ValueError("unknown weekday")
        return value

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock(cls, value: Any) -> time | None:
        return _time_of_day(value)

    @model_validator(mode="after")
    def _end_after_start(self) -> WorkingHours:
        # A start of None is 24:00: no end comes after it.
        if self.start is None or (self.end is not None and self.end <= self.start):
            raise PydanticCustomError("end_before_start", "end is not after start")
        return self


class AlertSettings(_Strict):
    """The alerts section: where alerts go and what counts as working hours."""

    slack_api_url: str = Field(DEFAULT_SLACK_API_URL, pattern=r"^https?://\S+$")
    ui_base_url: str = Field(DEFAULT_UI_BASE_URL, pattern=r"^https?://\S+$")
    platform_channel: str = Field(pattern=r"^#?[A-Za-z0-9][A-Za-z0-9._-]*$")
    people_file: Path = Field(Path("people.yaml"), validate_default=True)
    oncall_file: Path = Field(Path("oncall.yaml"), validate_default=True)
    working_hours: WorkingHours = Field(default_factory=WorkingHours)

    resolve_files = field_validator("people_file", "oncall_file")(_against_base)

    @field_validator("ui_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")  # links append "/runs/..."

    @property
    def working_days(self) -> tuple[int, ...]:
        """Monday is 0, as datetime.weekday()."""
        return tuple(sorted(WEEKDAYS.index(day) for day in self.working_hours.days))

    @property
    def working_start(self) -> time:
        assert self.working_hours.start is not None  # checked: a start before the end
        return self.working_hours.start

    @property
    def working_end(self) -> time | None:
        return self.working_hours.end


class AdminSettings(_Strict):
    """The admin section: the backfill admin service (flower_dagster/admin, docs/backfills.md)."""

    host: str = Field(DEFAULT_ADMIN_HOST, min_length=1)
    port: int = Field(DEFAULT_ADMIN_PORT, ge=1, le=65535, strict=True)
    dagster_graphql_url: str = Field(DEFAULT_DAGSTER_GRAPHQL_URL, pattern=r"^https?://\S+$")
    access_file: Path = Field(Path("access.yaml"), validate_default=True)
    max_partitions: int = Field(DEFAULT_MAX_PARTITIONS, ge=1, le=10000, strict=True)
    audit_log: Path = Field(Path("admin-audit.jsonl"), validate_default=True)
    # None: only tokens identify a person.
    trust_proxy_header: str | None = Field(None, pattern=r"^[A-Za-z0-9-]+$")
    # The addresses the header is taken from: anyone else who reaches the port could set it.
    trusted_proxies: list[IPvAnyNetwork] | None = Field(None, validate_default=True)

    present = field_validator("access_file", "audit_log", mode="before")(_not_empty)
    resolve_files = field_validator("access_file", "audit_log")(_against_base)

    @field_validator("trusted_proxies")
    @classmethod
    def _required_with_the_header(
        cls, value: list[IPvAnyNetwork] | None, info: ValidationInfo
    ) -> list[IPvAnyNetwork] | None:
        if info.data.get("trust_proxy_header") and not value:
            raise PydanticCustomError("missing", "required with admin.trust_proxy_header")
        return value


class LintSettings(_Strict):
    """The lint section: which `flower lint` rules run, and where not (docs/lint.md). Codes are
    checked against the rule catalog when the lint runs (flower_dagster/lint/selection.py)."""

    select: list[str] | None = None  # None: every rule
    ignore: list[str] = Field(default_factory=list)
    per_file_ignores: dict[str, list[str]] = Field(default_factory=dict)


def _default_environments() -> dict[str, dict[str, Any]]:
    return {"dev": {}, "stage": {}, "prod": {"schedules": True, "alerts": True}}


class Settings(_Strict):
    """flower.yaml as validated, with what load_settings resolved from it and the environment.

    The sections are the file's (`settings.schedule.hour`); the flat names below are the ones
    the code reads. Defaults given as mappings are validated like the file, so their paths
    resolve against the same folder.
    """

    schedule: _Schedule = Field(default_factory=_Schedule)
    partitions: _Partitions = Field(default_factory=_Partitions)
    dbt: _Dbt = Field(default_factory=_Dbt)
    automation: _Automation = Field(default_factory=_Automation)
    warehouse: _Warehouse = Field(default_factory=_Warehouse)
    environments: dict[str, Environment] = Field(
        default_factory=_default_environments, min_length=1, validate_default=True
    )
    # Optional: without an alerts section no alert is sent (flower_dagster/alerts).
    alerts: AlertSettings | None = None
    admin: AdminSettings = Field(default_factory=dict, validate_default=True)
    # Optional: without it every lint rule runs (or pyproject's [tool.flower.lint] says).
    lint: LintSettings | None = None

    # Resolved by load_settings, not keys of the file (see FILE_KEYS).
    environment: Environment = Field(default_factory=Environment)
    dbt_project_dir: Path = Path(DEFAULT_DBT_PROJECT_DIR)
    dbt_profiles_dir: Path | None = None  # None: dbt's default (~/.dbt)
    dbt_target: str | None = None  # None: the profile's default target
    source: Path | None = None  # None: no settings file, every key has its default

    @field_validator("environments")
    @classmethod
    def _named(cls, value: dict[str, Environment]) -> dict[str, Environment]:
        for name, environment in value.items():
            environment._name = name
        return value

    @property
    def schedule_hour(self) -> int:
        return self.schedule.hour

    @property
    def late_after_hours(self) -> int:
        return self.schedule.late_after_hours

    @property
    def timezone(self) -> str:
        return self.schedule.timezone

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.schedule.timezone)

    @property
    def partition_start(self) -> date:
        return self.partitions.start

    @property
    def partition_end(self) -> date | None:
        return self.partitions.end

    @property
    def automation_interval_seconds(self) -> int:
        return self.automation.interval_seconds

    @property
    def warehouse_pool(self) -> str:
        return self.warehouse.pool

    @property
    def warehouse_slots(self) -> Mapping[str, int]:
        return self.warehouse.slots

    def slots_for(self, adapter_type: str | None) -> int:
        """The warehouse pool's slots for a target of this adapter (1 unless set)."""
        return self.warehouse.slots.get(adapter_type or "", 1)


# The top-level keys of flower.yaml: the sections, not what loading resolves.
FILE_KEYS = (
    "schedule",
    "partitions",
    "dbt",
    "automation",
    "warehouse",
    "environments",
    "alerts",
    "admin",
    "lint",
)


def load_settings(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Settings:
    """Read flower.yaml and the FLOWER_* overrides from `environ` (default: os.environ).

    The file is FLOWER_SETTINGS_FILE if set, else flower.yaml in `cwd` (default: the current
    directory) if there is one; without a file every key has its default. Relative paths in
    the file resolve against its folder, defaults without a file against `cwd`.
    """
    env = os.environ if environ is None else environ
    here = (cwd or Path.cwd()).resolve()
    path = _settings_path(env, here)
    raw = read_yaml_mapping(path) if path else {}
    label = path.name if path else "settings"
    sources: dict[str, str] = {}
    for variable, key in ENV_OVERRIDES.items():
        value = env.get(variable)
        if value:
            _set(raw, key, _coerce(value))
            sources[key] = variable
    base = path.parent if path else here
    # Resolved fields are no keys of the file: reported like any unknown key.
    resolved = [
        {"type": "extra_forbidden", "loc": (key,), "msg": "", "input": raw.pop(key)}
        for key in list(raw)
        if key in Settings.model_fields and key not in FILE_KEYS
    ]
    try:
        parsed = Settings.model_validate(raw, context={"base": base})
    except ValidationError as error:
        raise SettingsError(_describe([*error.errors(), *resolved], label, sources)) from None
    if resolved:
        raise SettingsError(_describe(resolved, label, sources))

    if parsed.schedule.hour + parsed.schedule.late_after_hours > 23:
        hour_source = sources.get("schedule.hour", f"{label}: schedule.hour")
        late_source = sources.get("schedule.late_after_hours", "schedule.late_after_hours")
        raise SettingsError(
            f"{hour_source} is {parsed.schedule.hour} and {late_source} is "
            f"{parsed.schedule.late_after_hours}: the late-data deadline would pass midnight; "
            "allowed: hour + late_after_hours of at most 23"
        )
    _guard_production(parsed.environments, label)
    env_name = env.get("FLOWER_ENV") or DEFAULT_ENVIRONMENT
    if env_name not in parsed.environments:
        raise SettingsError(
            f"FLOWER_ENV is {env_name!r}; allowed: {', '.join(parsed.environments)} "
            f"(the environments of {label})"
        )
    environment = parsed.environments[env_name]
    project_dir = _project_dir(parsed.dbt.project_dir, base, sources, label, path is None)
    profiles_dir = _profiles_dir(parsed.dbt.profiles_dir, project_dir, base, sources, label)
    return parsed.model_copy(
        update={
            "environment": environment,
            "dbt_project_dir": project_dir,
            "dbt_profiles_dir": profiles_dir,
            # An environment's target names a target of the file's own dbt project: a project
            # chosen by FLOWER_DBT_PROJECT_DIR runs its profile's default unless FLOWER_DBT_TARGET.
            "dbt_target": env.get("FLOWER_DBT_TARGET")
            or (None if "dbt.project_dir" in sources else environment.target),
            "source": path,
        }
    )


def _guard_production(environments: Mapping[str, Environment], label: str) -> None:
    """No other environment may name prod's dbt target: dev and stage never write prod data."""
    prod = environments.get(PRODUCTION)
    if prod is None or prod.target is None:
        return
    for name, chosen in environments.items():
        if name != PRODUCTION and chosen.target == prod.target:
            raise SettingsError(
                f"{label}: environments.{name}.target is {chosen.target!r}, the target of "
                f"{PRODUCTION}; allowed: a target of its own, so {name} never writes "
                "production data"
            )


def _settings_path(env: Mapping[str, str], here: Path) -> Path | None:
    explicit = env.get(SETTINGS_FILE_VARIABLE)
    if explicit:
        path = (here / Path(explicit).expanduser()).resolve()
        if not path.is_file():
            raise SettingsError(f"{SETTINGS_FILE_VARIABLE}={explicit}: no such file")
        return path
    found = here / SETTINGS_FILE_NAME
    return found if found.is_file() else None


def _no_settings_file(here: Path) -> str:
    """Why nothing was found, and the two ways to point flower at its settings."""
    return (
        f"no {SETTINGS_FILE_NAME} in {here} and {SETTINGS_FILE_VARIABLE} is not set; run flower "
        f"from the folder that holds {SETTINGS_FILE_NAME}, or set "
        f"{SETTINGS_FILE_VARIABLE}=/path/to/{SETTINGS_FILE_NAME}"
    )


def read_yaml_mapping(path: Path, what: str = "settings", label: str | None = None) -> dict:
    """A YAML file that must hold a mapping; a mistake names the file (and the line)."""
    name = label or path.name
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise SettingsError(f"{name}{where}: not valid YAML ({error})") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{name}: expected a mapping of {what}, got {data!r}")
    return data


def _set(raw: dict[str, Any], key: str, value: Any) -> None:
    section, name = key.split(".")
    if not isinstance(raw.get(section), dict):
        raw[section] = {}
    raw[section][name] = value


def _coerce(value: str) -> Any:
    """Environment values are text; whole numbers become ints so `7` means the hour 7."""
    stripped = value.strip()
    return int(stripped) if stripped.isdigit() else stripped


def _describe(errors: Sequence[Mapping[str, Any]], label: str, sources: Mapping[str, str]) -> str:
    lines = []
    for item in errors:
        loc = [str(part) for part in item["loc"]]
        key = ".".join(loc)
        if item["type"] == "extra_forbidden":
            parent = loc[:-1]
            allowed = _fields_at(parent)
            where = ".".join(parent) or "the top level"
            lines.append(f"{label}: unknown key {key!r} in {where}; allowed: {', '.join(allowed)}")
            continue
        generic = key if not (loc and loc[0] == "environments" and len(loc) == 3) else loc[2]
        if loc[:2] in (["warehouse", "slots"], ["admin", "trusted_proxies"]):
            generic = ".".join(loc[:2])
        allowed = ALLOWED.get(key) or ALLOWED.get(generic) or item["msg"]
        source = sources.get(key, f"{label}: {key}")
        if item["type"] == "missing":
            lines.append(f"{source} is missing; allowed: {allowed}")
            continue
        lines.append(f"{source} is {_show(item['input'])}; allowed: {allowed}")
    return (
        "\n".join(lines)
        if len(lines) == 1
        else "\n".join([f"{len(lines)} settings problems:", *(f"  - {line}" for line in lines)])
    )


def _show(value: Any) -> str:
    """A value as the person wrote it: dates in ISO form, text quoted."""
    return repr(value.isoformat()) if isinstance(value, date) else repr(value)


def _fields_at(path: list[str]) -> list[str]:
    if not path:
        return list(FILE_KEYS)
    model: type[BaseModel] = Settings
    for part in path:
        if model is Settings and part == "environments":
            return list(Environment.model_fields)
        annotation = model.model_fields[part].annotation
        # An optional section (`alerts: AlertSettings | None`) lists the fields of its model.
        annotation = next(
            (a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)),
            annotation,
        )
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            model = annotation
        else:
            return list(Environment.model_fields)
    return list(model.model_fields)


def _project_dir(
    value: str | None, base: Path, sources: Mapping[str, str], label: str, no_file: bool
) -> Path:
    source = sources.get("dbt.project_dir", f"{label}: dbt.project_dir")
    path = _resolve(value or DEFAULT_DBT_PROJECT_DIR, base)
    if no_file and not value and not (path / "dbt_project.yml").is_file():
        # Nothing says where the project is: the settings file is what is missing.
        raise SettingsError(_no_settings_file(base))
    # Not set: the default folder, named as resolved, is what is missing.
    what = f"{source} is {value!r}" if value else f"{source} is not set, so {str(path)!r}"
    if not path.is_dir():
        raise SettingsError(f"{what}: no such directory")
    if not (path / "dbt_project.yml").is_file():
        raise SettingsError(
            f"{what}: no dbt_project.yml there; allowed: {ALLOWED['dbt.project_dir']}"
        )
    return path


def _profiles_dir(
    value: str | None, project_dir: Path, base: Path, sources: Mapping[str, str], label: str
) -> Path | None:
    if not value:
        return project_dir if (project_dir / "profiles.yml").is_file() else None
    source = sources.get("dbt.profiles_dir", f"{label}: dbt.profiles_dir")
    path = _resolve(value, base)
    if not path.is_dir():
        raise SettingsError(f"{source} is {value!r}: no such directory")
    if not (path / "profiles.yml").is_file():
        raise SettingsError(
            f"{source} is {value!r}: no profiles.yml there; allowed: {ALLOWED['dbt.profiles_dir']}"
        )
    return path


def _resolve(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return (path if path.is_absolute() else base / path).resolve()
