"""A real backfill-admin stack for tests: `dagster dev` (webserver + daemon) and `flower admin`.

Both run as subprocesses on 127.0.0.1 with a temporary DAGSTER_HOME, a DuckDB file of their own
and a settings file of their own (repair rule every 5 s, a small partition limit, an access file
whose tokens are made here and handed to the test, never written anywhere but as hashes).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import AssetSelection, DagsterInstance, materialize
from dagster._core.scheduler.instigation import InstigatorType, TickStatus

from flower_dagster.admin.access import hash_token, new_token
from flower_dagster.admin.audit import read_audit
from flower_dagster.automation import SENSOR_NAME
from flower_dagster.settings import REPO_ROOT
from tests.conftest import Warehouse, make_instance, private_warehouse

MAX_PARTITIONS = 31
# Who the stack's access file knows: jimin owns commerce's models, seoyeon growth's.
PEOPLE = {
    "jimin": ("Jimin Park", ["commerce-authors"]),
    "seoyeon": ("Seoyeon Lee", ["growth-authors"]),
}
GROUPS = {
    "commerce-authors": {"models": ["owner:commerce"]},
    "growth-authors": {"models": ["owner:growth"]},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class AdminStack:
    root: Path
    dagster_port: int
    admin_port: int
    instance: DagsterInstance
    tokens: Mapping[str, str]
    audit_log: Path
    env: Mapping[str, str]
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def dagster_url(self) -> str:
        return f"http://127.0.0.1:{self.dagster_port}"

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any]:
        """One HTTP request to the admin service: (status, JSON body or text)."""
        sent = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(
            self.admin_url + path, data=data, headers=sent, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def backfill_ids(self) -> set[str]:
        """Every backfill Dagster has, read from its instance (not through the admin)."""
        return {b.backfill_id for b in self.instance.get_backfills()}

    def audit(self) -> list[dict[str, Any]]:
        return read_audit(self.audit_log)

    def flower(
        self, *args: str, token: str | None, timeout: float = 180
    ) -> subprocess.CompletedProcess:
        """The real `flower` command, as an author runs it, against this stack."""
        env = {k: v for k, v in self.env.items() if k != "FLOWER_TOKEN"}
        env["FLOWER_ADMIN_URL"] = self.admin_url
        if token is not None:
            env["FLOWER_TOKEN"] = token
        return subprocess.run(
            [str(Path(sys.executable).with_name("flower")), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def wait_for(self, what: str, done: Callable[[], Any], timeout: float = 180) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for process in self.processes:
                assert process.poll() is None, f"{process.args[:2]} exited while waiting for {what}"
            result = done()
            if result:
                return result
            time.sleep(1)
        raise AssertionError(
            f"timed out after {timeout:.0f} s waiting for {what}; logs in {self.root}"
        )

    def repair_rule_ticks(self) -> int:
        for state in self.instance.all_instigator_state(instigator_type=InstigatorType.SENSOR):
            if state.instigator_name == SENSOR_NAME:
                ticks = self.instance.get_ticks(state.instigator_origin_id, state.selector_id)
                return sum(t.status in (TickStatus.SKIPPED, TickStatus.SUCCESS) for t in ticks)
        return 0


def start_admin_stack(
    warehouse: Warehouse,
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    partition_end: str | None = None,
) -> Iterator[AdminStack]:
    """Use in a module-scoped fixture: `yield from start_admin_stack(warehouse, ..., "name")`.
    `partition_end` ends the calendar as `make dev` ends the demo's (partitions.end)."""
    own = private_warehouse(warehouse, tmp_path_factory, name)
    wh = next(own)
    root = tmp_path_factory.mktemp(f"{name}_stack")
    instance = make_instance(root / "dagster_home")
    processes: list[subprocess.Popen] = []
    try:
        tokens = {person: new_token() for person in PEOPLE}
        access = {
            "people": {
                person: {"name": n, "groups": g, "token_sha256": hash_token(tokens[person])}
                for person, (n, g) in PEOPLE.items()
            },
            "groups": GROUPS,
        }
        (root / "access.yaml").write_text(yaml.safe_dump(access))
        dagster_port, admin_port = free_port(), free_port()
        settings = {
            "partitions": {
                "start": "2024-01-01",
                **({"end": partition_end} if partition_end else {}),
            },
            "dbt": {"project_dir": str(wh.project_dir)},
            "automation": {"interval_seconds": 5},
            "admin": {
                "port": admin_port,
                "dagster_graphql_url": f"http://127.0.0.1:{dagster_port}/graphql",
                "access_file": "access.yaml",
                "max_partitions": MAX_PARTITIONS,
                "audit_log": "audit.jsonl",
            },
        }
        (root / "flower.yaml").write_text(yaml.safe_dump(settings))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWER_", "DAGSTER_"))}
        env.update(
            FLOWER_SETTINGS_FILE=str(root / "flower.yaml"),
            FLOWER_DUCKDB_PATH=str(wh.duckdb_path),
            DAGSTER_HOME=str(instance.root_directory),
            DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        )
        bin_dir = Path(sys.executable).parent
        stack = AdminStack(
            root=root,
            dagster_port=dagster_port,
            admin_port=admin_port,
            instance=instance,
            tokens=tokens,
            audit_log=root / "audit.jsonl",
            env=env,
            processes=processes,
        )
        stack.processes.append(
            spawn(
                dagster_dev_command(dagster_port),
                REPO_ROOT,
                env,
                root / "dagster-dev.log",
            )
        )
        stack.processes.append(
            spawn([str(bin_dir / "flower"), "admin"], root, env, root / "admin.log")
        )
        # The staging views and dim_users, while Dagster starts: the daily models read them.
        built = materialize(
            list(wh.defs.assets or []),
            selection=AssetSelection.tag("flower/grain", "unpartitioned"),
            instance=instance,
            resources=wh.defs.resources,
            raise_on_error=False,
        )
        assert built.success, "building the unpartitioned demo models failed"
        stack.wait_for("the admin service", lambda: _answers(stack.admin_url + "/"), 60)
        stack.wait_for("Dagster's assets", lambda: has_assets(stack.dagster_url), 180)
        # The repair rule's first evaluation only sets its cursor: wait for it before launching.
        stack.wait_for("the repair rule's first tick", lambda: stack.repair_rule_ticks() >= 1, 120)
        yield stack
    finally:
        for process in processes:
            stop(process)
        instance.dispose()
        own.close()


def serve_admin(
    root: Path, admin: Mapping[str, Any], project_dir: Path, tokens: Mapping[str, str]
) -> Iterator[AdminStack]:
    """The real `flower admin` process alone, with a settings file of `admin` keys (a Dagster of
    the caller's, e.g. a stand-in, at admin.dagster_graphql_url). Use in a fixture."""
    port = free_port()
    write_settings(root, {"port": port, **admin}, project_dir)
    env = admin_env(root)
    stack = AdminStack(root, 0, port, None, tokens, root / "audit.jsonl", env)  # type: ignore[arg-type]
    flower = str(Path(sys.executable).with_name("flower"))
    stack.processes.append(spawn([flower, "admin"], root, env, root / "admin.log"))
    try:
        stack.wait_for("the admin service", lambda: _answers(stack.admin_url + "/"), 60)
        yield stack
    finally:
        for process in stack.processes:
            stop(process)


def write_settings(root: Path, admin: Mapping[str, Any], project_dir: Path) -> Path:
    """flower.yaml in `root`: the demo's partitions, the dbt project, the admin section."""
    settings = {
        "partitions": {"start": "2024-01-01"},
        "dbt": {"project_dir": str(project_dir)},
        "admin": {"access_file": "access.yaml", "audit_log": "audit.jsonl", **admin},
    }
    path = root / "flower.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


def admin_env(root: Path) -> dict[str, str]:
    """The environment of a `flower` process reading `root`/flower.yaml and nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWER_", "DAGSTER_"))}
    env.update(
        FLOWER_SETTINGS_FILE=str(root / "flower.yaml"), DBT_SEND_ANONYMOUS_USAGE_STATS="false"
    )
    return env


def memory_kb(pid: int) -> tuple[int, int]:
    """The resident memory of a process and its peak so far, from /proc/<pid>/status (VmRSS
    and VmHWM, in kB)."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def dagster_dev_command(port: int) -> list[str]:
    """`dagster dev` on the repository's workspace, on 127.0.0.1 only."""
    dagster = Path(sys.executable).with_name("dagster")
    workspace = REPO_ROOT / "workspace.yaml"
    return [str(dagster), "dev", "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)]


def spawn(args: list[str], cwd: Path, env: Mapping[str, str], log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            args,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group (webserver, daemon, code server, runs), then SIGKILL."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        pass
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def has_assets(url: str) -> bool:
    request = urllib.request.Request(
        url + "/graphql",
        data=json.dumps({"query": "{ assetNodes { assetKey { path } } }"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return bool(json.load(response)["data"]["assetNodes"])
    except (OSError, KeyError, TypeError, ValueError):
        return False
