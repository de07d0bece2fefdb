"""dbt selectors resolved against the manifest: which models a group of people may backfill.

The access file names models the way dbt does (`dbt ls -s ...`), by what the models say about
themselves, so a new model of a team is covered without editing the access file:

| selector | matches |
| --- | --- |
| `owner:commerce` | `meta.owner` is `commerce` (also written `team:commerce`) |
| `group:finance` | the Dagster group: the dbt group, else the model's folder (`marts`) |
| `tag:nightly` | a dbt tag of the model |
| `path:models/marts` | the model's file is in that folder (or is that file) |
| `fqn:marts`, `marts`, `fct_orders` | dbt's fqn: a model name or a folder prefix |
| `config.meta.domain:sales` | any `meta` key of the model |

Values may use shell wildcards (`tag:finance_*`); `*` alone matches every model. Graph operators
(`+model`, `@model`) are not supported: access never follows lineage silently.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from flower_dagster.dbt.models import read_grains
from flower_dagster.dbt.translator import FlowerTranslator
from flower_dagster.partitions import Grain

METHODS = ("owner", "group", "tag", "path", "fqn", "config.meta.<key>")


@dataclass(frozen=True)
class Model:
    """A dbt model as the admin shows it."""

    name: str  # also its Dagster asset key
    unique_id: str
    grain: Grain | None
    owner: str | None  # meta.owner as written (`commerce`, `team:commerce`, an email)
    group: str  # the Dagster group
    tags: tuple[str, ...]
    path: str  # original_file_path, e.g. models/marts/fct_orders.sql
    fqn: tuple[str, ...]
    meta: Mapping[str, Any]
    description: str = ""


@dataclass(frozen=True)
class Selector:
    method: str  # owner, group, tag, path, fqn, config.meta.<key>
    value: str

    def __str__(self) -> str:
        return f"{self.method}:{self.value}"


def parse_selector(text: Any) -> Selector:
    """`owner:commerce` -> Selector; raises ValueError saying what is allowed."""
    allowed = (
        "a dbt selector: owner:, group:, tag:, path:, fqn: or config.meta.<key>: and a value, "
        "or a model name or folder (no graph operators + or @)"
    )
    if not isinstance(text, str) or not text.strip():
        raise ValueError(allowed)
    text = text.strip()
    if text.startswith(("+", "@")) or text.endswith("+") or " " in text:
        raise ValueError(allowed)
    if text == "*":
        return Selector("fqn", "*")
    method, sep, value = text.partition(":")
    if not sep:
        return Selector("fqn", text)
    if method == "owner" and value:
        # `owner:team:commerce` and `owner:commerce` say the same.
        return Selector("owner", value.removeprefix("team:"))
    if method in ("group", "tag", "path", "fqn") and value:
        return Selector(method, value.rstrip("/") if method == "path" else value)
    if method.startswith("config.meta.") and len(method) > len("config.meta.") and value:
        return Selector(method, value)
    raise ValueError(allowed)


def matches(model: Model, selector: Selector) -> bool:
    value = selector.value
    method = selector.method
    if method == "owner":
        owner = (model.owner or "").strip()
        return bool(owner) and fnmatch.fnmatchcase(owner.removeprefix("team:"), value)
    if method == "group":
        return fnmatch.fnmatchcase(model.group, value)
    if method == "tag":
        return any(fnmatch.fnmatchcase(tag, value) for tag in model.tags)
    if method == "path":
        return (
            fnmatch.fnmatchcase(model.path, value)
            or model.path.startswith(value + "/")
            or fnmatch.fnmatchcase(model.path, value + "/*")
        )
    if method == "fqn":
        return _fqn_matches(model, value)
    key = method.removeprefix("config.meta.")
    found = model.meta.get(key)
    values = found if isinstance(found, list) else [found]
    return any(v is not None and fnmatch.fnmatchcase(str(v), value) for v in values)


def _fqn_matches(model: Model, value: str) -> bool:
    if value == "*" or fnmatch.fnmatchcase(model.name, value):
        return True
    parts = value.split(".")
    # With or without the project name in front, as dbt does: `marts` or `flower_demo.marts`.
    for fqn in (model.fqn, model.fqn[1:]):
        if len(parts) <= len(fqn) and all(
            fnmatch.fnmatchcase(fqn[i], part) for i, part in enumerate(parts)
        ):
            return True
    return False


def select(models: Iterable[Model], selectors: Iterable[Selector]) -> set[str]:
    """The names of the models any selector matches (a union, as dbt's space-separated list)."""
    chosen = tuple(selectors)
    return {m.name for m in models if any(matches(m, s) for s in chosen)}


def models_from_manifest(manifest: Mapping[str, Any]) -> dict[str, Model]:
    """Every dbt model of the manifest, by name (its Dagster asset key)."""
    grains = read_grains(manifest)
    translator = FlowerTranslator(grains)
    models: dict[str, Model] = {}
    for uid, node_grain in grains.items():
        node = manifest["nodes"][uid]
        if node.get("resource_type") != "model":
            continue
        config = node.get("config") or {}
        meta = config.get("meta") or node.get("meta") or {}
        owner = meta.get("owner")
        name = translator.get_asset_key(node).to_user_string()
        models[name] = Model(
            name=name,
            unique_id=uid,
            grain=node_grain.grain,
            owner=str(owner).strip() if owner else None,
            group=translator.get_group_name(node) or "default",
            tags=tuple(node.get("tags") or config.get("tags") or ()),
            path=node.get("original_file_path") or "",
            fqn=tuple(node.get("fqn") or ()),
            meta=meta,
            description=(node.get("description") or "").strip(),
        )
    return models
