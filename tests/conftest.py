"""Shared fixtures: one real demo warehouse per test session.

Real dbt costs seconds per call, so the demo project is copied, parsed, loaded with raw data and
has its unpartitioned models built once per session; tests then materialize partitions of it
through real Dagster runs on a real (temporary) Dagster instance. Tests that change raw data use
days no other test reads, and put them back.
"""

from __future__ import annotations

import shutil
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dagster import (
    AssetKey,
    AssetSelection,
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    materialize,
)

from flower_dagster.dbt.project import FlowerDbtProject
from flower_dagster.defs.dbt import dbt_definitions
from flower_dagster.demo.data import load_demo_data
from flower_dagster.settings import DEMO_DBT_PROJECT_DIR, Settings, load_settings
from flower_dagster.storage import DEV_INSTANCE_FILE, write_instance_yaml
from tests.cdp import Browser, ensure_chromium

PROJECT_COPY_IGNORE = shutil.ignore_patterns("target", "state", "logs", "dbt_packages")


def copy_demo_project(destination: Path) -> Path:
    shutil.copytree(DEMO_DBT_PROJECT_DIR, destination, ignore=PROJECT_COPY_IGNORE)
    return destination


def make_instance(home: Path) -> DagsterInstance:
    """A real Dagster instance in `home`, configured like the project's own (pools and all)."""
    write_instance_yaml(DEV_INSTANCE_FILE, home)
    return DagsterInstance.from_config(str(home))


@dataclass
class Warehouse:
    """A demo dbt project copy, its DuckDB file, its definitions and a Dagster instance."""

    root: Path
    project_dir: Path
    duckdb_path: Path
    dagster_home: Path
    settings: Settings
    defs: Definitions
    instance: DagsterInstance

    def materialize(
        self,
        selection: Sequence[str] | AssetSelection,
        partition_key: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> ExecuteInProcessResult:
        if not isinstance(selection, AssetSelection):
            selection = AssetSelection.assets(*[AssetKey(name) for name in selection])
        return materialize(
            list(self.defs.assets or []),
            selection=selection,
            instance=self.instance,
            resources=self.defs.resources,
            partition_key=partition_key,
            tags=tags,
            raise_on_error=False,
        )

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with duckdb.connect(str(self.duckdb_path), read_only=True) as connection:
            return connection.execute(sql, list(params)).fetchall()

    def target_dirs(self, run_id: str) -> list[Path]:
        """dagster-dbt's per-invocation target folders of one run (`<op>-<run id[:7]>-<uuid>`)."""
        return sorted((self.project_dir / "target").glob(f"*-{run_id[:7]}-*"))


def private_warehouse(
    warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[Warehouse]:
    """The session's dbt project with a DuckDB file of its own, for a module that writes many
    partitions the other modules must not see (use in a module-scoped fixture)."""
    duckdb_path = tmp_path_factory.mktemp(name) / "warehouse.duckdb"
    load_demo_data(duckdb_path)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLOWER_DUCKDB_PATH", str(duckdb_path))
        yield replace(warehouse, duckdb_path=duckdb_path)


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    root = tmp_path_factory.mktemp("warehouse")
    project_dir = copy_demo_project(root / "dbt_project")
    duckdb_path = root / "warehouse.duckdb"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLOWER_DBT_PROJECT_DIR", str(project_dir))
        patch.setenv("FLOWER_DUCKDB_PATH", str(duckdb_path))
        for name in ("FLOWER_DBT_TARGET", "FLOWER_WINDOW_START", "FLOWER_WINDOW_END"):
            patch.delenv(name, raising=False)
        settings = load_settings()
        FlowerDbtProject.from_settings(settings).parse()
        load_demo_data(duckdb_path)
        instance = make_instance(root / "dagster_home")
        wh = Warehouse(
            root=root,
            project_dir=project_dir,
            duckdb_path=duckdb_path,
            dagster_home=root / "dagster_home",
            settings=settings,
            defs=dbt_definitions(settings),
            instance=instance,
        )
        built = wh.materialize(AssetSelection.tag("flower/grain", "unpartitioned"))
        assert built.success, "building the unpartitioned demo models failed"
        yield wh
        instance.dispose()


@pytest.fixture(scope="session")
def chromium() -> str:
    """The headless browser's path; the project's script installs Chromium where it is missing."""
    try:
        return ensure_chromium()
    except RuntimeError as error:
        pytest.skip(f"Chromium cannot be installed on this machine: {error}")


@pytest.fixture
def browser(chromium: str) -> Iterator[Browser]:
    browser = Browser(chromium)
    yield browser
    browser.close()


# The longest test files of `make test`, longest first. `make test` hands whole files to two
# workers (`--dist loadfile --no-loadscope-reorder`) in collection order: a long file picked up
# last keeps one worker busy while the other has nothing left, so the long files go first and
# the many short ones fill in at the end. Keep it in step with the "slowest test files" summary
# that `make test` prints.
LONGEST_FILES_FIRST = (
    "test_repair_rule.py",
    "test_spark.py",
    "test_demo_story.py",
    "test_admin_e2e.py",
    "test_operations_demo.py",
    "test_postgres_instance.py",
    "test_alerts_e2e.py",
    "test_repair_rule_year.py",
    "test_admin_browser.py",
    "test_first_session_browser.py",
    "test_dead_runs.py",
    "test_publish.py",
    "test_target_dirs.py",
    "test_operations_random.py",
    "test_repair_rule_graph.py",
    "test_impact.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: position for position, name in enumerate(LONGEST_FILES_FIRST)}
    # A stable sort: each file's tests keep their order, the other files theirs.
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


FILE_SECONDS: dict[str, float] = defaultdict(float)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Under xdist the controller receives every worker's reports: set-up, call and teardown.
    FILE_SECONDS[report.nodeid.split("::")[0]] += report.duration


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """The files that take longest, set-up and teardown included: what LONGEST_FILES_FIRST
    should list."""
    if hasattr(config, "workerinput") or not FILE_SECONDS:
        return
    terminalreporter.write_sep("=", "slowest test files")
    ranked = sorted(FILE_SECONDS.items(), key=lambda entry: -entry[1])
    for path, seconds in ranked[:15]:
        terminalreporter.write_line(f"{seconds:8.1f}s {path}")
