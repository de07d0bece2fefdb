"""The collector thresholds every process that loads flower-dagster's instance sets
(flower_dagster/collector.py): parsed from FLOWER_GC_THRESHOLDS with a clear error, and applied
by loading make dev's real instance in a fresh interpreter."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from flower_dagster.collector import (
    DEFAULT_THRESHOLDS,
    ENV_VAR,
    parse_thresholds,
    tune_collector,
)
from flower_dagster.errors import SettingsError
from flower_dagster.storage import DEV_INSTANCE_FILE, write_instance_yaml

# Loads an instance from the folder in argv[1] once per value in argv[2:] ("-" for unset) and
# prints the thresholds after each, or the error's message.
LOADER = """
import gc, json, os, sys
from dagster import DagsterInstance
out = {"before": gc.get_threshold()}
for value in sys.argv[2:]:
    if value == "-":
        os.environ.pop("FLOWER_GC_THRESHOLDS", None)
    else:
        os.environ["FLOWER_GC_THRESHOLDS"] = value
    try:
        with DagsterInstance.from_config(sys.argv[1]) as instance:
            instance.get_runs(limit=1)
        out[value] = gc.get_threshold()
    except Exception as error:
        out[value] = f"{type(error).__name__}: {error}"
print(json.dumps(out))
"""


def fresh_python(
    code: str,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: int = 300,
    unset: tuple[str, ...] = (ENV_VAR,),
):
    """`code` run by a fresh interpreter, the variables in `unset` (by default
    FLOWER_GC_THRESHOLDS) only as `env` sets them."""
    base = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def load_instances(home: Path, *values: str, env: dict[str, str] | None = None) -> dict:
    """What each load of the instance in `home` left as thresholds, in a fresh interpreter."""
    done = fresh_python(LOADER, str(home), *values, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return {k: tuple(v) if isinstance(v, list) else v for k, v in result.items()}


@pytest.fixture
def restored() -> Iterator[None]:
    kept = gc.get_threshold()
    yield
    gc.set_threshold(*kept)


@pytest.mark.parametrize("value", [None, "", "  "])
def test_unset_means_the_default(value):
    assert parse_thresholds(value) == DEFAULT_THRESHOLDS


def test_python_keeps_the_process_thresholds_and_any_three_positive_integers_are_taken():
    assert parse_thresholds("python") is None
    assert parse_thresholds(" Python ") is None
    assert parse_thresholds("2000, 20, 50") == (2000, 20, 50)


@pytest.mark.parametrize("value", ["10000,10", "10000,10,100,1", "a,b,c", "0,10,10", "-1,1,1"])
def test_a_bad_value_names_the_variable_and_what_is_allowed(value):
    with pytest.raises(SettingsError) as raised:
        parse_thresholds(value)
    message = str(raised.value)
    assert ENV_VAR in message and repr(value) in message
    assert "three positive integers" in message and "'python'" in message


def test_tune_collector_sets_the_thresholds_it_returns(restored):
    gc.set_threshold(700, 10, 10)
    assert tune_collector({}) == DEFAULT_THRESHOLDS == gc.get_threshold()
    assert tune_collector({ENV_VAR: "900,9,9"}) == (900, 9, 9) == gc.get_threshold()
    assert tune_collector({ENV_VAR: "python"}) == (900, 9, 9) == gc.get_threshold()
    with pytest.raises(SettingsError):
        tune_collector({ENV_VAR: "lots"})
    assert gc.get_threshold() == (900, 9, 9)


def test_loading_make_devs_instance_tunes_the_process_and_a_bad_value_stops_the_load(tmp_path):
    write_instance_yaml(DEV_INSTANCE_FILE, tmp_path)
    result = load_instances(tmp_path, "python", "-", "3000,5,50", "7,7")
    assert result["python"] == result["before"]  # CPython's own, untouched
    assert result["-"] == DEFAULT_THRESHOLDS
    assert result["3000,5,50"] == (3000, 5, 50)
    assert result["7,7"].startswith("SettingsError") and ENV_VAR in result["7,7"]


# Imports the code location (the demo project), as `dagster dev`'s code server does, and prints
# the collector's thresholds then.
CODE_LOCATION = "import gc, json, flower_dagster.definitions; print(json.dumps(gc.get_threshold()))"


def test_the_code_location_tunes_its_process_before_building_and_refuses_a_bad_value():
    loaded = fresh_python(CODE_LOCATION)
    assert loaded.returncode == 0, loaded.stderr
    assert tuple(json.loads(loaded.stdout.strip().splitlines()[-1])) == DEFAULT_THRESHOLDS
    refused = fresh_python(CODE_LOCATION, env={ENV_VAR: "fast"})
    assert refused.returncode != 0
    assert f"SettingsError: {ENV_VAR}='fast' is not allowed" in refused.stderr


# Registers, before anything of flower-dagster's, an exit handler that runs after every later
# one (atexit runs them last-in first-out) and says whether the heap was frozen by then; then
# loads the instance in argv[1] once, as a run worker or the CLI does.
AT_EXIT = """
import atexit, gc, sys
atexit.register(lambda: print("frozen at exit:", gc.get_freeze_count() > 0, flush=True))
from dagster import DagsterInstance
with DagsterInstance.from_config(sys.argv[1]) as instance:
    instance.get_runs(limit=1)
print("frozen before exit:", gc.get_freeze_count() > 0, flush=True)
"""


@pytest.mark.parametrize(
    ("value", "frozen"), [(None, True), ("3000,5,50", True), ("python", False)]
)
def test_a_tuned_process_skips_the_last_collection_at_exit(tmp_path, value, frozen):
    write_instance_yaml(DEV_INSTANCE_FILE, tmp_path)
    done = fresh_python(AT_EXIT, str(tmp_path), env={ENV_VAR: value} if value else None)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    # Nothing is frozen while the process works; only at exit, unless CPython's way was asked.
    assert "frozen before exit: False" in lines
    assert lines[-1] == f"frozen at exit: {frozen}"
