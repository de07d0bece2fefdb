"""A local stand-in for Slack's Web API on 127.0.0.1, for the real slack_sdk WebClient.

It answers chat.postMessage (and chat.update, auth.test) like Slack: `{"ok": true, "channel":
<id>, "ts": <ts>}`, a channel given by name getting a stable id. It records every request it
received (method, parsed JSON body, headers). It can be told to answer the next calls with a 429
and a Retry-After, or a 500, to refuse unknown channels, or to be down (its socket closed, so
connections are refused) and up again on the same port.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs


@dataclass
class Received:
    method: str
    body: dict[str, Any]
    headers: dict[str, str]
    raw: str
    answered: int  # the HTTP status the server answered with
    ok: bool  # the `ok` of the answer


@dataclass
class SlackServer:
    port: int = 0
    received: list[Received] = field(default_factory=list)
    known_channels: set[str] | None = None  # None: every channel exists
    # Call number (0-based, counting every request) -> the failure to answer it with.
    _failures: dict[int, tuple[int, dict[str, str]]] = field(default_factory=dict)
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
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                try:
                    body = json.loads(raw) if raw.startswith("{") else _form(raw)
                except ValueError:
                    body = {}
                method = self.path.rsplit("/", 1)[-1]
                status, headers, answer = server._answer(method, body)
                server.received.append(
                    Received(method, body, dict(self.headers), raw, status, bool(answer["ok"]))
                )
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
        self, status: int, times: int = 1, retry_after: int | None = None, after: int = 0
    ) -> None:
        """Answer `times` calls with `status`, once `after` more calls were answered normally."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        for offset in range(times):
            self._failures[self._calls + after + offset] = (status, headers)

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
            if self.known_channels is not None and channel not in self.known_channels:
                return 200, {}, {"ok": False, "error": "channel_not_found"}
            ts = body.get("ts") or f"1764000000.{next(self._ts):06d}"
            answer = {"ok": True, "channel": channel_id(channel), "ts": ts}
            return 200, {}, {**answer, "message": {"text": body.get("text"), "ts": ts}}
        return 200, {}, {"ok": False, "error": "unknown_method"}


def channel_id(channel: str) -> str:
    """Slack answers with the channel's id; a name gets a stable made-up one."""
    if not channel.startswith("#"):
        return channel
    return "C" + hashlib.sha1(channel.encode()).hexdigest()[:8].upper()


def _form(raw: str) -> dict[str, Any]:
    return {k: v[0] for k, v in parse_qs(raw).items()}
