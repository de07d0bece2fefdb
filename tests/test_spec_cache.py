"""dagster-dbt's specs kept between loads of the code location (flower_dagster/dbt/spec_cache.py),
on the real demo project: read back equal to what dagster-dbt builds, keyed so that a changed
project is built afresh, and never trusted when the file is bad."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from dagster import AssetSpec, DailyPartitionsDefinition
from dagster_dbt.asset_utils import (
    DAGSTER_DBT_MANIFEST_METADATA_KEY,
    DAGSTER_DBT_PROJECT_METADATA_KEY,
    DAGSTER_DBT_TRANSLATOR_METADATA_KEY,
    build_dbt_specs,
)

import flower_dagster.dbt.assets as dbt_assets
import flower_dagster.dbt.spec_cache as spec_cache
from flower_dagster.dbt.assets import asset_keys_of, rollup_conditions
from flower_dagster.dbt.models import read_grains
from flower_dagster.dbt.project import FlowerDbtProject
from flower_dagster.dbt.spec_cache import (
    CACHE_FILE,
    ENV_VAR,
    Specs,
    cache_enabled,
    cache_key,
    cached_specs,
)
from flower_dagster.dbt.translator import FlowerTranslator
from flower_dagster.defs.dbt import dbt_definitions
from flower_dagster.errors import SettingsError
from tests.conftest import Warehouse, copy_demo_project


class Inputs:
    """What build_dbt_assets hands the cache, for the warehouse's demo project."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.project = FlowerDbtProject.from_settings(warehouse.settings)
        self.manifest, self.key = self.project.load_manifest_and_key()
        grains = read_grains(self.manifest)
        keys = asset_keys_of(self.manifest, grains)
        self.translator = FlowerTranslator(grains, rollup_conditions(grains, keys))
        self.builds = 0

    def build(self) -> Specs:
        self.builds += 1
        specs, checks = build_dbt_specs(
            translator=self.translator,
            manifest=self.manifest,
            select="fqn:*",
            exclude="",
            selector="",
            io_manager_key=None,
            project=self.project.dagster_project,
        )
        return list(specs), list(checks)

    def cached(self, folder: Path, key: str | None = None, build: Callable | None = None) -> Specs:
        return cached_specs(
            folder,
            key or self.key,
            build or self.build,
            self.manifest,
            self.translator,
            self.project.dagster_project,
        )


def refuse(*_args: object, **_kwargs: object) -> Specs:
    raise AssertionError("built although the specs were kept")


def test_specs_read_back_equal_what_dagster_dbt_builds(warehouse, tmp_path):
    inputs = Inputs(warehouse)
    fresh = inputs.build()
    assert inputs.cached(tmp_path) == fresh  # built, kept
    assert (tmp_path / CACHE_FILE).is_file()
    specs, checks = inputs.cached(tmp_path, build=refuse)
    assert (specs, checks) == fresh
    assert len(specs) > 10 and len(checks) > 5
    for read, built in zip(specs, fresh[0], strict=True):
        assert list(read.metadata) == list(built.metadata)  # the same order, for the UI
        # The live entries are this load's objects, not copies.
        assert read.metadata[DAGSTER_DBT_TRANSLATOR_METADATA_KEY] is inputs.translator
        assert read.metadata[DAGSTER_DBT_MANIFEST_METADATA_KEY].manifest is inputs.manifest
    rollups = [s for s in specs if s.automation_condition is not None]
    assert rollups and all(
        s.automation_condition is b.automation_condition
        for s, b in zip(specs, fresh[0], strict=True)
    )
    assert any("dagster/column_schema" in s.metadata for s in specs)


def test_another_key_builds_afresh_and_replaces_the_kept_specs(warehouse, tmp_path):
    inputs = Inputs(warehouse)
    inputs.cached(tmp_path, key="first")
    inputs.cached(tmp_path, key="first")
    assert inputs.builds == 1
    assert inputs.cached(tmp_path, key="second") == inputs.build()
    assert inputs.builds == 3
    assert orjson.loads((tmp_path / CACHE_FILE).read_bytes())["key"] == "second"
    inputs.cached(tmp_path, key="second", build=refuse)


def test_the_key_follows_the_project_not_the_time_of_its_parse(tmp_path):
    project = FlowerDbtProject(copy_demo_project(tmp_path / "dbt_project"), None, None)
    project.parse()
    first = project.load_manifest_and_key()[1]
    project.parse()  # `dagster dev` parses at every load: a new time and invocation id
    assert project.manifest_path.read_bytes() != b""
    assert project.load_manifest_and_key()[1] == first
    model = next((project.project_dir / "models").rglob("fct_orders.sql"))
    model.write_text(model.read_text() + "\n-- a reviewer's note\n")
    project.parse()
    assert project.load_manifest_and_key()[1] != first
    raw = project.manifest_path.read_bytes()
    assert cache_key(raw, project.project_dir) != cache_key(raw, tmp_path / "elsewhere")


@pytest.mark.parametrize(
    "content",
    [b"not json", b'{"format": 1}', None],  # None: the right key over a broken body
    ids=["garbage", "no key", "broken body"],
)
def test_a_bad_file_is_rebuilt_never_trusted(warehouse, tmp_path, content):
    inputs = Inputs(warehouse)
    path = tmp_path / CACHE_FILE
    if content is None:
        inputs.cached(tmp_path)
        kept = orjson.loads(path.read_bytes())
        kept["specs"][0]["metadata_order"].append("missing entry")
        content = orjson.dumps(kept)
        inputs.builds = 0
    path.write_bytes(content)
    assert inputs.cached(tmp_path) == inputs.build()
    assert inputs.builds == 2  # once for the bad file, once here to compare
    inputs.cached(tmp_path, build=refuse)  # and the file was written again, good


def test_a_folder_that_cannot_be_written_means_no_cache(warehouse, tmp_path):
    inputs = Inputs(warehouse)
    (tmp_path / "a file").write_text("")
    folder = tmp_path / "a file" / "cache"
    assert inputs.cached(folder) == inputs.build()
    assert not folder.exists()


def test_specs_the_encoding_does_not_cover_are_never_kept(warehouse, tmp_path):
    inputs = Inputs(warehouse)

    def partitioned() -> Specs:
        specs, checks = inputs.build()
        first: AssetSpec = specs[0].replace_attributes(
            partitions_def=DailyPartitionsDefinition("2024-01-01")
        )
        return [first, *specs[1:]], checks

    result = inputs.cached(tmp_path, build=partitioned)
    assert result[0][0].partitions_def is not None
    assert not (tmp_path / CACHE_FILE).exists()


def test_a_failure_while_keeping_the_specs_leaves_the_load_as_built(
    warehouse, tmp_path, monkeypatch
):
    inputs = Inputs(warehouse)

    def broken_write(*_args: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(spec_cache, "_write", broken_write)
    assert inputs.cached(tmp_path) == inputs.build()
    assert not (tmp_path / CACHE_FILE).exists()


def test_flower_spec_cache_is_on_unless_turned_off_and_a_bad_value_is_refused():
    assert cache_enabled({}) and cache_enabled({ENV_VAR: " On "})
    assert not cache_enabled({ENV_VAR: "off"})
    with pytest.raises(SettingsError, match=f"{ENV_VAR}='maybe' is not allowed: 'on'"):
        cache_enabled({ENV_VAR: "maybe"})


def _by_key(defs) -> dict:
    """Every spec and check spec of the definitions, by key. Each load has a translator and a
    dbt project object of its own, compared by identity: those entries by their type and
    folder."""
    assets = {}
    for assets_def in defs.assets:
        for spec in assets_def.specs:
            translator = spec.metadata[DAGSTER_DBT_TRANSLATOR_METADATA_KEY]
            project = spec.metadata[DAGSTER_DBT_PROJECT_METADATA_KEY]
            metadata = {
                **spec.metadata,
                DAGSTER_DBT_TRANSLATOR_METADATA_KEY: type(translator),
                DAGSTER_DBT_PROJECT_METADATA_KEY: project.project_dir,
            }
            assets[spec.key] = spec.replace_attributes(metadata=metadata)
        for check in assets_def.check_specs:
            assets[check.key] = check
    return assets


def test_the_code_location_reads_its_specs_back_instead_of_building_them(warehouse, monkeypatch):
    kept = warehouse.project_dir / "target" / CACHE_FILE
    kept.unlink(missing_ok=True)
    built = dbt_definitions(warehouse.settings)
    assert kept.is_file()
    monkeypatch.setattr(dbt_assets, "build_dbt_specs", refuse)
    read = dbt_definitions(warehouse.settings)
    assert _by_key(read) == _by_key(built)  # partitions, conditions, checks and all
    monkeypatch.setenv(ENV_VAR, "off")
    with pytest.raises(AssertionError, match="built although"):
        dbt_definitions(warehouse.settings)
