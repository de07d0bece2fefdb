"""The dbt project as Dagster assets: one multi-asset per grain, plus two for the unpartitioned
rest (what partitioned models read, and what is built from them).

Each grain's models are chosen by a dbt selector on their own config
(`config.meta.flower.partition:daily`), so adding a model never means editing Python. Dagster
wires dependencies across the groups from the manifest, and its default time-window mapping
relates the grains (a weekly partition reads its seven daily partitions).

This is dagster-dbt's `@dbt_assets` plus one thing it cannot take: every roll-up also gets the
blocking asset check `inputs_complete` (the source check), evaluated before dbt runs.
"""

# No `from __future__ import annotations` here: Dagster inspects the `context` annotation.
import os
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Mapping, Sequence
from functools import cached_property, partial
from importlib.metadata import version
from pathlib import Path
from typing import Any

from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    AssetSpec,
    AutomationCondition,
    BackfillPolicy,
    OpExecutionContext,
    PartitionsDefinition,
    get_dagster_logger,
    multi_asset,
)
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject
from dagster_dbt.asset_utils import (
    DAGSTER_DBT_EXCLUDE_METADATA_KEY,
    DAGSTER_DBT_SELECT_METADATA_KEY,
    DAGSTER_DBT_UNIQUE_ID_METADATA_KEY,
    DBT_INDIRECT_SELECTION_ENV,
    build_dbt_specs,
    extract_runtime_selection_from_args,
    get_updated_cli_invocation_params_for_context,
)
from dagster_dbt.core.dbt_cli_invocation import (
    PARTIAL_PARSE_FILE_NAME,
    DbtCliInvocation,
    _get_dbt_target_path,
)
from dagster_dbt.dagster_dbt_translator import validate_opt_translator
from dagster_dbt.dbt_manifest import DbtManifestParam, validate_manifest
from packaging.version import Version
from packaging.version import parse as parse_version

from flower_dagster.automation import repair_condition
from flower_dagster.dbt.launch import ForkedDbt, fork_blocker, is_local_dbt, start_choice
from flower_dagster.dbt.models import NodeGrain, grain_selector
from flower_dagster.dbt.project import FlowerDbtProject, dbt_executable
from flower_dagster.dbt.run import run_dbt_build
from flower_dagster.dbt.spec_cache import cache_enabled, cached_specs
from flower_dagster.dbt.translator import UNPARTITIONED, FlowerTranslator
from flower_dagster.inputs import INPUTS_CHECK_NAME
from flower_dagster.partitions import GRAINS, Grain, partitions_for
from flower_dagster.settings import Settings


def build_dbt_assets(
    settings: Settings,
    project: FlowerDbtProject,
    manifest: Mapping[str, Any],
    grains: Mapping[str, NodeGrain],
    asset_keys: Mapping[str, AssetKey],
    spec_key: str | None = None,
) -> list[AssetsDefinition]:
    """One AssetsDefinition per grain present in the project, and one for the unpartitioned.

    `asset_keys` maps each node of `grains` to its asset key (see `asset_keys_of`); `spec_key`
    the key dagster-dbt's specs of this manifest are kept under between loads (None: build
    them afresh, see flower_dagster/dbt/spec_cache.py)."""
    translator = FlowerTranslator(grains, rollup_conditions(grains, asset_keys))
    managed = frozenset(asset_keys.values())
    present = [g for g in GRAINS if any(n.grain is g for n in grains.values())]
    specs, check_specs = _specs_by_grain(translator, manifest, grains, project, spec_key)
    build = partial(
        _dbt_multi_asset,
        settings=settings,
        grains=grains,
        managed=managed,
    )
    definitions = [
        build(
            name=f"dbt_{grain.value}_models",
            select=grain_selector(grain),
            exclude="",
            partitions_def=partitions_for(grain, settings.partition_start, settings.timezone),
            specs=specs[grain],
            dbt_check_specs=check_specs[grain],
        )
        for grain in present
    ]
    # The unpartitioned models in two multi-assets: those partitioned models read (staging
    # views, dimensions) and the rest (tables built from roll-ups). In one multi-asset, it would
    # sit both upstream and downstream of the partitioned ones, and Dagster would have to break
    # that cycle every time it builds a job over the graph (at every load of the code location).
    ancestors = " ".join(f"+{grain_selector(g)}" for g in present)
    partitioned = " ".join(grain_selector(g) for g in present)
    upstream = _ancestors_of_partitioned(manifest, grains)
    groups = (
        [
            # (name, dbt select, dbt exclude, is the node an ancestor of a partitioned one)
            (f"dbt_{UNPARTITIONED}_models", ancestors, partitioned, True),
            (f"dbt_{UNPARTITIONED}_downstream_models", "fqn:*", ancestors, False),
        ]
        if present
        else [(f"dbt_{UNPARTITIONED}_models", "fqn:*", "", False)]
    )
    for name, select, exclude, reads_into_partitioned in groups:
        part = [s for s in specs[None] if (_unique_id(s) in upstream) is reads_into_partitioned]
        if not part:
            continue
        keys = {spec.key for spec in part}
        definitions.append(
            build(
                name=name,
                select=select,
                exclude=exclude,
                partitions_def=None,
                specs=part,
                dbt_check_specs=[c for c in check_specs[None] if c.asset_key in keys],
            )
        )
    return definitions


def _ancestors_of_partitioned(
    manifest: Mapping[str, Any], grains: Mapping[str, NodeGrain]
) -> set[str]:
    """Every node that a partitioned model reads, directly or not: what dbt selects with
    `+<grain selector>` for every grain (the partitioned models themselves included)."""
    parents = manifest["parent_map"]
    seen: set[str] = set()
    todo = [uid for uid, node in grains.items() if node.partitioned]
    while todo:
        uid = todo.pop()
        if uid not in seen:
            seen.add(uid)
            todo.extend(parents.get(uid, ()))
    return seen


def rollup_conditions(
    grains: Mapping[str, NodeGrain], asset_keys: Mapping[str, AssetKey]
) -> dict[str, AutomationCondition]:
    """The repair rule of every roll-up, over its own partitioned parents (see
    `repair_condition`: the parents whose updates count, as keys Dagster looks up directly)."""
    return {
        uid: repair_condition(
            AssetSelection.assets(*(asset_keys[parent] for parent in node.partitioned_parents))
        )
        for uid, node in grains.items()
        if node.is_rollup
    }


def _specs_by_grain(
    translator: FlowerTranslator,
    manifest: Mapping[str, Any],
    grains: Mapping[str, NodeGrain],
    project: FlowerDbtProject,
    spec_key: str | None = None,
) -> tuple[dict[Grain | None, list[AssetSpec]], dict[Grain | None, list[AssetCheckSpec]]]:
    """dagster-dbt's asset and check specs of every node, grouped by grain (None: unpartitioned).

    One pass over the whole project, split here by each node's grain, gives the specs that one
    dbt selection per grain (`grain_selector`) gives, for a fraction of the load time: each
    selection walks dbt's graph and translates every selected node and its parents again.
    A check belongs to the group of the asset it checks. With `spec_key`, the specs are kept
    next to the manifest and read back by the next load (spec_cache.py).
    """
    build = partial(
        build_dbt_specs,
        translator=translator,
        manifest=manifest,
        select="fqn:*",
        exclude="",
        selector="",
        io_manager_key=None,
        project=project.dagster_project,
    )
    if spec_key is not None and cache_enabled():
        all_specs, all_checks = cached_specs(
            project.manifest_path.parent,
            spec_key,
            build,
            manifest,
            translator,
            project.dagster_project,
        )
    else:
        all_specs, all_checks = build()
    specs: dict[Grain | None, list[AssetSpec]] = defaultdict(list)
    group_of: dict[AssetKey, Grain | None] = {}
    for spec in all_specs:
        node = grains.get(_unique_id(spec))
        group = node.grain if node is not None else None
        specs[group].append(spec)
        group_of[spec.key] = group
    checks: dict[Grain | None, list[AssetCheckSpec]] = defaultdict(list)
    for check in all_checks:
        checks[group_of.get(check.asset_key)].append(check)
    return specs, checks


def _dbt_multi_asset(
    *,
    name: str,
    select: str,
    exclude: str,
    partitions_def: PartitionsDefinition | None,
    specs: Sequence[AssetSpec],
    dbt_check_specs: Sequence[AssetCheckSpec],
    settings: Settings,
    grains: Mapping[str, NodeGrain],
    managed: frozenset[AssetKey],
) -> AssetsDefinition:
    inputs_checks = [
        AssetCheckSpec(
            INPUTS_CHECK_NAME,
            asset=spec.key,
            blocking=True,
            description=(
                "Source check: every upstream partition this partition reads is materialized, "
                "its latest run did not fail, and none is in progress."
            ),
            # dagster-dbt maps every check to a dbt node when it builds a subset selection;
            # this one belongs to the model itself.
            metadata={DAGSTER_DBT_UNIQUE_ID_METADATA_KEY: _unique_id(spec)},
        )
        for spec in specs
        if (node := grains.get(_unique_id(spec))) is not None and node.is_rollup
    ]

    @multi_asset(
        name=name,
        specs=specs,
        check_specs=[*dbt_check_specs, *inputs_checks],
        can_subset=True,
        partitions_def=partitions_def,
        op_tags={
            DAGSTER_DBT_SELECT_METADATA_KEY: select,
            **({DAGSTER_DBT_EXCLUDE_METADATA_KEY: exclude} if exclude else {}),
        },
        # A backfill of N partitions is one run and one dbt invocation over the whole range.
        backfill_policy=BackfillPolicy.single_run() if partitions_def else None,
        pool=settings.warehouse_pool,
        allow_arbitrary_check_specs=True,
    )
    def _dbt_assets(context: AssetExecutionContext, dbt: DbtCliResource):
        yield from run_dbt_build(context, dbt, managed)

    return _dbt_assets


def asset_keys_of(
    manifest: Mapping[str, Any], grains: Mapping[str, NodeGrain]
) -> dict[str, AssetKey]:
    """The asset key of every dbt node flower-dagster runs, by unique id."""
    translator = FlowerTranslator()
    return {uid: translator.get_asset_key(manifest["nodes"][uid]) for uid in grains}


def _unique_id(spec: AssetSpec) -> str:
    return spec.metadata[DAGSTER_DBT_UNIQUE_ID_METADATA_KEY]


class FlowerDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt resource without three start-up costs flower-dagster does not need.

    Before every dbt invocation `DbtCliResource.cli` runs `dbt --version` in a subprocess (to
    tell dbt Core from dbt Fusion) and builds a dbt adapter in-process, which only
    `fetch_column_metadata()` and `fetch_row_counts()` use. flower-dagster calls neither, and
    the dbt beside this Python is this environment's dbt-core: seconds saved on every run.
    And it starts dbt as a fork of the run's process when that is safe (launch.py), which has
    imported most of dbt-core already, instead of a new Python that imports it again.
    """

    @cached_property
    def _cli_version(self) -> Version:
        if is_local_dbt(self.dbt_executable):
            return parse_version(version("dbt-core"))
        return DbtCliResource._cli_version.func(self)  # another dbt: ask it

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
        return None

    def cli(
        self,
        args: Sequence[str],
        *,
        raise_on_error: bool = True,
        manifest: DbtManifestParam | None = None,
        dagster_dbt_translator: DagsterDbtTranslator | None = None,
        context: OpExecutionContext | AssetExecutionContext | None = None,
        target_path: Path | None = None,
    ) -> DbtCliInvocation:
        """`DbtCliResource.cli`, with dbt started as a fork (`launch.ForkedDbt`) when it can be.

        When it cannot (launch.fork_blocker), this is dagster-dbt's own method. Otherwise the
        arguments, environment and target folder are built exactly as dagster-dbt 0.29.27 builds
        them (the body below follows its `cli`; tests/test_dbt_launch.py fails when the pinned
        method's source changes, so that this copy is checked again), and only the process
        differs.
        """
        blocker = fork_blocker(self.dbt_executable)
        if blocker is not None:
            get_dagster_logger().info(f"dbt starts as a new process: {blocker}.")
            return super().cli(
                args,
                raise_on_error=raise_on_error,
                manifest=manifest,
                dagster_dbt_translator=dagster_dbt_translator,
                context=context,
                target_path=target_path,
            )
        translator = validate_opt_translator(dagster_dbt_translator) or DagsterDbtTranslator()
        manifest = validate_manifest(manifest) if manifest else {}
        cleaned_args, runtime_selects, runtime_excludes = extract_runtime_selection_from_args(args)
        params = get_updated_cli_invocation_params_for_context(
            context=context,
            manifest=manifest,
            dagster_dbt_translator=translator,
            runtime_selects=runtime_selects,
            runtime_excludes=runtime_excludes,
        )
        target_path = target_path or self._get_unique_target_path(context=context)
        project_dir = Path(
            params.dbt_project.project_dir if params.dbt_project else self.project_dir
        )
        env = {
            "PYTHONLEGACYWINDOWSSTDIO": "1",
            **os.environ.copy(),
            "DAGSTER_DBT_CLI": "true",
            "PYTHONUNBUFFERED": "1",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DBT_LOG_FORMAT": "json",
            "DBT_TARGET_PATH": os.fspath(target_path),
            "DBT_LOG_PATH": os.fspath(target_path),
            **({"DBT_PROFILES_DIR": self.profiles_dir} if self.profiles_dir else {}),
            "DBT_PROJECT_DIR": str(project_dir),
        }
        if params.indirect_selection:
            env[DBT_INDIRECT_SELECTION_ENV] = params.indirect_selection
        profile_args: list[str] = ["--profile", self.profile] if self.profile else []
        if self.target:
            profile_args += ["--target", self.target]
        full_args = [
            self.dbt_executable,
            *self.global_config_flags,
            *cleaned_args,
            *profile_args,
            *params.selection_args,
        ]
        if not target_path.is_absolute():
            target_path = project_dir.joinpath(target_path)
        return FlowerDbtCliInvocation.run(
            args=full_args,
            env=env,
            manifest=params.manifest,
            dagster_dbt_translator=params.dagster_dbt_translator,
            project_dir=project_dir,
            target_path=target_path,
            raise_on_error=raise_on_error,
            context=context,
            adapter=None,
            cli_version=self._cli_version,
            dbt_project=params.dbt_project,
        )


class FlowerDbtCliInvocation(DbtCliInvocation):
    """dagster-dbt's invocation of a dbt command, its process a fork (launch.ForkedDbt)."""

    @classmethod
    def run(  # type: ignore[override]
        cls,
        args: Sequence[str],
        env: dict[str, str],
        manifest: Mapping[str, Any],
        dagster_dbt_translator: DagsterDbtTranslator,
        project_dir: Path,
        target_path: Path,
        raise_on_error: bool,
        context: OpExecutionContext | AssetExecutionContext | None,
        adapter: Any,
        cli_version: Version,
        dbt_project: DbtProject | None = None,
    ) -> DbtCliInvocation:
        copy_partial_parse(project_dir, target_path)
        process: ForkedDbt | subprocess.Popen[bytes]
        fork_failed: OSError | None = None
        try:
            process = ForkedDbt(args, env, project_dir)
        except OSError as error:  # no memory or process slot for a fork: as dagster-dbt does
            fork_failed = error
            process = subprocess.Popen(
                args=list(args),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=project_dir,
            )
        invocation = cls(
            process=process,  # type: ignore[arg-type] - Popen's interface, see ForkedDbt
            manifest=manifest,
            project=dbt_project,
            dagster_dbt_translator=dagster_dbt_translator,
            project_dir=project_dir,
            target_path=target_path,
            raise_on_error=raise_on_error,
            context=context,
            adapter=adapter,
            cli_version=cli_version,
        )
        how = (
            f"started as a fork of this process, pid {process.pid}"
            if fork_failed is None
            else f"started as a new process, pid {process.pid}: the fork failed ({fork_failed})"
        )
        get_dagster_logger().info(f"Running dbt command: `{invocation.dbt_command}` ({how}).")
        return invocation


def copy_partial_parse(project_dir: Path, target_path: Path) -> None:
    """dbt's partial-parse file of the project into the invocation's own target folder, as
    dagster-dbt does before it starts dbt, so that dbt does not parse the project again."""
    current = _get_dbt_target_path()
    source = (
        current.joinpath(PARTIAL_PARSE_FILE_NAME)
        if current.is_absolute()
        else project_dir.joinpath(current, PARTIAL_PARSE_FILE_NAME)
    )
    destination = target_path.joinpath(PARTIAL_PARSE_FILE_NAME)
    if source.exists() and not destination.exists():
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, destination)


def dbt_resource(project: FlowerDbtProject) -> DbtCliResource:
    start_choice()  # a bad FLOWER_DBT_START stops the load, not the first run
    return FlowerDbtCliResource(
        project_dir=project.dagster_project,
        profiles_dir=str(project.profiles_dir) if project.profiles_dir else None,
        target=project.target,
        # The dbt beside this Python, so it works without the venv on PATH.
        dbt_executable=dbt_executable(),
    )
