"""A backfill request checked before anything is launched: model, date range, size, reason.

Every refusal names the field, the value and what is allowed, so the page and the CLI can show
it as it is. A range is given by the partition keys of its first and last partitions, inclusive:
days for a daily model, Mondays for a weekly one, first days of the month for a monthly one; for
an hourly model `from`/`to` may also be days (`to` then means the last hour of that day).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dagster import TimeWindowPartitionsDefinition

from flower_dagster.admin.selection import Model
from flower_dagster.partitions import Grain, partitions_for, place_key
from flower_dagster.settings import Settings

MAX_REASON_LENGTH = 500
_KEY_WORDS = {
    Grain.HOURLY: "an hour, YYYY-MM-DD-HH:00 (or a day, YYYY-MM-DD)",
    Grain.DAILY: "a day, YYYY-MM-DD",
    Grain.WEEKLY: "a Monday, YYYY-MM-DD (weeks start on Monday)",
    Grain.MONTHLY: "the first day of a month, YYYY-MM-01",
}


class Refused(Exception):
    """A request the admin refuses: HTTP status, the field at fault and the message."""

    def __init__(self, status: int, field: str, message: str, allowed: str | None = None):
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message
        self.allowed = allowed

    def as_json(self) -> dict[str, Any]:
        body = {"error": self.message, "field": self.field}
        if self.allowed:
            body["allowed"] = self.allowed
        return body


@dataclass(frozen=True)
class BackfillPlan:
    """What will be launched: one model, its partition keys, who and why."""

    model: str
    grain: Grain
    partition_keys: tuple[str, ...]
    reason: str
    # The author asks that missing or failed inputs be backfilled first, in the same backfill.
    include_inputs: bool = False

    @property
    def first(self) -> str:
        return self.partition_keys[0]

    @property
    def last(self) -> str:
        return self.partition_keys[-1]


def partitions_of(model: Model, settings: Settings) -> TimeWindowPartitionsDefinition:
    assert model.grain is not None, f"{model.name} is not partitioned"
    return partitions_for(
        model.grain, settings.partition_start, settings.timezone, settings.partition_end
    )


def partition_span(model: Model, settings: Settings) -> tuple[str | None, str | None]:
    """The first and last partition keys of the model that exist now."""
    partitions = partitions_of(model, settings)
    return partitions.get_first_partition_key(), partitions.get_last_partition_key()


FIELDS = ("model", "from", "to", "reason", "include_inputs")


def plan_backfill(
    body: Any,
    mine: Mapping[str, Model],
    all_models: Mapping[str, Model],
    settings: Settings,
    *,
    need_reason: bool = True,
) -> BackfillPlan:
    """Check a request body {model, from, to, reason, include_inputs}; raise Refused for the
    first problem. A preview (`need_reason=False`) needs no reason.

    Unknown model: 404; a model not among `mine`: 403; anything else wrong: 422.
    """
    if not isinstance(body, Mapping):
        raise Refused(
            400, "body", "the request body is not a JSON object", "{model, from, to, reason}"
        )
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise Refused(422, unknown[0], f"unknown field {unknown[0]!r}", ", ".join(FIELDS))
    include_inputs = body.get("include_inputs", False)
    if not isinstance(include_inputs, bool):
        raise Refused(422, "include_inputs", "include_inputs is not true or false", "true, false")
    name = body.get("model")
    yours = ", ".join(mine) or "none: ask the platform team to add you to a group"
    if not isinstance(name, str) or not name:
        raise Refused(422, "model", "model is missing", f"one of your models: {yours}")
    if name not in all_models:
        raise Refused(404, "model", f"unknown model {name!r}", f"one of your models: {yours}")
    if name not in mine:
        raise Refused(
            403,
            "model",
            f"you may not backfill {name!r} (owner {all_models[name].owner or '-'})",
            f"one of your models: {yours}",
        )
    model = mine[name]
    if model.grain is None:
        raise Refused(422, "model", f"{name} is not partitioned", "a partitioned model")
    reason = body.get("reason")
    if not need_reason and not reason:
        reason = "preview"
    if not isinstance(reason, str) or not reason.strip():
        raise Refused(
            422,
            "reason",
            "reason is missing",
            "a short reason, e.g. 'orders of 2024-01-09 reloaded'",
        )
    if len(reason) > MAX_REASON_LENGTH:
        raise Refused(
            422, "reason", f"reason has {len(reason)} characters", f"at most {MAX_REASON_LENGTH}"
        )
    partitions = partitions_of(model, settings)
    first = _key(model, partitions, "from", body.get("from"), settings, end=False)
    last = _key(model, partitions, "to", body.get("to"), settings, end=True)
    if partitions.time_window_for_partition_key(last).start < (
        partitions.time_window_for_partition_key(first).start
    ):
        raise Refused(
            422,
            "to",
            f"to ({body.get('to')}) is before from ({body.get('from')})",
            "a 'to' on or after 'from'",
        )
    limit = settings.admin.max_partitions
    keys = _keys_between(partitions, first, last, at_most=limit + 1)
    if len(keys) > limit:
        raise Refused(
            422,
            "to",
            f"{_count(partitions, first, last)} partitions of {name} from {first} to {last} is "
            f"above the limit of {limit} per backfill",
            f"at most {limit} partitions (admin.max_partitions): split the range",
        )
    return BackfillPlan(name, model.grain, tuple(keys), reason.strip(), include_inputs)


def _count(partitions: TimeWindowPartitionsDefinition, first: str, last: str) -> int:
    keys = partitions.get_partition_keys()
    return keys.index(last) - keys.index(first) + 1


def _keys_between(
    partitions: TimeWindowPartitionsDefinition, first: str, last: str, at_most: int
) -> list[str]:
    """The keys from first to last, inclusive; no more than `at_most` of them."""
    keys: list[str] = []
    window = partitions.time_window_for_partition_key(first)
    stop = partitions.time_window_for_partition_key(last).start
    while window is not None and window.start <= stop and len(keys) < at_most:
        keys.append(partitions.get_partition_key_for_timestamp(window.start.timestamp()))
        window = partitions.get_next_partition_window(window.end)
    return keys


def _key(
    model: Model,
    partitions: TimeWindowPartitionsDefinition,
    field: str,
    value: Any,
    settings: Settings,
    *,
    end: bool,
) -> str:
    assert model.grain is not None
    first, last = partitions.get_first_partition_key(), partitions.get_last_partition_key()
    span = f"{first} to {last}" if first and last else "none yet"
    allowed = f"{_KEY_WORDS[model.grain]}, from {span} ({settings.timezone})"
    if not isinstance(value, str) or not value.strip():
        raise Refused(422, field, f"{field} is missing", allowed)
    value = value.strip()
    key = value
    if model.grain is Grain.HOURLY and len(value) == 10:
        key = f"{value}-23:00" if end else f"{value}-00:00"
    placed = place_key(partitions, key)
    if not placed.valid:
        raise Refused(422, field, f"{field} is {value!r}, not a valid date", allowed)
    if first is None or last is None:
        raise Refused(422, field, f"{model.name} has no partitions yet", allowed)
    if placed.containing != key:
        raise Refused(
            422,
            field,
            f"{field} is {value}, not the start of a {model.grain} partition of "
            f"{model.name}; the partition that contains it is {placed.containing}",
            allowed,
        )
    if placed.before_first:
        raise Refused(
            422,
            field,
            f"{field} is {value}, before the first partition of {model.name} ({first})",
            allowed,
        )
    if placed.after_last:
        raise Refused(
            422,
            field,
            f"{field} is {value}, after the last partition of "
            f"{model.name} ({last}: a partition exists once its window has ended)",
            allowed,
        )
    return key
