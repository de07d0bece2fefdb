"""The admin service: the one write path to Dagster for model authors (`flower admin`).

A Starlette app. `/` is a plain HTML page for analysts; `/api/...` is JSON for the page and the
CLI. Every `/api` request names a person: a bearer token whose SHA-256 is in the access file, or
(only when `admin.trust_proxy_header` is set) the user header of an authenticating proxy, taken
only from the addresses of `admin.trusted_proxies` and never together with a token.

| request | what |
| --- | --- |
| `GET /api/me` | who I am, my groups and selectors |
| `GET /api/models` | my models: grain, partition range, the state of the latest partitions |
| `POST /api/backfills` `{model, from, to, reason}` | launch a backfill of one of my models (201) |
| `POST /api/backfills/preview` `{model, from, to}` | the inputs check and impact, no launch |
| `GET /api/backfills` | my backfills, newest first |
| `GET /api/backfills/{id}` | one of my backfills: partitions done / failed / in progress |
| `POST /api/backfills/{id}/cancel` | cancel one of my backfills |

A launch identical to one whose backfill is still running (`request_identity`) answers 200 with
that backfill and `already_running: true` instead of launching it twice.

Refusals: 401 (no token, a wrong token, an unknown proxy user), 403 (not my model, not my
backfill), 404 (unknown model or backfill), 413 (a body above MAX_BODY_BYTES, refused unread),
415 (a POST that is not JSON), 422 (a bad range, a range above the size limit, a missing reason).
A launch whose range reads upstream partitions that are missing, failed or in progress is
refused (409, field `inputs`) with those partitions named (`fct_orders 2024-02-01..2024-02-07
missing`) and what to backfill first; with `include_inputs: true` they are backfilled first in the
same backfill when they are the author's models. `POST /api/backfills/preview` answers the same
check and the impact (what the repair rule re-runs after) without launching anything.

A refused request launches nothing. Every request that changes something (a launch, a cancel)
or is refused is one line of the audit log; reads that succeed are not.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path
from typing import Any, Generic, TypeVar
from weakref import WeakValueDictionary

import orjson
from pydantic import IPvAnyNetwork
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flower_dagster.admin.access import Access, Person, load_access
from flower_dagster.admin.audit import AuditLog, outcome_of
from flower_dagster.admin.backfill import (
    BackfillPlan,
    Refused,
    partition_span,
    partitions_of,
    plan_backfill,
)
from flower_dagster.admin.dagster_client import (
    LAUNCHED_BY_TAG,
    REASON_TAG,
    REQUEST_TAG,
    VIA_ADMIN,
    VIA_TAG,
    BackfillStatus,
    DagsterClient,
    DagsterUnavailable,
)
from flower_dagster.admin.page import PAGE
from flower_dagster.admin.precheck import InputGap, impact_of, input_gaps
from flower_dagster.admin.reasons import FailureReader
from flower_dagster.admin.selection import Model, models_from_manifest
from flower_dagster.asset_graph import AssetGraph
from flower_dagster.settings import Settings

T = TypeVar("T")
AUDIT_SCOPE_KEY = "flower.audit"
# The page runs only its own inline script and talks only to this service; it cannot be framed.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; "
    "style-src 'unsafe-inline'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
RECENT_PARTITIONS = 7
# How far back the page's calendar of a model's partitions reaches, by grain: a week of hours,
# a quarter of days, half a year of weeks, a year of months.
CALENDAR_PARTITIONS = {"hourly": 168, "daily": 91, "weekly": 26, "monthly": 12}
MAX_BODY_BYTES = 16 * 1024


class Reloaded(Generic[T]):
    """A file read again when it changes on disk (modification time, size or inode), checked
    with one stat per request: a merged PR changes who may do what, `flower prepare` adds a
    model, and neither should need a restart.

    A changed file that cannot be read is not taken: the last good content stays and `problem`
    says so (every audit line carries it until the file is fixed), rather than locking everybody
    out, letting anybody in or dropping every model. A file caught half written is read again
    once its writer finishes, since finishing changes its size or time again."""

    def __init__(self, path: Path, load: Callable[[Path], T], what: str) -> None:
        self.path = path
        self.what = what
        self._load = load
        self._lock = threading.Lock()
        self._seen = self._stamp()
        self._value = load(path)
        self.problem: str | None = None

    def _stamp(self) -> tuple[int, int, int]:
        stat = self.path.stat()
        return stat.st_mtime_ns, stat.st_size, stat.st_ino

    def current(self) -> T:
        try:
            stamp = self._stamp()
        except OSError as error:
            self.problem = f"{self.what} unreadable, using the last good one: {error}"
            return self._value
        if stamp != self._seen:
            with self._lock:
                if stamp != self._seen:
                    try:
                        self._value = self._load(self.path)
                        self.problem = None
                    except Exception as error:  # a broken file keeps the last good one
                        self.problem = f"{self.what} not reloaded: {error}"
                    self._seen = stamp
        return self._value


def access_source(path: Path) -> Reloaded[Access]:
    return Reloaded(path, load_access, "access file")


def manifest_models(path: Path) -> Reloaded[Mapping[str, Model]]:
    """The models of dbt's manifest.json, following it as `dbt parse` rewrites it."""
    return Reloaded(path, lambda p: models_from_manifest(orjson.loads(p.read_bytes())), "manifest")


class LazyReloaded(Generic[T]):
    """A `Reloaded` file whose first load waits for its first use: the asset graph costs the
    Dagster definitions of every model, which a service that only lists backfills never needs."""

    def __init__(self, path: Path, load: Callable[[Path], T], what: str) -> None:
        self._args = (path, load, what)
        self._inner: Reloaded[T] | None = None
        self._lock = threading.Lock()

    @property
    def problem(self) -> str | None:
        return self._inner.problem if self._inner else None

    def current(self) -> T:
        if self._inner is None:
            with self._lock:
                if self._inner is None:
                    self._inner = Reloaded(*self._args)
        return self._inner.current()


def asset_graph_source(manifest: Path) -> LazyReloaded[AssetGraph]:
    """The asset graph Dagster loads (the same definitions, from the same settings), rebuilt
    when the manifest changes: which partitions a backfill reads, what it re-runs after."""

    def load(_: Path) -> AssetGraph:
        from flower_dagster.defs import build_definitions

        return build_definitions().resolve_asset_graph()

    return LazyReloaded(manifest, load, "asset graph")


@dataclass
class AdminContext:
    settings: Settings
    access: Reloaded[Access]
    models: Reloaded[Mapping[str, Model]]
    dagster: DagsterClient
    audit: AuditLog
    asset_graph: LazyReloaded[AssetGraph] | None = None
    failures: FailureReader | None = None


def create_app(context: AdminContext) -> ASGIApp:
    """The admin service as an ASGI app, wrapped in its audit middleware."""
    api = _Api(context)
    routes = [
        Route("/", api.page, methods=["GET"]),
        Route("/api/me", api.me, methods=["GET"]),
        Route("/api/models", api.list_models, methods=["GET"]),
        Route("/api/backfills", api.list_backfills, methods=["GET"]),
        Route("/api/backfills", api.launch, methods=["POST"]),
        Route("/api/backfills/preview", api.preview, methods=["POST"]),
        Route("/api/backfills/{backfill_id}", api.show_backfill, methods=["GET"]),
        Route("/api/backfills/{backfill_id}/cancel", api.cancel, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    return _AuditMiddleware(app, context)


def _note(request: Request, **fields: Any) -> None:
    """Add fields to this request's audit line."""
    request.scope.setdefault(AUDIT_SCOPE_KEY, {}).update(fields)


def _refusal(
    request: Request, refused: Refused, extra: Mapping[str, Any] | None = None
) -> JSONResponse:
    _note(request, detail=refused.message, field=refused.field)
    return JSONResponse({**refused.as_json(), **(extra or {})}, status_code=refused.status)


@dataclass(frozen=True)
class Checked:
    """What the admin found before a launch (service.check)."""

    include_inputs: bool
    gaps: list[InputGap]  # the backfill's inputs that are missing, failed or in progress
    deeper: list[InputGap]  # with include_inputs: the included inputs' own gaps
    impact: dict[str, Any] | None  # None: no asset graph (a service without definitions)

    def refusal(self, plan: BackfillPlan, mine: Mapping[str, Model]) -> Refused | None:
        """Why this launch cannot go ahead, or None. Inputs missing or failed refuse it, with
        what to backfill first; with include_inputs they are backfilled first when they are
        the author's partitioned models, nothing is in progress and their own inputs are there."""
        if not self.gaps:
            return None
        named = "; ".join(str(g) for g in self.gaps)
        first = ", ".join(str(g).rsplit(" ", 1)[0] for g in self.gaps)
        running = [g for g in self.gaps if g.problem == "in progress"]
        if running:
            return Refused(
                409,
                "inputs",
                f"inputs of {plan.model} are being built now: {named}",
                "the same backfill once they have finished",
            )
        if not self.include_inputs:
            yours = all(g.model in mine and g.partitions for g in self.gaps)
            return Refused(
                409,
                "inputs",
                f"{plan.model} {plan.first}..{plan.last} reads partitions that are not built: "
                f"{named}",
                f"backfill first: {first}"
                + (" (or launch again with include_inputs: they are your models)" if yours else ""),
            )
        foreign = [g for g in self.gaps if g.model not in mine or not g.partitions]
        if foreign:
            return Refused(
                403,
                "inputs",
                f"you may not backfill {', '.join(sorted({g.model for g in foreign}))}, which "
                f"{plan.model} reads: {named}",
                "ask the owner of those models to backfill them first",
            )
        if self.deeper:
            return Refused(
                409,
                "inputs",
                "the inputs to include read partitions that are not built: "
                + "; ".join(str(g) for g in self.deeper),
                "backfill first: " + ", ".join(str(g).rsplit(" ", 1)[0] for g in self.deeper),
            )
        return None

    def included(self) -> dict[str, list[tuple[str, str]]] | None:
        """The upstream ranges the backfill builds first (include_inputs), or None."""
        if not (self.include_inputs and self.gaps):
            return None
        spans: dict[str, list[tuple[str, str]]] = {}
        for gap in self.gaps:
            for span in gap.ranges:
                start, _, end = span.partition("..")
                spans.setdefault(gap.model, []).append((start, end or start))
        return spans

    def as_json(self) -> dict[str, Any]:
        return {
            "inputs": [g.as_json() for g in self.gaps],
            "included_inputs": self.included() or {},
            "impact": self.impact,
        }


Handler = Callable[[Request, Person], Awaitable[Response]]


def _authenticated(handler: Handler) -> Callable[[Any, Request], Awaitable[Response]]:
    async def endpoint(self: _Api, request: Request) -> Response:
        person, refused = self.identify(request)
        if refused is not None:
            return _refusal(request, refused)
        assert person is not None
        return await handler(self, request, person)

    return endpoint


class _Api:
    def __init__(self, context: AdminContext) -> None:
        self.context = context
        # A lock per request identity, gone when no request holds it.
        self._launch_locks: WeakValueDictionary[str, asyncio.Lock] = WeakValueDictionary()

    # -- who is asking -----------------------------------------------------------------------

    def identify(self, request: Request) -> tuple[Person | None, Refused | None]:
        access = self.context.access.current()
        admin = self.context.settings.admin
        header = admin.trust_proxy_header
        if header and header in request.headers:
            return self._proxied(request, access, header, admin.trusted_proxies or [])
        authorization = request.headers.get("authorization", "")
        scheme, _, token = authorization.partition(" ")
        if not authorization or scheme.lower() != "bearer" or not token.strip():
            _note(request, auth="none")
            return None, Refused(
                401,
                "token",
                "no token",
                "an 'Authorization: Bearer <token>' header (FLOWER_TOKEN for the CLI)",
            )
        person = access.person_for_token(token.strip())
        _note(request, auth="token")
        if person is None:
            return None, Refused(
                401,
                "token",
                "the token is not recognised",
                "the token you were issued (ask the platform team for a new one)",
            )
        _note(request, user=person.id)
        return person, None

    def _proxied(
        self, request: Request, access: Access, header: str, proxies: Sequence[IPvAnyNetwork]
    ) -> tuple[Person | None, Refused | None]:
        """A request that carries the proxy's user header: taken only from a trusted proxy, and
        never together with a token (which of the two would name the person is not clear)."""
        claimed = request.headers[header]
        client = request.client.host if request.client else None
        _note(request, auth="proxy", claimed_user=claimed)
        if not _from(client, proxies):
            return None, Refused(
                403,
                "user",
                f"the {header} header came from {client}, not from a trusted proxy",
                "a token (the header is set only by the proxies of admin.trusted_proxies)",
            )
        if "authorization" in request.headers:
            return None, Refused(
                401,
                "user",
                f"both a token and the {header} header: one request names one person",
                f"either 'Authorization: Bearer <token>' or the proxy's {header}, not both",
            )
        person = access.person_named(claimed)
        if person is None:
            return None, Refused(
                401, "user", f"{claimed!r} is not in the access file", "a person of the access file"
            )
        _note(request, user=person.id)
        return person, None

    def mine(self, person: Person) -> dict[str, Model]:
        return self.context.access.current().models_of(person, self.context.models.current())

    # -- endpoints ---------------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        _note(request, action="page")
        return HTMLResponse(PAGE, headers=PAGE_HEADERS)

    @_authenticated
    async def me(self, request: Request, person: Person) -> Response:
        _note(request, action="me")
        access = self.context.access.current()
        return JSONResponse(
            {
                "user": person.id,
                "name": person.name,
                "groups": list(person.groups),
                "selectors": [str(s) for s in access.selectors_of(person)],
                "max_partitions": self.context.settings.admin.max_partitions,
            }
        )

    @_authenticated
    async def list_models(self, request: Request, person: Person) -> Response:
        _note(request, action="models")
        mine = self.mine(person)
        statuses: dict[str, dict[str, str]] = {}
        dagster_error = None
        if mine:
            try:
                statuses = await run_in_threadpool(
                    self.context.dagster.partition_statuses, list(mine)
                )
            except DagsterUnavailable as error:
                dagster_error = str(error)
        settings = self.context.settings
        rows = []
        for name, model in mine.items():
            first, last = partition_span(model, settings)
            rows.append(
                {
                    "model": name,
                    "grain": str(model.grain),
                    "owner": model.owner,
                    "group": model.group,
                    "description": model.description,
                    "first_partition": first,
                    "last_partition": last,
                    **(
                        {"recent": None, "counts": None, "calendar": None}
                        if dagster_error
                        else _states(model, settings, statuses.get(name, {}))
                    ),
                }
            )
        if not dagster_error:
            await run_in_threadpool(self._mark_unsynced, rows)
        return JSONResponse({"models": rows, "dagster_error": dagster_error})

    def _mark_unsynced(self, rows: list[dict[str, Any]]) -> None:
        """Built partitions of the calendar that Dagster marks stale become "unsynced"."""
        for row in rows:
            calendar = row.get("calendar") or []
            built = [key for key, status in calendar if status == "materialized"]
            try:
                stale = self.context.dagster.unsynced(row["model"], built)
            except DagsterUnavailable:
                return  # the calendar without it; the statuses themselves came through
            for cell in calendar:
                if cell[0] in stale:
                    cell[1] = "unsynced"

    async def _planned(
        self, request: Request, person: Person, need_reason: bool
    ) -> tuple[BackfillPlan, Checked, Refused | None] | Response:
        """The body read into a plan and its inputs checked, as a launch and a preview both
        need them: the plan, what the check found and the refusal it leads to, or the response
        that ends the request (a bad body, a refused plan, Dagster not answering)."""
        body = await _json_body(request)
        if isinstance(body, Refused):
            return _refusal(request, body)
        if isinstance(body, Mapping):
            _note(
                request,
                **{k: str(body[k])[:200] for k in ("model", "from", "to", "reason") if k in body},
            )
        try:
            plan = plan_backfill(
                body,
                self.mine(person),
                self.context.models.current(),
                self.context.settings,
                need_reason=need_reason,
            )
        except Refused as refused:
            return _refusal(request, refused)
        try:
            checked = await run_in_threadpool(self.check, plan, person)
        except DagsterUnavailable as error:
            _note(request, detail=str(error))
            return JSONResponse({"error": "Dagster did not answer"}, status_code=503)
        return plan, checked, checked.refusal(plan, self.mine(person))

    @_authenticated
    async def launch(self, request: Request, person: Person) -> Response:
        _note(request, action="launch")
        planned = await self._planned(request, person, need_reason=True)
        if isinstance(planned, Response):
            return planned
        plan, checked, refused = planned
        if refused is not None:
            _note(request, inputs=[str(g) for g in checked.gaps])
            return _refusal(request, refused, checked.as_json())
        identity = request_identity(person, plan)
        # One launch per identity at a time in this process: a second identical request waits
        # here and then finds the first one's backfill in Dagster instead of launching another.
        lock = self._launch_locks.setdefault(identity, asyncio.Lock())
        async with lock:
            try:
                running = await run_in_threadpool(
                    self.context.dagster.requested_backfill_tagged, REQUEST_TAG, identity
                )
                backfill_id = running
                if backfill_id is None:
                    backfill_id = await run_in_threadpool(
                        self.context.dagster.launch_backfill,
                        plan.model,
                        plan.partition_keys,
                        {
                            LAUNCHED_BY_TAG: person.id,
                            REASON_TAG: plan.reason,
                            VIA_TAG: VIA_ADMIN,
                            REQUEST_TAG: identity,
                        },
                        f"{plan.model} {plan.first}..{plan.last} by {person.id}",
                        f"{person.name}: {plan.reason}",
                        checked.included(),
                    )
            except DagsterUnavailable as error:
                _note(request, detail=str(error))
                return JSONResponse({"error": "Dagster did not take the backfill"}, status_code=503)
        already = running is not None
        _note(
            request,
            backfill_id=backfill_id,
            partitions=len(plan.partition_keys),
            already_running=already,
        )
        return JSONResponse(
            {
                "id": backfill_id,
                "model": plan.model,
                "from": plan.first,
                "to": plan.last,
                "partitions": len(plan.partition_keys),
                "launched_by": person.id,
                "reason": plan.reason,
                "already_running": already,
                **checked.as_json(),
            },
            status_code=200 if already else 201,
        )

    @_authenticated
    async def preview(self, request: Request, person: Person) -> Response:
        """What a launch of this body would find and re-run; launches nothing."""
        _note(request, action="preview")
        planned = await self._planned(request, person, need_reason=False)
        if isinstance(planned, Response):
            return planned
        plan, checked, refused = planned
        return JSONResponse(
            {
                "model": plan.model,
                "from": plan.first,
                "to": plan.last,
                "partitions": len(plan.partition_keys),
                "ready": refused is None,
                "refusal": refused.as_json() if refused else None,
                **checked.as_json(),
            }
        )

    def check(self, plan: BackfillPlan, person: Person) -> Checked:
        """The inputs the backfill reads that are not healthy, and what it re-runs after. With
        `include_inputs`, the inputs' own inputs are checked in turn (the included ones skipped)."""
        source = self.context.asset_graph
        if source is None:
            return Checked(plan.include_inputs, [], [], None)
        graph = source.current()
        client = self.context.dagster
        gaps = input_gaps(
            graph, plan.model, plan.partition_keys, client.partition_statuses, client.built
        )
        deeper: list[InputGap] = []
        if plan.include_inputs:
            skip = {g.model for g in gaps if g.partitions}
            for gap in gaps:
                if gap.partitions:
                    deeper += input_gaps(
                        graph,
                        gap.model,
                        gap.partitions,
                        client.partition_statuses,
                        client.built,
                        skip=skip | {plan.model},
                    )
        return Checked(
            plan.include_inputs, gaps, deeper, impact_of(graph, plan.model, plan.partition_keys)
        )

    @_authenticated
    async def list_backfills(self, request: Request, person: Person) -> Response:
        _note(request, action="backfills")
        try:
            every = await run_in_threadpool(self.context.dagster.backfills, 200)
        except DagsterUnavailable as error:
            _note(request, detail=str(error))
            return JSONResponse({"error": "Dagster did not answer"}, status_code=503)
        mine = [
            await run_in_threadpool(self.explained, b) for b in every if _launched_by(b, person)
        ]
        return JSONResponse({"backfills": mine})

    @_authenticated
    async def show_backfill(self, request: Request, person: Person) -> Response:
        backfill_id = request.path_params["backfill_id"]
        _note(request, action="backfill", backfill_id=backfill_id)
        found = await self._own_backfill(request, person, backfill_id)
        if isinstance(found, Response):
            return found
        return JSONResponse(await run_in_threadpool(self.explained, found))

    def explained(self, backfill: BackfillStatus) -> dict[str, Any]:
        """The backfill as JSON with each failed partition's reason (`failures`).

        Dagster's backfill counts a partition whose run has failed as in progress until its
        daemon next looks at the backfill, while the partition itself is already FAILED (what
        the models table shows). When no run of the backfill is active any more, partitions
        that a failed run of it did not build are counted as failed, as they are."""
        shown = backfill.as_json()
        reader = self.context.failures
        if reader is None or reader.unknown:
            shown["failures"] = []
            shown["failures_unknown"] = reader.unknown if reader else "no Dagster instance"
            return shown
        shown["failures_unknown"] = None
        maybe_failed = backfill.failed or backfill.in_progress or backfill.status == "FAILED"
        failures = reader.failures(backfill.id, backfill.finished) if maybe_failed else []
        shown["failures"] = [f.as_json() for f in failures]
        counts = shown["partitions"]
        if len(failures) > counts["failed"] and counts["in_progress"]:
            shown["partitions"] = settled_counts(
                counts, len(failures), reader.active_runs(backfill.id)
            )
        return shown

    @_authenticated
    async def cancel(self, request: Request, person: Person) -> Response:
        backfill_id = request.path_params["backfill_id"]
        _note(request, action="cancel", backfill_id=backfill_id)
        if not _is_json(request):
            return _refusal(request, _NOT_JSON)
        found = await self._own_backfill(request, person, backfill_id)
        if isinstance(found, Response):
            return found
        if found.finished:
            return _refusal(
                request,
                Refused(
                    409,
                    "id",
                    f"backfill {backfill_id} is {found.status}: nothing to cancel",
                    "a backfill that is still running",
                ),
            )
        try:
            await run_in_threadpool(self.context.dagster.cancel_backfill, backfill_id)
        except DagsterUnavailable as error:
            _note(request, detail=str(error))
            return JSONResponse({"error": "Dagster did not cancel the backfill"}, status_code=503)
        return JSONResponse({"id": backfill_id, "status": "CANCELING"})

    async def _own_backfill(
        self, request: Request, person: Person, backfill_id: str
    ) -> BackfillStatus | Response:
        try:
            found = await run_in_threadpool(self.context.dagster.backfill, backfill_id)
        except DagsterUnavailable as error:
            _note(request, detail=str(error))
            return JSONResponse({"error": "Dagster did not answer"}, status_code=503)
        if found is None:
            return _refusal(
                request, Refused(404, "id", f"no backfill {backfill_id!r}", "one of your backfills")
            )
        if not _launched_by(found, person):
            return _refusal(
                request,
                Refused(403, "id", f"backfill {backfill_id} is not yours", "one of your backfills"),
            )
        return found


_NOT_JSON = Refused(415, "body", "the request is not JSON", "Content-Type: application/json")


def _is_json(request: Request) -> bool:
    # A cross-site form cannot send this content type without the browser asking first.
    return request.headers.get("content-type", "").split(";")[0].strip() == "application/json"


async def _json_body(request: Request) -> Any:
    if not _is_json(request):
        return _NOT_JSON
    raw = await _bounded_body(request)
    if isinstance(raw, Refused):
        return raw
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return Refused(
            400, "body", "the request body is not valid JSON", "{model, from, to, reason}"
        )


_TOO_LARGE = Refused(413, "body", "the request body is too large", f"{MAX_BODY_BYTES} bytes")


async def _bounded_body(request: Request) -> bytes | Refused:
    """The body, read only while it stays within MAX_BODY_BYTES: a declared Content-Length above
    the limit is refused before a byte is read, and a chunked body stops being read at the limit
    (the server's flow control then stops the sender), so no body is ever held whole."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            return Refused(400, "body", "Content-Length is not a number", "a byte count")
        if int(declared) > MAX_BODY_BYTES:
            return _TOO_LARGE
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return _TOO_LARGE
        chunks.append(chunk)
    return b"".join(chunks)


def _from(client: str | None, proxies: Sequence[IPvAnyNetwork]) -> bool:
    """Is the TCP peer one of the trusted proxies (uvicorn runs without proxy_headers, so this
    is the connection's address, not one a header claims)."""
    try:
        address = ip_address(client or "")
    except ValueError:
        return False
    return any(address in network for network in proxies)


def request_identity(person: Person, plan: BackfillPlan) -> str:
    """What makes two launch requests the same: who, which model, the first and last partition
    keys as checked (so `2024-01-10` and `2024-01-10-00:00` of an hourly model agree) and the
    reason with its outer spaces removed. A SHA-256, so the tag holds no free text twice."""
    fields = [person.id, plan.model, plan.first, plan.last, plan.reason]
    if plan.include_inputs:
        fields.append("include_inputs")
    return hashlib.sha256(json.dumps(fields).encode()).hexdigest()


def settled_counts(
    counts: Mapping[str, int], failed_by_runs: int, active_runs: int | None
) -> dict[str, int]:
    """Dagster's partition counts of a backfill, with the partitions its failed runs did not
    build counted as failed once no run of it is active (Dagster's own count says in progress
    until its daemon looks again). With runs still active, or unknown, the counts stay."""
    settled = dict(counts)
    if active_runs != 0:
        return settled
    moved = min(max(failed_by_runs - settled["failed"], 0), settled["in_progress"])
    settled["failed"] += moved
    settled["in_progress"] -= moved
    return settled


def _launched_by(backfill: BackfillStatus, person: Person) -> bool:
    return backfill.via_admin and backfill.launched_by == person.id


def _states(model: Model, settings: Settings, ranges: Mapping[str, str]) -> dict[str, Any]:
    """The state of the model's latest partitions (materialized, failed, materializing, missing)
    and how many of all its partitions are in each state."""
    partitions = partitions_of(model, settings)
    keys = partitions.get_partition_keys()
    index = {key: i for i, key in enumerate(keys)}
    state = ["missing"] * len(keys)
    for span, status in ranges.items():
        start, _, end = span.partition("..")
        if start in index and end in index:
            for i in range(index[start], index[end] + 1):
                state[i] = status.lower()
    counts = {name: state.count(name) for name in ("materialized", "failed", "materializing")}
    counts["total"] = len(keys)
    recent = [
        {"partition": key, "status": status}
        for key, status in zip(keys[-RECENT_PARTITIONS:], state[-RECENT_PARTITIONS:], strict=True)
    ]
    size = CALENDAR_PARTITIONS.get(str(model.grain), 91)
    calendar = [[key, status] for key, status in zip(keys[-size:], state[-size:], strict=True)]
    return {"recent": recent, "counts": counts, "calendar": calendar}


def _audited(scope: Scope, entry: Mapping[str, Any], code: int) -> bool:
    """Requests that change something or are refused are audited; reads that succeed (the
    page's polls every two seconds, a preview) are not: they would bury the launches."""
    if code >= 400:
        return True
    return scope["method"] not in ("GET", "HEAD") and entry.get("action") != "preview"


class _AuditMiddleware:
    """Writes one audit line per HTTP request once its response has started."""

    def __init__(self, app: ASGIApp, context: AdminContext) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        entry: dict[str, Any] = {}
        scope[AUDIT_SCOPE_KEY] = entry
        written = False

        async def send_after_audit(message: Message) -> None:
            nonlocal written
            # The line is written before the response starts: whoever sees an answer can
            # rely on its audit line being there.
            if message["type"] == "http.response.start" and not written:
                written = True
                if _audited(scope, entry, message["status"]) or self._problem():
                    self._write(scope, entry, message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_after_audit)
        finally:
            if not written:
                self._write(scope, entry, 500)

    def _problem(self) -> bool:
        """A file that could not be reloaded: every request says so until it is fixed."""
        return bool(self.context.access.problem or self.context.models.problem)

    def _write(self, scope: Scope, entry: dict[str, Any], code: int) -> None:
        client = scope.get("client")
        line = {
            "client": client[0] if client else None,
            "user": entry.pop("user", None),
            "auth": entry.pop("auth", None),
            "method": scope["method"],
            "path": scope["path"],
            "action": entry.pop("action", None),
            "status": code,
            "outcome": outcome_of(code),
            **entry,
        }
        for key, source in (
            ("access_file", self.context.access),
            ("manifest", self.context.models),
        ):
            if source.problem:
                line[key] = source.problem
        self.context.audit.write(line)
