"""The `admin` section of flower.yaml: safe defaults, paths relative to the file, one line per
mistake."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from flower_dagster.errors import SettingsError
from flower_dagster.settings import DEMO_DBT_PROJECT_DIR, REPO_ROOT, load_settings


def _settings(tmp_path: Path, text: str):
    path = tmp_path / "flower.yaml"
    # Without dbt.project_dir the project is dbt_project/ next to the file: name the demo's.
    path.write_text(f"dbt: {{project_dir: {DEMO_DBT_PROJECT_DIR}}}\n" + textwrap.dedent(text))
    return load_settings({"FLOWER_SETTINGS_FILE": str(path)})


def test_without_an_admin_section_it_binds_loopback_and_trusts_no_header(tmp_path):
    admin = _settings(tmp_path, "partitions: {start: 2024-01-01}\n").admin
    assert admin.host == "127.0.0.1"
    assert admin.dagster_graphql_url == "http://127.0.0.1:3000/graphql"
    assert admin.trust_proxy_header is None and admin.trusted_proxies is None
    assert admin.access_file == tmp_path / "access.yaml"
    assert admin.audit_log == tmp_path / "admin-audit.jsonl"
    assert admin.max_partitions >= 31


def test_the_repository_file_points_at_the_repository_access_file():
    admin = load_settings({}).admin
    assert admin.access_file == REPO_ROOT / "access.yaml" and admin.access_file.is_file()
    assert (admin.host, admin.trust_proxy_header) == ("127.0.0.1", None)


def test_the_section_sets_every_key(tmp_path):
    admin = _settings(
        tmp_path,
        """
        admin:
          host: 10.0.0.5
          port: 8443
          dagster_graphql_url: http://dagster.internal:3000/graphql
          access_file: conf/access.yaml
          max_partitions: 14
          audit_log: /var/log/flower/audit.jsonl
          trust_proxy_header: X-Forwarded-User
          trusted_proxies: [10.0.0.2]
        """,
    ).admin
    assert (admin.host, admin.port, admin.max_partitions) == ("10.0.0.5", 8443, 14)
    assert admin.dagster_graphql_url == "http://dagster.internal:3000/graphql"
    assert admin.access_file == tmp_path / "conf" / "access.yaml"
    assert admin.audit_log == Path("/var/log/flower/audit.jsonl")
    assert admin.trust_proxy_header == "X-Forwarded-User"


def test_every_mistake_is_one_line_naming_key_value_and_what_is_allowed(tmp_path):
    with pytest.raises(SettingsError) as raised:
        _settings(
            tmp_path,
            """
            admin:
              port: 70000
              dagster_graphql_url: dagster:3000
              max_partitions: 0
              trust_proxy_header: "X Forwarded User"
              hosts: 0.0.0.0
            """,
        )
    lines = str(raised.value).splitlines()
    assert lines[0] == "5 settings problems:"
    assert set(lines[1:]) == {
        "  - flower.yaml: admin.port is 70000; allowed: a TCP port from 1 to 65535, e.g. 3100",
        "  - flower.yaml: admin.dagster_graphql_url is 'dagster:3000'; allowed: the http(s) URL "
        "of Dagster's GraphQL endpoint, e.g. http://127.0.0.1:3000/graphql",
        "  - flower.yaml: admin.max_partitions is 0; allowed: a whole number of partitions per "
        "backfill from 1 to 10000",
        "  - flower.yaml: admin.trust_proxy_header is 'X Forwarded User'; allowed: an HTTP header "
        "name set by an authenticating proxy, e.g. X-Forwarded-User (or leave it out: tokens "
        "only)",
        "  - flower.yaml: unknown key 'admin.hosts' in admin; allowed: host, port, "
        "dagster_graphql_url, access_file, max_partitions, audit_log, trust_proxy_header, "
        "trusted_proxies",
    }


def test_trusted_proxies_are_addresses_or_networks_and_required_with_the_header(tmp_path):
    admin = _settings(
        tmp_path,
        """
        admin:
          trust_proxy_header: X-Forwarded-User
          trusted_proxies: [10.0.4.7, 10.0.8.0/24, "fd00::/8"]
        """,
    ).admin
    assert [str(n) for n in admin.trusted_proxies] == ["10.0.4.7/32", "10.0.8.0/24", "fd00::/8"]
    with pytest.raises(SettingsError) as raised:
        _settings(tmp_path, "admin: {trust_proxy_header: X-Forwarded-User}\n")
    assert str(raised.value) == (
        "flower.yaml: admin.trusted_proxies is missing; allowed: a list of the authenticating "
        "proxy's IP addresses or networks, e.g. [10.0.4.7, 10.0.8.0/24]; required with "
        "admin.trust_proxy_header"
    )
    with pytest.raises(SettingsError) as raised:
        _settings(
            tmp_path,
            "admin: {trust_proxy_header: X-Forwarded-User, trusted_proxies: [10.0.4.7/8, proxy]}",
        )
    lines = str(raised.value).splitlines()
    assert lines[0] == "2 settings problems:"
    assert lines[1].startswith("  - flower.yaml: admin.trusted_proxies.0 is '10.0.4.7/8'; allowed:")
    assert lines[2].startswith("  - flower.yaml: admin.trusted_proxies.1 is 'proxy'; allowed:")
