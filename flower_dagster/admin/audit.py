"""The audit log: one JSON line per request to the admin service, allowed or refused.

A line says when, from where, who (if anyone was recognised, and how), what was asked, the HTTP
status and the outcome, and for a backfill its id, model, range and reason. Never the token, nor
any request header: a line is safe to ship to a log store.

    {"time": "2024-03-02T01:02:03.456+00:00", "client": "127.0.0.1", "user": "jimin",
     "auth": "token", "method": "POST", "path": "/api/backfills", "action": "launch",
     "status": 201, "outcome": "allowed", "model": "fct_orders", "from": "2024-01-01",
     "to": "2024-01-03", "reason": "orders reloaded", "backfill_id": "abcdefgh"}
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ALLOWED = "allowed"
REFUSED = "refused"
ERROR = "error"


class AuditLog:
    """Appends lines to a file; safe across the threads of one process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, entry: Mapping[str, Any]) -> None:
        line = json.dumps(
            {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), **entry},
            default=str,
            ensure_ascii=False,
        )
        with self._lock:
            # O_APPEND: several service processes may share one file, line by line.
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)


def outcome_of(status: int) -> str:
    if status < 400:
        return ALLOWED
    if status >= 500:
        return ERROR
    return REFUSED


def read_audit(path: Path) -> list[dict[str, Any]]:
    """Every line of an audit log (for tests and `jq`-less inspection)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
