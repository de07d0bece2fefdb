"""The deployment files, checked as far as they can be without Docker or Kubernetes here.

The Helm values and the Dockerfile cannot run on this machine; what can be checked is that they
parse, that they name the code location and make targets that exist (the same targets the test
suite runs), and that no secret is written in them.
"""

from __future__ import annotations

import re
import subprocess
import tomllib

import yaml

from flower_dagster.settings import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"


def _module_name() -> str:
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    return pyproject["tool"]["dagster"]["module_name"]


def _values() -> dict:
    return yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())


def test_the_helm_values_serve_the_code_location_with_its_settings_and_secrets():
    values = _values()
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    args = deployment["dagsterApiGrpcArgs"]
    assert args == ["-m", _module_name()]
    # Every Dagster process runs the prod environment of flower.yaml with the same secrets.
    for section in (values["dagsterWebserver"], values["dagsterDaemon"], deployment):
        assert {"name": "FLOWER_ENV", "value": "prod"} in section["env"]
        assert {"name": "flower-secrets"} in section["envSecrets"]
    assert {"name": "flower-secrets"} in (
        values["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"]
    )
    assert values["runLauncher"]["type"] == "K8sRunLauncher"


def test_the_ui_stays_internal_and_analysts_get_a_read_only_one():
    values = _values()
    webserver = values["dagsterWebserver"]
    assert webserver["service"]["type"] == "ClusterIP"
    assert webserver["enableReadOnly"] is True
    assert "ingress" not in values or not values["ingress"].get("enabled")


def test_dagster_storage_is_an_external_postgres_with_a_password_from_a_secret():
    values = _values()
    assert values["postgresql"]["enabled"] is False
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"]
    assert "postgresqlPassword" not in values["postgresql"]


def test_no_secret_is_written_in_the_deployment_files():
    for path in DEPLOY.rglob("*"):
        if not path.is_file():
            continue
        text = path.read_text()
        assert not re.search(r"xox[abp]-[0-9A-Za-z-]+", text), path
        for line in text.splitlines():
            stripped = line.split("#", 1)[0]
            # A password key may only point elsewhere (env var, secret), never hold a value.
            match = re.match(r"\s*-?\s*(\w*(?:password|Password))\s*:\s*(\S.*)?$", stripped)
            assert not (match and match.group(2)), (path, line)


def _dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_the_dockerfile_builds_with_the_makefile_targets_the_tests_run():
    instructions = _dockerfile_instructions()
    targets = [
        target
        for keyword, rest in instructions
        if keyword == "RUN"
        for target in re.findall(r"(?:^|&&|;)\s*make\s+([\w-]+)", rest)
    ]
    assert targets == ["setup", "prepare"]
    # Each is a real target of the Makefile (make resolves it without running anything).
    for target in targets:
        dry = subprocess.run(
            ["make", "-n", target], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )
        assert dry.returncode == 0, dry.stderr
    # `make test` sets up the same way before it tests.
    assert re.search(r"^test: setup", (REPO_ROOT / "Makefile").read_text(), re.MULTILINE)


def test_the_dockerfile_copies_files_that_exist_and_serves_the_code_location():
    instructions = _dockerfile_instructions()
    for keyword, rest in instructions:
        if keyword == "COPY":
            *sources, _destination = rest.split()
            for source in sources:
                assert (REPO_ROOT / source).exists(), source
    (cmd,) = [rest for keyword, rest in instructions if keyword == "CMD"]
    assert yaml.safe_load(cmd) == [
        "dagster",
        "api",
        "grpc",
        "-m",
        _module_name(),
        "-h",
        "0.0.0.0",
        "-p",
        "3030",
    ]
    (deployment,) = _values()["dagster-user-deployments"]["deployments"]
    assert deployment["port"] == 3030


def test_the_deploy_docs_walk_through_every_file():
    docs = (REPO_ROOT / "docs" / "deploy.md").read_text()
    for path in sorted(p for p in DEPLOY.rglob("*") if p.is_file()):
        assert str(path.relative_to(REPO_ROOT)) in docs, path


def test_the_image_names_its_settings_file_for_every_process():
    """Run pods and `kubectl exec` may start elsewhere than WORKDIR: the variable finds the file."""
    instructions = _dockerfile_instructions()
    workdir = next(rest for keyword, rest in instructions if keyword == "WORKDIR")
    env = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    assert f"FLOWER_SETTINGS_FILE={workdir}/flower.yaml" in env.split()
    copied = " ".join(rest for keyword, rest in instructions if keyword == "COPY")
    assert "flower.yaml" in copied.split()


def test_the_environment_is_the_lock_files_with_dbt_core_1_12_and_no_experimental_parser():
    """`make` installs uv.lock exactly: dbt-core 1.12 without the parser whose build downloads
    a binary from outside the package index (overridden away in pyproject.toml)."""
    from importlib import metadata

    lock = tomllib.loads((REPO_ROOT / "uv.lock").read_text())
    locked = {package["name"]: package["version"] for package in lock["package"]}
    assert locked["dbt-core"].startswith("1.12.")
    # Resolved (uv locks every platform), but only for a platform that does not exist.
    assert {"name": "dbt-core-experimental-parser", "marker": "sys_platform == 'never'"} in (
        lock["manifest"]["overrides"]
    )
    for name in ("dbt-core", "dagster", "dagster-dbt", "dbt-duckdb"):
        assert metadata.version(name) == locked[name], name
    try:
        metadata.version("dbt-core-experimental-parser")
    except metadata.PackageNotFoundError:
        pass
    else:
        raise AssertionError("dbt-core-experimental-parser is installed")
    assert not (REPO_ROOT / "constraints.txt").exists()


def test_the_helm_daemon_frees_the_slots_of_dead_runs_like_the_instance_file():
    """The chart renders the daemon's run_monitoring from its own values: without them a pod
    killed mid-run keeps the `warehouse` slot and every later dbt run waits queued."""
    monitoring = _values()["dagsterDaemon"]["runMonitoring"]
    instance = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())["run_monitoring"]
    assert monitoring["enabled"] is True
    assert monitoring["pollIntervalSeconds"] == instance["poll_interval_seconds"]
    assert monitoring["freeSlotsAfterRunEndSeconds"] == instance["free_slots_after_run_end_seconds"]
    assert 0 < monitoring["freeSlotsAfterRunEndSeconds"] <= 60
    assert monitoring["startTimeoutSeconds"] >= 180
