"""`flower admin` (the service, token hashes, the access check) and `flower backfill` (its client).

flower admin [--host H --port P]          serve the admin (docs/backfills.md)
flower admin hash-token [--new]           the SHA-256 of a token read from stdin, or a new token
flower admin demo-token [PERSON] --out F  a copy of the access file with a new demo token
flower admin check                        check the access file: who may backfill which models
flower backfill models                    my models, their grain and latest partitions
flower backfill preview MODEL --from D --to D            its inputs check and impact, no launch
flower backfill launch MODEL --from D --to D --reason R   launch a backfill of my model
flower backfill status [ID] [--once]      my backfills; with ID, a live progress bar until done
flower backfill cancel ID                 cancel my backfill

The client reads the token from FLOWER_TOKEN and the service's address from FLOWER_ADMIN_URL
(default: http://<admin.host>:<admin.port> of flower.yaml).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from flower_dagster.errors import FlowerError

TOKEN_ENV = "FLOWER_TOKEN"
URL_ENV = "FLOWER_ADMIN_URL"
SUCCESS = frozenset({"COMPLETED_SUCCESS", "COMPLETED"})
BAR_WIDTH = 30


def register(commands: argparse._SubParsersAction) -> None:
    admin = commands.add_parser(
        "admin",
        help="the backfill admin service for model authors (docs/backfills.md)",
        description="Serve the backfill admin: model authors backfill their own models.",
    )
    admin.add_argument("--host", default=None, help="bind address (default: admin.host)")
    admin.add_argument("--port", type=int, default=None, help="port (default: admin.port)")
    admin.add_argument(
        "--access-file",
        type=Path,
        default=None,
        help="the access file (default: admin.access_file); `make admin` uses the demo's",
    )
    admin.set_defaults(handler=_serve)
    admin_commands = admin.add_subparsers(dest="admin_command", metavar="[ACTION]")
    hash_token = admin_commands.add_parser(
        "hash-token",
        help="print the SHA-256 of a token read from stdin (for the access file)",
        description=(
            "Read a token from stdin and print its SHA-256, the value of token_sha256 in the "
            "access file. With --new, make a new random token first and print both: give the "
            "token to the person through the vault, put only the hash in the access file."
        ),
    )
    hash_token.add_argument("--new", action="store_true", help="make a new random token")
    hash_token.set_defaults(handler=_hash_token)
    demo = admin_commands.add_parser(
        "demo-token",
        help="a token for a demo author, in a copy of the access file (the tracked one unchanged)",
        description=(
            "Copy the access file to --out with a new token for PERSON (the rest unchanged) and "
            "print the token. `make admin` does this for jimin and serves the copy, so the demo "
            "can be tried without editing a tracked file. For demos only: a real token is "
            "issued with hash-token --new and handed over through the vault."
        ),
    )
    demo.add_argument("person", nargs="?", default="jimin", help="a person of the access file")
    demo.add_argument("--out", type=Path, required=True, help="where to write the copy")
    demo.set_defaults(handler=_demo_token)
    check = admin_commands.add_parser(
        "check", help="check the access file and print who may backfill which models"
    )
    check.set_defaults(handler=_check)

    backfill = commands.add_parser(
        "backfill",
        help="backfill your models through the admin service (FLOWER_TOKEN)",
        description="Backfill your own models through the admin service. The token is read "
        f"from {TOKEN_ENV}, the service address from {URL_ENV} (default: flower.yaml's admin).",
    )
    actions = backfill.add_subparsers(dest="backfill_command", required=True, metavar="ACTION")
    models = actions.add_parser("models", help="the models you may backfill")
    models.set_defaults(handler=_models)
    launch = actions.add_parser("launch", help="launch a backfill of one of your models")
    launch.add_argument("model", metavar="MODEL")
    launch.add_argument("--from", dest="first", required=True, metavar="D", help="first partition")
    launch.add_argument("--to", dest="last", required=True, metavar="D", help="last partition")
    launch.add_argument("--reason", required=True, help="why (kept on the backfill and its runs)")
    launch.add_argument("--follow", action="store_true", help="then follow it until done")
    launch.add_argument(
        "--include-inputs",
        action="store_true",
        help="backfill its missing or failed inputs first, in the same backfill (your models)",
    )
    launch.set_defaults(handler=_launch)
    check = actions.add_parser(
        "preview", help="check a range's inputs and show what it re-runs, launching nothing"
    )
    check.add_argument("model", metavar="MODEL")
    check.add_argument("--from", dest="first", required=True, metavar="D", help="first partition")
    check.add_argument("--to", dest="last", required=True, metavar="D", help="last partition")
    check.set_defaults(handler=_preview)
    status = actions.add_parser("status", help="your backfills, or one with a live progress bar")
    status.add_argument("backfill_id", nargs="?", metavar="ID")
    status.add_argument("--once", action="store_true", help="print the status once, do not follow")
    status.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    status.set_defaults(handler=_status)
    cancel = actions.add_parser("cancel", help="cancel one of your backfills")
    cancel.add_argument("backfill_id", metavar="ID")
    cancel.set_defaults(handler=_cancel)


# -- the service --------------------------------------------------------------------------------


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from flower_dagster.admin.audit import AuditLog
    from flower_dagster.admin.dagster_client import DagsterClient
    from flower_dagster.admin.reasons import FailureReader
    from flower_dagster.admin.service import (
        AdminContext,
        access_source,
        asset_graph_source,
        create_app,
        manifest_models,
    )
    from flower_dagster.dbt.project import FlowerDbtProject
    from flower_dagster.settings import load_settings

    settings = load_settings()
    admin = settings.admin
    manifest = FlowerDbtProject.from_settings(settings).ensure_manifest()
    context = AdminContext(
        settings=settings,
        access=access_source(args.access_file or admin.access_file),
        models=manifest_models(manifest),
        dagster=DagsterClient(admin.dagster_graphql_url),
        audit=AuditLog(admin.audit_log),
        asset_graph=asset_graph_source(manifest),
        failures=FailureReader(settings),
    )
    host = args.host or admin.host
    port = args.port or admin.port
    print(
        f"backfill admin on http://{host}:{port} (Dagster: {admin.dagster_graphql_url}; "
        f"access: {args.access_file or admin.access_file}; models: {manifest}; "
        f"audit: {admin.audit_log})",
        flush=True,
    )
    # No access log: the audit log has every request, without headers. No proxy_headers: the
    # client address is the connection's, which admin.trusted_proxies is checked against.
    uvicorn.run(
        create_app(context),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,
    )
    return 0


def _hash_token(args: argparse.Namespace) -> int:
    from flower_dagster.admin.access import MIN_TOKEN_LENGTH, hash_token, new_token

    if args.new:
        token = new_token()
        print(f"token (give it to the person through the vault, then forget it): {token}")
        print(f"token_sha256 (for the access file): {hash_token(token)}")
        return 0
    if sys.stdin.isatty():
        print("paste the token, then Enter:", file=sys.stderr)
    token = sys.stdin.readline().strip()
    if len(token) < MIN_TOKEN_LENGTH:
        raise FlowerError(
            f"the token read from stdin has {len(token)} characters; allowed: at least "
            f"{MIN_TOKEN_LENGTH} (`flower admin hash-token --new` makes one)"
        )
    print(hash_token(token))
    return 0


def _demo_token(args: argparse.Namespace) -> int:
    import yaml

    from flower_dagster.admin.access import hash_token, load_access, new_token
    from flower_dagster.settings import load_settings

    source = load_settings().admin.access_file
    access = load_access(source)
    person = access.person_named(args.person)
    if person is None:
        raise FlowerError(
            f"{args.person!r} is not in {source}; allowed: {', '.join(access.people)}"
        )
    raw = yaml.safe_load(source.read_text())
    token = new_token()
    raw["people"][person.id]["token_sha256"] = hash_token(token)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        f"# A copy of {source} for the demo: {person.id}'s token replaced by a new one.\n"
        + yaml.safe_dump(raw, sort_keys=False)
    )
    load_access(args.out)  # the copy is a valid access file
    print(f"demo author {person.id} ({person.name}, {', '.join(person.groups)}):")
    print(f"  export {TOKEN_ENV}={token}")
    print(f"  (sign in to the page with it; access file: {args.out})")
    return 0


def _check(args: argparse.Namespace) -> int:
    from flower_dagster.admin.access import load_access
    from flower_dagster.admin.selection import models_from_manifest
    from flower_dagster.dbt.project import FlowerDbtProject
    from flower_dagster.settings import load_settings

    settings = load_settings()
    access = load_access(settings.admin.access_file)
    models = models_from_manifest(FlowerDbtProject.from_settings(settings).load_manifest())
    print(f"{settings.admin.access_file}: {len(access.people)} people, {len(access.groups)} groups")
    for person in access.people.values():
        mine = access.models_of(person, models)
        names = ", ".join(mine) or "no partitioned model"
        print(f"  {person.id} ({', '.join(person.groups)}): {names}")
    return 0


# -- the client ---------------------------------------------------------------------------------


class AdminClient:
    """Talks JSON to the admin service with the user's token."""

    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self.timeout = timeout

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.load(response)
        except urllib.error.HTTPError as error:
            raise FlowerError(_refusal_text(error.code, error.read())) from None
        except OSError as error:
            raise FlowerError(
                f"the backfill admin at {self.url} did not answer ({error}); "
                f"set {URL_ENV} to its address"
            ) from None


def _refusal_text(status: int, raw: bytes) -> str:
    try:
        body = json.loads(raw)
    except ValueError:
        body = {}
    message = body.get("error") or raw.decode(errors="replace")[:200] or "refused"
    where = f"{body['field']}: " if body.get("field") else ""
    allowed = f"; allowed: {body['allowed']}" if body.get("allowed") else ""
    return f"{status} {where}{message}{allowed}"


def client_from_environment(environ: Mapping[str, str] | None = None) -> AdminClient:
    env = os.environ if environ is None else environ
    token = env.get(TOKEN_ENV, "").strip()
    if not token:
        raise FlowerError(
            f"{TOKEN_ENV} is not set; allowed: the token the platform team issued you "
            f"(export {TOKEN_ENV}=..., never on the command line)"
        )
    url = env.get(URL_ENV, "").strip()
    if not url:
        from flower_dagster.settings import load_settings

        admin = load_settings(env).admin
        url = f"http://{admin.host}:{admin.port}"
    return AdminClient(url, token)


def _models(args: argparse.Namespace) -> int:
    data = client_from_environment().call("GET", "/api/models")
    rows = [("model", "grain", "partitions", "latest partitions")]
    for m in data["models"]:
        recent = " ".join(_SYMBOL.get(p["status"], "?") for p in m.get("recent") or [])
        rows.append(
            (m["model"], m["grain"], f"{m['first_partition']} .. {m['last_partition']}", recent)
        )
    _table(rows)
    if len(rows) == 1:
        print("(no model: ask the platform team to add you to a group of the access file)")
    print("latest partitions: # materialized  x failed  ~ in progress  . missing")
    if data.get("dagster_error"):
        print(f"partition states unavailable: {data['dagster_error']}")
    return 0


_SYMBOL = {"materialized": "#", "failed": "x", "materializing": "~", "missing": "."}


def _launch(args: argparse.Namespace) -> int:
    client = client_from_environment()
    body = {"model": args.model, "from": args.first, "to": args.last, "reason": args.reason}
    if args.include_inputs:
        body["include_inputs"] = True
    launched = client.call("POST", "/api/backfills", body)
    what = "already running, not launched again:" if launched.get("already_running") else "launched"
    print(
        f"{what} backfill {launched['id']}: {launched['model']} {launched['from']} .. "
        f"{launched['to']} ({launched['partitions']} partitions), reason: {launched['reason']}"
    )
    for model, spans in (launched.get("included_inputs") or {}).items():
        ranges = ", ".join(a if a == b else f"{a}..{b}" for a, b in spans)
        print(f"  inputs built first: {model} {ranges}")
    _print_impact(launched.get("impact"))
    if args.follow:
        return follow(client, launched["id"], sys.stdout, interval=2.0)
    print(f"follow it: flower backfill status {launched['id']}")
    return 0


def _preview(args: argparse.Namespace) -> int:
    body = {"model": args.model, "from": args.first, "to": args.last}
    found = client_from_environment().call("POST", "/api/backfills/preview", body)
    print(
        f"{found['model']} {found['from']} .. {found['to']} ({found['partitions']} partitions): "
        + ("ready to launch" if found["ready"] else "would be refused")
    )
    for gap in found["inputs"]:
        print(f"  input not built: {gap['text']}")
    if found.get("refusal"):
        print(f"  {found['refusal']['error']}; {found['refusal'].get('allowed', '')}")
    _print_impact(found.get("impact"))
    return 0 if found["ready"] else 1


def _print_impact(impact: Mapping[str, Any] | None) -> None:
    if impact is None:
        return
    from flower_dagster.admin.precheck import describe_impact

    print("the repair rule then re-runs:")
    for line in describe_impact(impact):
        print(line)


def _status(args: argparse.Namespace) -> int:
    client = client_from_environment()
    if args.backfill_id is None:
        backfills = client.call("GET", "/api/backfills")["backfills"]
        rows = [("id", "model", "range", "status", "done/failed/in progress", "reason")]
        for b in backfills:
            p = b["partitions"]
            rows.append(
                (
                    b["id"],
                    ",".join(b["models"]),
                    f"{b['from']} .. {b['to']}",
                    b["status"],
                    f"{p['done']}/{p['failed']}/{p['in_progress']} of {p['targeted']}",
                    b["reason"] or "",
                )
            )
        _table(rows)
        for b in backfills:
            for line in failure_lines(b):
                print(f"{b['id']}: {line.strip()}")
        return 0
    if args.once:
        status = client.call("GET", f"/api/backfills/{args.backfill_id}")
        print(progress_line(status))
        for line in failure_lines(status):
            print(line)
        return 0 if status["status"] in SUCCESS or not status["finished"] else 1
    return follow(client, args.backfill_id, sys.stdout, interval=args.interval)


def _cancel(args: argparse.Namespace) -> int:
    result = client_from_environment().call("POST", f"/api/backfills/{args.backfill_id}/cancel", {})
    print(f"backfill {result['id']}: {result['status']}")
    return 0


def follow(
    client: AdminClient,
    backfill_id: str,
    out: TextIO,
    interval: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Redraw the progress bar until the backfill is finished; 0 when it succeeded, else 1."""
    live = out.isatty()
    last = None
    while True:
        status = client.call("GET", f"/api/backfills/{backfill_id}")
        line = progress_line(status)
        if live:
            out.write("\r\x1b[2K" + line)
            out.flush()
        elif line != last:
            out.write(line + "\n")
            out.flush()
        last = line
        if status["finished"]:
            if live:
                out.write("\n")
            for reason in failure_lines(status):
                out.write(reason + "\n")
            return 0 if status["status"] in SUCCESS else 1
        sleep(interval)


def failure_lines(status: Mapping[str, Any]) -> list[str]:
    """`  failed fct_orders 2024-03-04, 2024-03-05: data test failed: ...`, partitions with the
    same reason on one line."""
    grouped: dict[tuple[str, str], list[str]] = {}
    for failure in status.get("failures") or []:
        key = (failure["model"], failure["reason"])
        grouped.setdefault(key, []).append(failure["partition"] or "")
    lines = []
    for (model, reason), partitions in grouped.items():
        shown = (
            ", ".join(partitions)
            if len(partitions) <= 3
            else f"{partitions[0]} .. {partitions[-1]} ({len(partitions)})"
        )
        lines.append(f"  failed {model} {shown}: {reason}")
    if status.get("partitions", {}).get("failed") and status.get("failures_unknown"):
        lines.append(f"  why it failed is not known here: {status['failures_unknown']}")
    return lines


def progress_line(status: Mapping[str, Any]) -> str:
    """`[##########....................] 1/3 done, 0 failed, 1 in progress  REQUESTED fct_orders`"""
    p = status["partitions"]
    total = max(p["targeted"], 1)
    done = round(BAR_WIDTH * p["done"] / total)
    failed = round(BAR_WIDTH * p["failed"] / total)
    running = min(round(BAR_WIDTH * p["in_progress"] / total), BAR_WIDTH - done - failed)
    bar = "#" * done + "x" * failed + "~" * running
    bar = bar[:BAR_WIDTH].ljust(BAR_WIDTH, ".")
    return (
        f"[{bar}] {p['done']}/{p['targeted']} done, {p['failed']} failed, "
        f"{p['in_progress']} in progress  {status['status']}  {status['id']} "
        f"{','.join(status['models'])} {status['from']} .. {status['to']}"
    )


def _table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
