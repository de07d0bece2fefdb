"""The admin service (the real `flower admin` process) over HTTP, with a recording stand-in for
Dagster.

What needs no real Dagster: who is recognised (token, trusted proxy header), what is written to
the audit log, what reaches Dagster's GraphQL API and what never does, the access file reloaded
when it changes, and a Dagster that does not answer. The real Dagster is in test_admin_e2e.py.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from flower_dagster.admin.access import hash_token
from flower_dagster.admin.audit import AuditLog, read_audit
from tests.admin_support import (
    AdminStack,
    admin_env,
    free_port,
    memory_kb,
    serve_admin,
    write_settings,
)
from tests.conftest import Warehouse, copy_demo_project

TOKENS = {"jimin": "jimin-token-0123456789-abcdefghij", "seoyeon": "seoyeon-token-0123456789-abcd"}


class _FakeDagster(BaseHTTPRequestHandler):
    """Answers the admin's GraphQL queries and records each one."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.received.append(body)  # type: ignore[attr-defined]
        if self.server.down:  # type: ignore[attr-defined]
            self.send_response(502)
            self.end_headers()
            return
        query = body["query"]
        backfills = self.server.backfills  # type: ignore[attr-defined]
        if "launchPartitionBackfill" in query:
            time.sleep(self.server.launch_delay)  # type: ignore[attr-defined]
            backfill_id = f"bf{len(self.server.received)}"  # type: ignore[attr-defined]
            params = body["variables"]["params"]
            backfills.insert(
                0,
                {"id": backfill_id, "status": "REQUESTED", "timestamp": 0, "tags": params["tags"]},
            )
            data = {
                "launchPartitionBackfill": {
                    "__typename": "LaunchBackfillSuccess",
                    "backfillId": backfill_id,
                }
            }
        elif "partitionBackfillsOrError" in query:
            # The admin's launch asks only for the REQUESTED ones; its list for all.
            wanted = [
                b for b in backfills if "REQUESTED" not in query or b["status"] == "REQUESTED"
            ]
            data = {
                "partitionBackfillsOrError": {"__typename": "PartitionBackfills", "results": wanted}
            }
        elif "assetMaterializations" in query:
            # The inputs check of a launch: every unpartitioned input has been built.
            keys = body["variables"]["keys"]
            data = {
                "assetNodes": [
                    {"assetKey": k, "assetMaterializations": [{"timestamp": 0}]} for k in keys
                ]
            }
        else:
            data = {"assetNodes": []}
        payload = json.dumps({"data": data}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@dataclass
class Service:
    stack: AdminStack
    dagster: ThreadingHTTPServer
    access_file: Path

    def mutations(self) -> list[dict]:
        return [r for r in self.dagster.received if "launchPartitionBackfill" in r["query"]]


def _write_access(path: Path, commerce_models: list[str]) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "people": {
                    "jimin": {"groups": ["commerce"], "token_sha256": hash_token(TOKENS["jimin"])},
                    "seoyeon": {
                        "groups": ["growth"],
                        "token_sha256": hash_token(TOKENS["seoyeon"]),
                    },
                    "proxied": {"groups": ["growth"]},  # no token: only through the proxy
                },
                "groups": {
                    "commerce": {"models": commerce_models},
                    "growth": {"models": ["owner:growth"]},
                },
            }
        )
    )


@pytest.fixture(scope="module")
def service(warehouse: Warehouse, tmp_path_factory) -> Iterator[Service]:
    """The real `flower admin` process, trusting the proxy header from 127.0.0.1 only."""
    root = tmp_path_factory.mktemp("admin_service")
    dagster = ThreadingHTTPServer(("127.0.0.1", 0), _FakeDagster)
    dagster.received = []  # type: ignore[attr-defined]
    dagster.down = False  # type: ignore[attr-defined]
    dagster.backfills = []  # type: ignore[attr-defined]
    dagster.launch_delay = 0.0  # type: ignore[attr-defined]
    threading.Thread(target=dagster.serve_forever, daemon=True).start()
    access_file = root / "access.yaml"
    _write_access(access_file, ["owner:commerce"])
    admin = {
        "dagster_graphql_url": f"http://127.0.0.1:{dagster.server_port}/graphql",
        "max_partitions": 10,
        "trust_proxy_header": "X-Forwarded-User",
        "trusted_proxies": ["127.0.0.1"],
    }
    try:
        for stack in serve_admin(root, admin, warehouse.project_dir, TOKENS):
            yield Service(stack, dagster, access_file)
    finally:
        dagster.shutdown()


LAUNCH = {"model": "fct_orders", "from": "2024-01-09", "to": "2024-01-11", "reason": "reload"}


def test_a_launch_sends_one_asset_backfill_with_who_and_why(service: Service):
    before = len(service.mutations())
    status, answer = service.stack.call("POST", "/api/backfills", TOKENS["jimin"], LAUNCH)
    assert status == 201, answer
    sent = service.mutations()[before:]
    assert len(sent) == 1
    params = sent[0]["variables"]["params"]
    assert params["assetSelection"] == [{"path": ["fct_orders"]}]
    assert params["partitionNames"] == ["2024-01-09", "2024-01-10", "2024-01-11"]
    assert {t["key"]: t["value"] for t in params["tags"]} == {
        "flower/launched-by": "jimin",
        "flower/reason": "reload",
        "flower/via": "backfill-admin",
        # Who, model, first and last partition, reason: what makes a request the same.
        "flower/request": hashlib.sha256(
            json.dumps(["jimin", "fct_orders", "2024-01-09", "2024-01-11", "reload"]).encode()
        ).hexdigest(),
    }
    assert params["title"] == "fct_orders 2024-01-09..2024-01-11 by jimin"
    assert answer["id"] == f"bf{len(service.dagster.received)}"


@pytest.mark.parametrize(
    ("token", "headers", "body", "status"),
    [
        (None, {}, LAUNCH, 401),
        ("x" * 40, {}, LAUNCH, 401),
        (TOKENS["seoyeon"], {}, LAUNCH, 403),
        (TOKENS["jimin"], {}, {**LAUNCH, "to": "2024-01-30"}, 422),
        (None, {"X-Forwarded-User": "mallory"}, LAUNCH, 401),
        (None, {"X-Forwarded-User": "proxied"}, LAUNCH, 403),
    ],
)
def test_a_refused_launch_never_reaches_dagster(service: Service, token, headers, body, status):
    before = len(service.mutations())
    got, answer = service.stack.call("POST", "/api/backfills", token, body, headers=headers)
    assert got == status, answer
    assert len(service.mutations()) == before


def test_a_trusted_proxy_header_names_the_person_and_is_audited_as_such(service: Service):
    status, me = service.stack.call("GET", "/api/me", headers={"X-Forwarded-User": "proxied"})
    assert status == 200 and me["user"] == "proxied" and me["groups"] == ["growth"]
    own = {**LAUNCH, "model": "fct_sessions", "reason": "launched through the proxy"}
    status, _ = service.stack.call(
        "POST", "/api/backfills", body=own, headers={"X-Forwarded-User": "proxied"}
    )
    assert status == 201
    line = service.stack.audit()[-1]
    assert (line["user"], line["auth"], line["outcome"]) == ("proxied", "proxy", "allowed")
    status, _ = service.stack.call("GET", "/api/me", headers={"X-Forwarded-User": "nobody"})
    assert status == 401
    line = service.stack.audit()[-1]
    assert (line["user"], line["claimed_user"], line["outcome"]) == (None, "nobody", "refused")


def _call_from(
    service: Service, source: str, method: str, path: str, headers: dict[str, str], body=None
) -> tuple[int, dict]:
    """A request from another loopback address (127.0.0.2 is not 127.0.0.1 to the service)."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", service.stack.admin_port, timeout=30, source_address=(source, 0)
    )
    try:
        data = None if body is None else json.dumps(body)
        sent = {**headers, **({"Content-Type": "application/json"} if body is not None else {})}
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_a_proxy_header_from_an_address_that_is_no_trusted_proxy_names_nobody(service: Service):
    before = len(service.mutations())
    header = {"X-Forwarded-User": "proxied"}
    status, answer = _call_from(service, "127.0.0.2", "GET", "/api/me", header)
    assert status == 403 and "127.0.0.2, not from a trusted proxy" in answer["error"]
    line = service.stack.audit()[-1]
    assert (line["client"], line["user"], line["claimed_user"], line["outcome"]) == (
        "127.0.0.2",
        None,
        "proxied",
        "refused",
    )
    growth = {**LAUNCH, "model": "fct_sessions"}  # proxied's own model
    status, _ = _call_from(service, "127.0.0.2", "POST", "/api/backfills", header, growth)
    assert status == 403 and len(service.mutations()) == before
    # A token from the same address is who it says.
    bearer = {"Authorization": f"Bearer {TOKENS['jimin']}"}
    status, me = _call_from(service, "127.0.0.2", "GET", "/api/me", bearer)
    assert status == 200 and me["user"] == "jimin"


def test_the_address_checked_is_the_connections_not_one_a_header_claims(service: Service):
    # From the trusted proxy, whatever X-Forwarded-For says the client was.
    trusted = {"X-Forwarded-User": "proxied", "X-Forwarded-For": "10.9.9.9"}
    status, me = _call_from(service, "127.0.0.1", "GET", "/api/me", trusted)
    assert status == 200 and me["user"] == "proxied"
    blank = {**LAUNCH, "model": "fct_sessions", "reason": ""}  # refused, so audited
    status, _ = _call_from(service, "127.0.0.1", "POST", "/api/backfills", trusted, blank)
    assert status == 422 and service.stack.audit()[-1]["client"] == "127.0.0.1"
    # From elsewhere, claiming to be the trusted proxy.
    claimed = {"X-Forwarded-User": "proxied", "X-Forwarded-For": "127.0.0.1"}
    status, _ = _call_from(service, "127.0.0.2", "GET", "/api/me", claimed)
    assert status == 403 and service.stack.audit()[-1]["client"] == "127.0.0.2"


def test_a_token_and_a_proxy_header_together_are_refused_whoever_sends_them(service: Service):
    before = len(service.mutations())
    both = {"X-Forwarded-User": "proxied", "Authorization": f"Bearer {TOKENS['jimin']}"}
    status, answer = _call_from(service, "127.0.0.1", "GET", "/api/me", both)
    assert status == 401 and "both a token and the X-Forwarded-User header" in answer["error"]
    assert service.stack.audit()[-1]["outcome"] == "refused"
    status, _ = _call_from(service, "127.0.0.1", "POST", "/api/backfills", both, LAUNCH)
    assert status == 401 and len(service.mutations()) == before


def test_a_proxy_header_without_trusted_proxies_stops_the_service_at_start(
    warehouse: Warehouse, tmp_path: Path
):
    (tmp_path / "access.yaml").write_text(yaml.safe_dump({"people": {}, "groups": {}}))
    write_settings(tmp_path, {"trust_proxy_header": "X-Forwarded-User"}, warehouse.project_dir)
    flower = str(Path(sys.executable).with_name("flower"))
    started = subprocess.run(
        [flower, "admin", "--port", "1"],
        env=admin_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert started.returncode == 2
    assert started.stderr.strip().splitlines() == [
        "flower: flower.yaml: admin.trusted_proxies is missing; allowed: a list of the "
        "authenticating proxy's IP addresses or networks, e.g. [10.0.4.7, 10.0.8.0/24]; "
        "required with admin.trust_proxy_header"
    ]


HUGE = 300 * 1024 * 1024
PIECE = b"x" * (1024 * 1024)


def _pieces(total: int) -> Iterator[bytes]:
    """`total` bytes of body, one MiB at a time: the test never holds the body either."""
    for _ in range(total // len(PIECE)):
        yield PIECE


def _post_huge(port: int, token: str, total: int, *, chunked: bool) -> tuple[int, int]:
    """POST a body of `total` bytes, stopping as soon as the service answers (it may answer
    before reading it) or stops reading; (the status of the answer, the bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}"
    head = (
        "POST /api/backfills HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
    )
    sent = 0
    try:
        sock.sendall(head.encode())
        for piece in _pieces(total):
            if select.select([sock], [], [], 0)[0]:
                break  # the answer came
            sock.sendall(b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece)
            sent += len(piece)
        else:
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        reply = sock.recv(4096)
    except (TimeoutError, BrokenPipeError, ConnectionResetError):
        reply = sock.recv(4096)  # the service stopped reading: its answer is waiting
    finally:
        sock.close()
    return int(reply.split(b" ", 2)[1]), sent


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_body_far_above_the_limit_is_refused_without_being_read(service: Service, chunked):
    pid = service.stack.processes[0].pid
    before = len(service.mutations())
    rss, peak = memory_kb(pid)
    status, sent = _post_huge(service.stack.admin_port, TOKENS["jimin"], HUGE, chunked=chunked)
    rss_after, peak_after = memory_kb(pid)
    assert status == 413
    assert sent < HUGE // 10, f"the service read {sent} bytes of a {HUGE}-byte body"
    # Not by anything close to the body's size (300 MiB): at most some MiB of buffers.
    assert rss_after - rss < 32 * 1024 and peak_after - peak < 32 * 1024, (
        rss,
        rss_after,
        peak_after,
    )
    line = service.stack.audit()[-1]
    assert (line["user"], line["status"], line["field"]) == ("jimin", 413, "body")
    assert len(service.mutations()) == before
    # The service goes on answering.
    assert service.stack.call("GET", "/api/me", TOKENS["jimin"])[0] == 200


def _finish(service: Service, backfill_id: str) -> None:
    for backfill in service.dagster.backfills:
        if backfill["id"] == backfill_id:
            backfill["status"] = "COMPLETED_SUCCESS"


def test_the_same_request_while_its_backfill_runs_returns_that_backfill(service: Service):
    body = {**LAUNCH, "reason": "sequential duplicate"}
    before = len(service.mutations())
    status, first = service.stack.call("POST", "/api/backfills", TOKENS["jimin"], body)
    assert status == 201 and first["already_running"] is False
    again = {**body, "reason": "  sequential duplicate "}  # the same reason, outer spaces aside
    status, second = service.stack.call("POST", "/api/backfills", TOKENS["jimin"], again)
    assert status == 200 and second == {**first, "already_running": True}
    assert len(service.mutations()) == before + 1
    line = service.stack.audit()[-1]
    assert (line["status"], line["backfill_id"], line["already_running"]) == (
        200,
        first["id"],
        True,
    )
    # Another reason or range is another request.
    status, other = service.stack.call(
        "POST", "/api/backfills", TOKENS["jimin"], {**body, "reason": "another reason"}
    )
    assert status == 201 and other["id"] != first["id"]
    # Once the backfill has finished, the same request launches again.
    _finish(service, first["id"])
    status, third = service.stack.call("POST", "/api/backfills", TOKENS["jimin"], body)
    assert status == 201 and third["id"] not in (first["id"], other["id"])
    assert len(service.mutations()) == before + 3


def test_identical_requests_at_the_same_moment_launch_one_backfill(service: Service):
    body = {**LAUNCH, "reason": "concurrent duplicate"}
    before = len(service.mutations())
    service.dagster.launch_delay = 0.5  # the first launch is still in flight when the rest ask
    answers: list[tuple[int, dict]] = []
    try:
        threads = [
            threading.Thread(
                target=lambda: answers.append(
                    service.stack.call("POST", "/api/backfills", TOKENS["jimin"], body)
                )
            )
            for _ in range(5)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        service.dagster.launch_delay = 0.0
    assert sorted(status for status, _ in answers) == [200, 200, 200, 200, 201]
    assert len({answer["id"] for _, answer in answers}) == 1
    assert len(service.mutations()) == before + 1


def test_every_change_and_refusal_is_one_audit_line_without_the_token_and_reads_none(
    service: Service,
):
    before = len(service.stack.audit())
    service.stack.call("GET", "/")
    for _ in range(3):  # the page polls every two seconds
        service.stack.call("GET", "/api/me", TOKENS["jimin"])
        service.stack.call("GET", "/api/models", TOKENS["jimin"])
        service.stack.call("GET", "/api/backfills", TOKENS["jimin"])
    service.stack.call("GET", "/api/nothing-here", TOKENS["jimin"])
    service.stack.call("GET", "/api/me", "wrong-token-but-long-enough-to-look-real")
    service.stack.call("POST", "/api/backfills", TOKENS["jimin"], {**LAUNCH, "reason": ""})
    lines = service.stack.audit()[before:]
    assert [(line["path"], line["status"], line["outcome"]) for line in lines] == [
        ("/api/nothing-here", 404, "refused"),
        ("/api/me", 401, "refused"),
        ("/api/backfills", 422, "refused"),
    ]
    text = service.stack.audit_log.read_text()
    assert TOKENS["jimin"] not in text and "wrong-token-but-long" not in text
    assert hash_token(TOKENS["jimin"]) not in text


def test_the_page_is_served_without_a_token_and_holds_no_data(service: Service):
    status, page = service.stack.call("GET", "/")
    assert status == 200 and "<title>Backfills" in page and 'id="token"' in page
    assert "fct_orders" not in page
    with urllib.request.urlopen(service.stack.admin_url + "/", timeout=10) as response:
        policy = response.headers["Content-Security-Policy"]
        assert "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
        assert response.headers["X-Frame-Options"] == "DENY"


def test_a_changed_access_file_is_taken_and_a_broken_one_is_not(service: Service):
    jimin = TOKENS["jimin"]
    try:
        _write_access(service.access_file, ["fct_orders"])
        _touch_later(service.access_file)
        _, models = service.stack.call("GET", "/api/models", jimin)
        assert [m["model"] for m in models["models"]] == ["fct_orders"]
        service.access_file.write_text("people: [\n")
        _touch_later(service.access_file)
        status, models = service.stack.call("GET", "/api/models", jimin)
        assert status == 200 and [m["model"] for m in models["models"]] == ["fct_orders"]
        assert "access file not reloaded" in service.stack.audit()[-1]["access_file"]
    finally:
        _write_access(service.access_file, ["owner:commerce"])
        _touch_later(service.access_file)
    _, models = service.stack.call("GET", "/api/models", jimin)
    assert len(models["models"]) == 4


def test_a_dagster_that_does_not_answer_is_a_503_and_an_error_line(service: Service):
    service.dagster.down = True
    try:
        status, answer = service.stack.call("POST", "/api/backfills", TOKENS["jimin"], LAUNCH)
        assert status == 503 and answer == {"error": "Dagster did not answer"}
        line = service.stack.audit()[-1]
        assert line["outcome"] == "error" and "answered 502" in line["detail"]
        status, models = service.stack.call("GET", "/api/models", TOKENS["jimin"])
        assert status == 200 and models["dagster_error"] and models["models"][0]["recent"] is None
    finally:
        service.dagster.down = False


def _touch_later(path: Path) -> None:
    """Make sure the file's modification time differs from the last one seen."""
    stat = path.stat()
    import os

    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000 + time.time_ns() % 997))


def test_read_audit_reads_what_audit_log_writes(tmp_path):
    log = AuditLog(tmp_path / "sub" / "audit.jsonl")
    log.write({"path": "/", "status": 200})
    log.write({"path": "/api/me", "status": 401})
    lines = read_audit(log.path)
    assert [(x["path"], x["status"]) for x in lines] == [("/", 200), ("/api/me", 401)]
    assert all("time" in x for x in lines)


def test_a_model_added_to_the_manifest_is_served_without_a_restart(tmp_path: Path):
    project = copy_demo_project(tmp_path / "dbt_project")
    _write_access(tmp_path / "access.yaml", ["owner:commerce"])
    # No Dagster: /api/models then says so, and lists the models all the same.
    admin = {"dagster_graphql_url": f"http://127.0.0.1:{free_port()}/graphql"}
    write_settings(tmp_path, admin, project)
    _flower(tmp_path, "prepare")
    for stack in serve_admin(tmp_path, admin, project, TOKENS):
        pid = stack.processes[0].pid
        assert "agg_daily_refunds" not in _served(stack)
        marts = project / "models" / "marts"
        sql = (marts / "agg_daily_revenue.sql").read_text()
        (marts / "agg_daily_refunds.sql").write_text(sql)
        yml = (marts / "agg_daily_revenue.yml").read_text()
        (marts / "agg_daily_refunds.yml").write_text(
            yml.replace("name: agg_daily_revenue", "name: agg_daily_refunds")
        )
        _flower(tmp_path, "prepare")
        assert "agg_daily_refunds" in _served(stack)
        status, answer = stack.call(
            "POST",
            "/api/backfills",
            TOKENS["jimin"],
            {**LAUNCH, "model": "agg_daily_refunds"},
        )
        # Planned like any model of jimin's; only the missing Dagster stops it.
        assert status == 503, answer
        # A manifest caught half written is not taken: the last good models stay.
        manifest = project / "target" / "manifest.json"
        good = manifest.read_bytes()
        manifest.write_bytes(good[: len(good) // 2])
        assert "agg_daily_refunds" in _served(stack)
        assert "manifest not reloaded" in stack.audit()[-1]["manifest"]
        manifest.write_bytes(good)
        lines = len(stack.audit())
        # Good again: a read that succeeds is not audited any more.
        assert "agg_daily_refunds" in _served(stack) and len(stack.audit()) == lines
        assert stack.processes[0].pid == pid and stack.processes[0].poll() is None


def _served(stack: AdminStack) -> list[str]:
    status, answer = stack.call("GET", "/api/models", TOKENS["jimin"])
    assert status == 200, answer
    return [m["model"] for m in answer["models"]]


def _flower(root: Path, *args: str) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).with_name("flower")), *args],
        env=admin_env(root),
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
