"""dagster-dbt's asset and check specs of a project, kept on disk between loads.

Translating every dbt node into an AssetSpec (its deps, description, column schema, tags) and
every dbt test into an AssetCheckSpec is the largest single part of loading the code location:
about 1.1 s at 3,000 models, in every process that loads it (`dagster dev`'s code server, every
run worker, `dagster definitions validate` in CI). The result depends only on the manifest and
on the code that translates it, so it is kept in the project's target folder, next to the
manifest, and read back on the next load (about a third of the time).

The cache is keyed by:

- the manifest's bytes (any `dbt parse` that changes the project changes them), but for the
  time and id of the parse that wrote it;
- the dbt project's folder (dagster-dbt's metadata names it);
- the versions of Dagster and dagster-dbt, and the source of flower-dagster's modules that
  shape the specs (the translator, the grains, the call to dagster-dbt, this module).

A spec is written only if it reads back equal to what dagster-dbt built; anything the encoding
does not cover (a partitions definition, a freshness policy, metadata Dagster cannot serialize)
leaves the whole project uncached, built every time as before. Three entries of every spec's
metadata are live objects, not data (the manifest, the translator, the project): they are
attached again on reading, as are the roll-ups' automation conditions, from this load's objects.

The file is written atomically (a temporary file renamed over it), so processes loading at the
same time never read half a file; a target folder that cannot be written (a read-only image)
just means no cache. `FLOWER_SPEC_CACHE=off` turns it off.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson
from dagster import AssetCheckSpec, AssetDep, AssetKey, AssetSpec
from dagster_dbt.asset_utils import (
    DAGSTER_DBT_MANIFEST_METADATA_KEY,
    DAGSTER_DBT_PROJECT_METADATA_KEY,
    DAGSTER_DBT_TRANSLATOR_METADATA_KEY,
    DAGSTER_DBT_UNIQUE_ID_METADATA_KEY,
    get_node,
)
from dagster_dbt.dagster_dbt_translator import DagsterDbtTranslator, DbtManifestWrapper
from dagster_shared.serdes import deserialize_value, serialize_value

from flower_dagster.errors import SettingsError

ENV_VAR = "FLOWER_SPEC_CACHE"
CACHE_FILE = "flower_dagster_specs.json"
FORMAT = 1
LIVE_KEYS = (
    DAGSTER_DBT_MANIFEST_METADATA_KEY,
    DAGSTER_DBT_TRANSLATOR_METADATA_KEY,
    DAGSTER_DBT_PROJECT_METADATA_KEY,
)
# flower-dagster's modules whose code shapes the specs (the translator, the grains, the call
# to dagster-dbt, this encoding): a change to one is a new cache key.
_SHAPING_MODULES = ("translator.py", "models.py", "assets.py", "spec_cache.py")

Specs = tuple[list[AssetSpec], list[AssetCheckSpec]]


class _Uncacheable(Exception):
    """A spec the encoding does not cover: the project is built every time instead."""


def cache_enabled(environ: Mapping[str, str] | None = None) -> bool:
    """`FLOWER_SPEC_CACHE`: unset, empty or `on` keeps the cache; `off` turns it off."""
    value = (os.environ if environ is None else environ).get(ENV_VAR, "").strip().lower()
    if value in ("", "on"):
        return True
    if value == "off":
        return False
    raise SettingsError(
        f"{ENV_VAR}={value!r} is not allowed: 'on' (the default) keeps dagster-dbt's specs of "
        "the project next to its manifest between loads, 'off' builds them at every load"
    )


# Fields of the manifest's `metadata` (written first) that change at every `dbt parse`, even of
# an unchanged project, and that no spec reads: `dagster dev` parses at every load.
_VOLATILE = re.compile(
    rb'"(generated_at|invocation_id|invocation_started_at|run_started_at)"\s*:\s*"[^"]*"'
)
_HEAD = 4096


def cache_key(manifest_bytes: bytes, project_dir: Path) -> str:
    """What the cached specs depend on, as one digest (see the module)."""
    digest = hashlib.sha256()
    digest.update(_VOLATILE.sub(rb'"\1": ""', manifest_bytes[:_HEAD]))
    digest.update(manifest_bytes[_HEAD:])
    digest.update(str(project_dir.resolve()).encode())
    digest.update(_code_digest())
    return digest.hexdigest()


@cache
def _code_digest() -> bytes:
    """The versions and source that shape the specs: the same for the life of the process."""
    digest = hashlib.sha256()
    for package in ("dagster", "dagster-dbt"):
        digest.update(f"{package}=={version(package)}".encode())
    here = Path(__file__).parent
    for name in _SHAPING_MODULES:
        digest.update((here / name).read_bytes())
    digest.update(str(FORMAT).encode())
    return digest.digest()


def cached_specs(
    cache_dir: Path,
    key: str,
    build: Callable[[], Specs],
    manifest: Mapping[str, Any],
    translator: DagsterDbtTranslator,
    project: Any,
) -> Specs:
    """The specs `build()` returns, read from `cache_dir` when they were kept under `key`.

    `manifest`, `translator` and `project` are this load's objects, attached again to the
    specs read back (`project`: dagster-dbt's DbtProject, or None)."""
    path = cache_dir / CACHE_FILE
    live = _live(manifest, translator, project)
    kept = _read(path, key)
    if kept is not None:
        try:
            return _decode(kept, live, manifest, translator)
        except Exception:  # a file that does not decode is rebuilt, never trusted
            pass
    built = build()
    specs, checks = list(built[0]), list(built[1])
    try:
        encoded = _encode(specs, checks)
        if _decode(encoded, live, manifest, translator) == (specs, checks):
            _write(path, key, encoded)
    except Exception:  # keeping them is an optimisation: the built specs stand
        pass
    return specs, checks


def _live(manifest: Mapping[str, Any], translator: Any, project: Any) -> dict[str, Any]:
    return {
        DAGSTER_DBT_MANIFEST_METADATA_KEY: DbtManifestWrapper(manifest=manifest),
        DAGSTER_DBT_TRANSLATOR_METADATA_KEY: translator,
        **({DAGSTER_DBT_PROJECT_METADATA_KEY: project} if project else {}),
    }


def _read(path: Path, key: str) -> dict[str, Any] | None:
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("key") != key:
        return None
    return data


def _write(path: Path, key: str, encoded: dict[str, Any]) -> None:
    """Write atomically; a folder that cannot be written raises (OSError), and the caller
    keeps nothing: the next load builds again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{CACHE_FILE}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(orjson.dumps({"format": FORMAT, "key": key, **encoded}))
        os.chmod(temporary, 0o644)  # as readable as the manifest beside it
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _serialized(value: Any) -> str | None:
    # What serdes refuses raises here, and the caller keeps nothing.
    return None if value is None else serialize_value(value)


def _deps(deps: Sequence[AssetDep]) -> list[list[Any]]:
    return [
        [d.asset_key.path, _serialized(d.partition_mapping), _serialized(dict(d.metadata) or None)]
        for d in deps
    ]


def _encode(specs: Sequence[AssetSpec], checks: Sequence[AssetCheckSpec]) -> dict[str, Any]:
    encoded_specs = []
    for spec in specs:
        if spec.partitions_def is not None or spec.freshness_policy is not None:
            raise _Uncacheable(f"{spec.key.to_user_string()}: partitions or freshness policy")
        if spec.legacy_freshness_policy is not None:
            raise _Uncacheable(f"{spec.key.to_user_string()}: legacy freshness policy")
        data = {k: v for k, v in spec.metadata.items() if k not in LIVE_KEYS}
        encoded_specs.append(
            {
                "key": spec.key.path,
                "deps": _deps(spec.deps),
                "description": spec.description,
                "metadata": _serialized(data),
                "metadata_order": list(spec.metadata),  # live entries where dagster-dbt put them
                "skippable": spec.skippable,
                "group_name": spec.group_name,
                "code_version": spec.code_version,
                "owners": list(spec.owners),
                "tags": dict(spec.tags),
                "kinds": sorted(spec.kinds),
                "is_virtual": spec.is_virtual,
                "condition": spec.automation_condition is not None,
            }
        )
    encoded_checks = []
    for check in checks:
        if check.automation_condition is not None or check.partitions_def is not None:
            raise _Uncacheable(f"check {check.name}: automation condition or partitions")
        encoded_checks.append(
            {
                "name": check.name,
                "asset": check.asset_key.path,
                "description": check.description,
                "additional_deps": _deps(check.additional_deps),
                "blocking": check.blocking,
                "metadata": _serialized(dict(check.metadata)),
            }
        )
    return {"specs": encoded_specs, "checks": encoded_checks}


def _decode_deps(deps: Sequence[Sequence[Any]]) -> list[AssetDep]:
    return [
        AssetDep(
            AssetKey(path),
            partition_mapping=deserialize_value(mapping) if mapping else None,
            metadata=deserialize_value(metadata) if metadata else None,
        )
        for path, mapping, metadata in deps
    ]


def _decode(
    encoded: Mapping[str, Any],
    live: Mapping[str, Any],
    manifest: Mapping[str, Any],
    translator: DagsterDbtTranslator,
) -> Specs:
    specs = []
    for item in encoded["specs"]:
        data = deserialize_value(item["metadata"]) if item["metadata"] else {}
        metadata = {k: live[k] if k in LIVE_KEYS else data[k] for k in item["metadata_order"]}
        condition = None
        if item["condition"]:
            props = get_node(manifest, metadata[DAGSTER_DBT_UNIQUE_ID_METADATA_KEY])
            condition = translator.get_automation_condition(props)
        specs.append(
            AssetSpec(
                key=AssetKey(item["key"]),
                deps=_decode_deps(item["deps"]),
                description=item["description"],
                metadata=metadata,
                skippable=item["skippable"],
                group_name=item["group_name"],
                code_version=item["code_version"],
                automation_condition=condition,
                owners=item["owners"],
                tags=item["tags"],
                kinds=set(item["kinds"]),
                is_virtual=item["is_virtual"],
            )
        )
    checks = [
        AssetCheckSpec(
            item["name"],
            asset=AssetKey(item["asset"]),
            description=item["description"],
            additional_deps=_decode_deps(item["additional_deps"]),
            blocking=item["blocking"],
            metadata=deserialize_value(item["metadata"]) if item["metadata"] else None,
        )
        for item in encoded["checks"]
    ]
    return specs, checks
