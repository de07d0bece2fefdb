"""dbt started as a fork of the run's process (flower_dagster/dbt/launch.py): only when it is
safe, with dbt's own exit codes and output, stopped by SIGINT whatever the parent does with it,
and a Dagster run through it leaves the same rows and data versions as a new dbt process."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from dagster import AssetKey, AssetRecordsFilter
from dagster_dbt import DbtCliResource
from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation

from flower_dagster.dagster_tags import DATA_VERSION_TAG
from flower_dagster.dbt.launch import ENV_VAR, EXEC, FORK, start_choice
from flower_dagster.errors import SettingsError
from tests.conftest import Warehouse
from tests.test_collector import fresh_python

DBT = str(Path(sys.executable).with_name("dbt"))

# FlowerDbtCliResource.cli and FlowerDbtCliInvocation.run follow these two methods of the pinned
# dagster-dbt (0.29.27). When dagster-dbt changes them, compare flower_dagster/dbt/assets.py
# with the new source, bring it in step, and record the new digests here.
PINNED_SOURCES = {
    "DbtCliResource.cli": (
        DbtCliResource.cli,
        "a9ca99daf92597e331f88b38b44b303de90cb9d8173e05bf791c7965f0fb7cda",
    ),
    "DbtCliInvocation.run": (
        DbtCliInvocation.run,
        "5339aed89294e237c6c0f640700d1aa37f92b70a2b2889ccf53a188db4811cdb",
    ),
}


@pytest.mark.parametrize("name", sorted(PINNED_SOURCES))
def test_the_dagster_dbt_methods_flower_follows_are_the_ones_it_was_written_against(name):
    method, digest = PINNED_SOURCES[name]
    assert hashlib.sha256(inspect.getsource(method).encode()).hexdigest() == digest, (
        f"dagster-dbt's {name} changed: compare FlowerDbtCliResource.cli / "
        "FlowerDbtCliInvocation.run (flower_dagster/dbt/assets.py) with it"
    )


@pytest.mark.parametrize(
    ("value", "choice"), [(None, FORK), ("", FORK), ("fork", FORK), (" EXEC ", EXEC)]
)
def test_the_choice_defaults_to_fork(value, choice):
    assert start_choice({} if value is None else {ENV_VAR: value}) == choice


def test_a_bad_choice_names_the_variable_and_what_is_allowed():
    with pytest.raises(SettingsError) as raised:
        start_choice({ENV_VAR: "sometimes"})
    message = str(raised.value)
    assert f"{ENV_VAR}='sometimes' is not allowed" in message
    assert "'fork'" in message and "'exec'" in message


def test_the_code_location_refuses_a_bad_choice_when_it_loads():
    refused = fresh_python("import flower_dagster.definitions", env={ENV_VAR: "sometimes"})
    assert refused.returncode != 0
    assert f"SettingsError: {ENV_VAR}='sometimes' is not allowed" in refused.stderr


# Says, in a fresh interpreter that has imported dagster-dbt as a run worker has, why dbt could
# not be forked: as it is, with FLOWER_DBT_START=exec, for another dbt, with Dagster's run-worker
# threads running and then one more, and once DuckDB is loaded.
BLOCKERS = """
import json, os, sys, threading
import dagster_dbt
from flower_dagster.dbt.launch import fork_blocker
dbt = os.path.join(os.path.dirname(sys.executable), "dbt")
out = {"clean": fork_blocker(dbt), "exec": fork_blocker(dbt, {"FLOWER_DBT_START": "exec"}),
       "other dbt": fork_blocker("/opt/elsewhere/dbt")}
stop = threading.Event()
for name in ("termination-handler", "QueueFeederThread", "worker"):
    thread = threading.Thread(target=stop.wait, name=name, daemon=True)
    thread.start()
    out[name] = fork_blocker(dbt)
stop.set()
import duckdb
out["duckdb"] = fork_blocker(dbt)
print(json.dumps(out))
"""


def test_dbt_is_forked_only_without_other_threads_or_duckdb():
    done = fresh_python(BLOCKERS, unset=(ENV_VAR,))
    assert done.returncode == 0, done.stderr
    reasons = json.loads(done.stdout.strip().splitlines()[-1])
    assert reasons["clean"] is None
    assert reasons["exec"] == f"{ENV_VAR}=exec"
    assert "not the dbt beside this Python" in reasons["other dbt"]
    # Dagster's own threads in a run worker do not stop a fork; any other thread does.
    assert reasons["termination-handler"] is None and reasons["QueueFeederThread"] is None
    assert reasons["worker"] == "other threads run in this process: worker"
    assert reasons["duckdb"] == "DuckDB is loaded in this process"


# Runs dbt commands in a fresh interpreter (a run worker's state: dagster-dbt imported, Dagster's
# own SIGINT/SIGTERM handlers stood in for by ones that swallow the signal), as a fork and as a new
# process, and prints what each gave: exit code and output. The last command spins until SIGINT
# arrives, which the parent sends a second after dbt has started, and again every five seconds
# until dbt has closed its output (at most ten times, then SIGKILL). A child that kept the
# parent's handler would swallow every one.
COMMANDS = """
import json, os, signal, subprocess, sys, threading, time
import dagster_dbt
from flower_dagster.dbt.launch import ForkedDbt
signal.signal(signal.SIGINT, lambda *_: None)
signal.signal(signal.SIGTERM, lambda *_: None)
project = sys.argv[1]
dbt = os.path.join(os.path.dirname(sys.executable), "dbt")
env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_PROFILES_DIR": project,
       "PYTHONUNBUFFERED": "1"}  # as dagster-dbt sets it: a new dbt's lines arrive as written
def run(kind, args, interrupt=False):
    command = [dbt, *args]
    if kind == "fork":
        sys.stdout.write("unflushed-parent-line\\n")  # block-buffered: stdout is a pipe here
        process = ForkedDbt(command, env, project)
    else:
        process = subprocess.Popen(command, env=env, cwd=project, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT)
    lines, closed, sent = [], threading.Event(), []
    def interrupt_until_closed():
        while len(sent) < 10 and not closed.wait(5 if sent else 1):  # not reaped before EOF
            os.kill(process.pid, signal.SIGINT)
            sent.append(1)
        if not closed.wait(5):
            os.kill(process.pid, signal.SIGKILL)  # it swallowed them all: fail, do not hang
    interrupter = threading.Thread(target=interrupt_until_closed)
    for raw in process.stdout:
        lines.append(raw.decode(errors="replace").rstrip())
        if interrupt and "spinning" in lines[-1] and not interrupter.is_alive():
            interrupter.start()
    closed.set()
    if interrupt:
        interrupter.join()
    return {"code": process.wait(timeout=120), "out": lines, "sigints": len(sent)}
out = {}
for kind in ("fork", "exec"):
    out[kind] = {"version": run(kind, ["--version"]), "unknown": run(kind, ["no-such-command"]),
                 "spin": run(kind, ["run-operation", "spin"], interrupt=True)}
print(json.dumps(out))
"""

# Ten billion turns of a Jinja loop: Python bytecode, which a SIGINT interrupts at once. (A
# DuckDB query does not make a reliable spin: whether DuckDB looks at Python's signals while it
# runs depends on which of its threads takes the scan, and a new dbt process, Dagster's way,
# let every SIGINT pass about one run in seven here.)
SPIN_MACRO = """
{% macro spin() %}
  {{ log("spinning", info=True) }}
  {% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}
{% endmacro %}
"""


@pytest.mark.slow
def test_a_forked_dbt_answers_as_a_new_dbt_process_and_stops_on_sigint(tmp_path: Path):
    project = tmp_path / "spin"
    (project / "macros").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: spin\nversion: '1.0'\nprofile: spin\nmacro-paths: [macros]\n"
    )
    (project / "profiles.yml").write_text(
        textwrap.dedent(f"""\
        spin:
          target: dev
          outputs:
            dev: {{type: duckdb, path: "{tmp_path / "spin.duckdb"}", threads: 1}}
        """)
    )
    (project / "macros" / "spin.sql").write_text(SPIN_MACRO)
    # Without PYTHONUNBUFFERED the parent's stdout (a pipe) is block-buffered, as a run
    # worker's may be: the forked dbt's lines must still arrive as written (else no SIGINT is
    # sent and this hangs), and what the parent had not flushed must not reach dbt's output.
    done = fresh_python(COMMANDS, str(project), unset=(ENV_VAR, "PYTHONUNBUFFERED"), timeout=600)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    fork, new = result["fork"], result["exec"]
    # The same answers, exit codes included.
    assert fork["version"] == new["version"]
    assert fork["version"]["code"] == 0 and any("Core:" in x for x in fork["version"]["out"])
    assert fork["unknown"]["code"] == new["unknown"]["code"] == 2
    # The first SIGINT stops dbt in the middle of a macro that would run for many minutes, as
    # it stops a new dbt: the child does not keep the parent's handler, which swallows it.
    assert fork["spin"]["code"] == new["spin"]["code"] == 2
    for kind in ("fork", "exec"):
        spin = result[kind]["spin"]
        assert any("spinning" in line for line in spin["out"]), (kind, spin["out"])
        assert spin["sigints"] == 1, (kind, spin)
        assert any("KeyboardInterrupt" in line for line in spin["out"]), (kind, spin["out"])
        assert not any("resource_tracker" in line for line in spin["out"]), (kind, spin["out"])
    assert not any("unflushed-parent-line" in x for run in fork.values() for x in run["out"])


# Makes os.fork fail as it does without memory or a free process slot, then asks for a dbt
# command: ForkedDbt gives the error back and leaves no pipe open; the invocation starts a new
# dbt process instead and says why.
FORK_FAILS = """
import errno, json, logging, os, sys, tempfile
from pathlib import Path
from dagster_dbt import DagsterDbtTranslator
from packaging.version import Version
from flower_dagster.dbt.assets import FlowerDbtCliInvocation
from flower_dagster.dbt.launch import ForkedDbt
said = []
handler = logging.Handler()
handler.emit = lambda record: said.append(record.getMessage())
logging.getLogger("dagster").addHandler(handler)
def no_fork():
    raise OSError(errno.ENOMEM, "Cannot allocate memory")
os.fork = no_fork
dbt = os.path.join(os.path.dirname(sys.executable), "dbt")
fds = len(os.listdir("/proc/self/fd"))
try:
    ForkedDbt([dbt, "--version"], dict(os.environ), ".")
    raised = None
except OSError as error:
    raised = error.errno
fds_left = len(os.listdir("/proc/self/fd")) - fds
folder = Path(tempfile.mkdtemp())
invocation = FlowerDbtCliInvocation.run(
    args=[dbt, "--version"], env=dict(os.environ), manifest={},
    dagster_dbt_translator=DagsterDbtTranslator(), project_dir=folder,
    target_path=folder / "target", raise_on_error=False, context=None, adapter=None,
    cli_version=Version("1.11.0"),
)
output = invocation.process.stdout.read().decode()
print(json.dumps({"raised": raised, "fds_left": fds_left,
                  "code": invocation.process.wait(), "version": "Core:" in output,
                  "said": [line for line in said if "Running dbt command" in line]}))
"""


def test_when_the_fork_fails_dbt_starts_as_a_new_process_and_says_why():
    done = fresh_python(FORK_FAILS, unset=(ENV_VAR,))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["raised"] == 12 and result["fds_left"] == 0
    assert result["code"] == 0 and result["version"]
    (said,) = result["said"]
    assert "started as a new process, pid" in said
    assert "the fork failed ([Errno 12] Cannot allocate memory)" in said


def _materialize(warehouse: Warehouse, day: str, choice: str | None) -> str:
    env = {**os.environ, "DAGSTER_HOME": str(warehouse.dagster_home)}
    env.pop(ENV_VAR, None)
    if choice is not None:
        env[ENV_VAR] = choice
    done = subprocess.run(
        [
            *(str(Path(sys.executable).with_name("dagster")), "asset", "materialize"),
            *("-m", "flower_dagster.definitions", "--select", "fct_orders", "--partition", day),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    return output


@pytest.mark.slow
def test_a_run_gives_the_same_rows_and_data_version_with_a_forked_dbt(warehouse: Warehouse):
    day = "2024-02-08"
    key = AssetKey("fct_orders")
    seen = {}
    for choice in (None, EXEC, None):
        output = _materialize(warehouse, day, choice)
        forked = "(started as a fork of this process, pid" in output
        assert forked is (choice is None), output[-3000:]
        record = warehouse.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=[day]), limit=1
        ).records[0]
        rows = warehouse.query("select * from fct_orders where order_date = ? order by all", [day])
        assert rows
        materialization = record.asset_materialization
        assert materialization is not None
        seen.setdefault("rows", rows)
        seen.setdefault("version", materialization.tags[DATA_VERSION_TAG])
        assert rows == seen["rows"]
        assert materialization.tags[DATA_VERSION_TAG] == seen["version"]
        seen.setdefault("runs", set()).add(record.run_id)
    assert len(seen["runs"]) == 3
