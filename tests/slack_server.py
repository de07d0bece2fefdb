"""A local stand-in for Slack's Web API on 127.0.0.1, for the real slack_sdk WebClient.

It answers chat.postMessage (and chat.update, auth.test) like Slack: `{"ok": true, "channel":
<id>, "ts": <ts>}`, a channel given by name getting a stable id, a ts from the clock. It keeps
what it accepted per channel, with the message metadata, and answers conversations.history,
conversations.replies (metadata only with include_all_metadata) and conversations.list. It
records every request it received (method, parsed JSON body or query, headers, its answer).
It can be told to answer the next calls with a 429 and a Retry-After, or a 500, to refuse
unknown channels or chosen messages (`refuse`), to accept a message and then lose the answer
(`lose_next`: answer after the client gave up, or close the connection unanswered), or to be
down (its socket closed, so connections are refused) and up again on the same port.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Received:
    method: str
    body: dict[str, Any]
    headers: dict[str, str]
    raw: str
    answered: int  # the HTTP status the server answered with
    ok: bool  # the `ok` of the answer
    answer: dict[str, Any] = field(default_factory=dict)  # the answer's JSON


@dataclass
class SlackServer:
    port: int = 0
    received: list[Received] = field(default_factory=list)
    known_channels: set[str] | None = None  # None: every channel exists
    # Call number (0-based, counting every request) -> the failure to answer it with.
    _failures: dict[int, tuple[int, dict[str, str]]] = field(default_factory=dict)
    # Call number -> how its answer is lost after the message was accepted ("late", "drop").
    _losses: dict[int, str] = field(default_factory=dict)
    # (error, which chat.postMessage bodies): refused with that error, answered 200 ok false.
    _refusals: list[tuple[str, Callable[[dict[str, Any]], bool]]] = field(default_factory=list)
    late_seconds: float = 3.0  # how long a "late" answer waits (past the client's timeout)
    # Channel id -> the messages accepted there: {"ts", "text", "thread_ts", "metadata"}.
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    _names: dict[str, str] = field(default_factory=dict)  # channel id -> name, for the list
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _calls: int = 0
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _ts: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def start(self) -> SlackServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                raw = urlsplit(self.path).query
                self._handle(raw, _form(raw))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                try:
                    body = json.loads(raw) if raw.startswith("{") else _form(raw)
                except ValueError:
                    body = {}
                self._handle(raw, body)

            def _handle(self, raw: str, body: dict[str, Any]) -> None:
                method = urlsplit(self.path).path.rsplit("/", 1)[-1]
                with server._lock:
                    call = server._calls
                    status, headers, answer = server._answer(method, body)
                    ok = bool(answer["ok"])
                    headers_in = dict(self.headers)
                    server.received.append(
                        Received(method, body, headers_in, raw, status, ok, answer)
                    )
                    loss = server._losses.pop(call, None)
                if loss == "drop":
                    # Accepted, then the connection closes without an answer.
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if loss == "late":
                    time.sleep(server.late_seconds)  # the client has given up by now
                with contextlib.suppress(OSError):  # the client gave up waiting
                    payload = json.dumps(answer).encode()
                    self.send_response(status)
                    for name, value in {**headers, "Content-Type": "application/json"}.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Down: the socket is closed, connections to the port are refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def fail_next(
        self, status: int, times: int = 1, retry_after: float | str | None = None, after: int = 0
    ) -> None:
        """Answer `times` calls with `status`, once `after` more calls were answered normally."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        for offset in range(times):
            self._failures[self._calls + after + offset] = (status, headers)

    def lose_next(self, how: str, after: int = 0) -> None:
        """Accept the call `after` more calls from now, then lose its answer: "late" answers
        after `late_seconds`, "drop" closes the connection without answering."""
        assert how in ("late", "drop")
        self._losses[self._calls + after] = how

    def refuse(self, error: str, which: Callable[[dict[str, Any]], bool]) -> None:
        """Refuse every chat.postMessage whose body `which` picks, as Slack does (200, ok false)."""
        self._refusals.append((error, which))

    def posts(self, **match: Any) -> list[dict[str, Any]]:
        """The bodies of the chat.postMessage calls Slack accepted (answered 200, ok)."""
        return [
            r.body
            for r in self.received
            if r.method == "chat.postMessage"
            and r.ok
            and all(r.body.get(k) == v for k, v in match.items())
        ]

    def _answer(self, method: str, body: dict[str, Any]) -> tuple[int, dict[str, str], dict]:
        call, self._calls = self._calls, self._calls + 1
        if call in self._failures:
            status, headers = self._failures.pop(call)
            error = "ratelimited" if status == 429 else "internal_error"
            return status, headers, {"ok": False, "error": error}
        if method == "auth.test":
            return 200, {}, {"ok": True, "user_id": "UFLOWERBOT", "team": "flower"}
        if method in ("chat.postMessage", "chat.update"):
            channel = str(body.get("channel", ""))
            known = self.known_channels
            if known is not None and channel not in known | {channel_id(c) for c in known}:
                return 200, {}, {"ok": False, "error": "channel_not_found"}
            for error, which in self._refusals:
                if method == "chat.postMessage" and which(body):
                    return 200, {}, {"ok": False, "error": error}
            ts = body.get("ts") or f"{int(time.time())}.{next(self._ts):06d}"
            if method == "chat.postMessage":
                self._keep(channel, ts, body)
            answer = {"ok": True, "channel": channel_id(channel), "ts": ts}
            return 200, {}, {**answer, "message": {"text": body.get("text"), "ts": ts}}
        if method in ("conversations.history", "conversations.replies"):
            return 200, {}, self._read(method, body)
        if method == "conversations.list":
            channels = [{"id": cid, "name": name[1:]} for cid, name in self._names.items()]
            return 200, {}, {"ok": True, "channels": channels, "response_metadata": {}}
        return 200, {}, {"ok": False, "error": "unknown_method"}

    def _keep(self, channel: str, ts: str, body: dict[str, Any]) -> None:
        cid = channel_id(channel)
        if channel.startswith("#"):
            self._names[cid] = channel
        metadata = body.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        message = {"ts": ts, "text": body.get("text"), "metadata": metadata}
        if body.get("thread_ts"):
            message["thread_ts"] = body["thread_ts"]
        self.history.setdefault(cid, []).append(message)

    def _read(self, method: str, query: dict[str, Any]) -> dict[str, Any]:
        """conversations.history or .replies: newest first (replies: oldest first), after
        `oldest`, a page of `limit` at a time; metadata only with include_all_metadata."""
        cid = str(query.get("channel", ""))
        if cid.startswith("#"):
            return {"ok": False, "error": "channel_not_found"}  # Slack wants the id here
        messages = self.history.get(cid, [])
        if method == "conversations.history":
            chosen = [m for m in messages if "thread_ts" not in m][::-1]
        else:
            parent = str(query.get("ts", ""))
            chosen = [m for m in messages if m["ts"] == parent or m.get("thread_ts") == parent]
        oldest = float(query.get("oldest") or 0)
        chosen = [m for m in chosen if float(m["ts"]) > oldest]
        start, limit = int(query.get("cursor") or 0), int(query.get("limit") or 100)
        page = chosen[start : start + limit]
        with_metadata = str(query.get("include_all_metadata", "")).lower() in ("1", "true")
        page = [
            {k: v for k, v in m.items() if k != "metadata" or (with_metadata and v)} for m in page
        ]
        more = str(start + limit) if start + limit < len(chosen) else ""
        return {"ok": True, "messages": page, "response_metadata": {"next_cursor": more}}


def channel_id(channel: str) -> str:
    """Slack answers with the channel's id; a name gets a stable made-up one."""
    if not channel.startswith("#"):
        return channel
    return "C" + hashlib.sha1(channel.encode()).hexdigest()[:8].upper()


def _form(raw: str) -> dict[str, Any]:
    return {k: v[0] for k, v in parse_qs(raw).items()}
