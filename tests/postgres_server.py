"""A throwaway PostgreSQL server on 127.0.0.1, in a temporary folder, for the tests.

`scripts/ensure-postgres.sh` installs Debian's package when the binaries are missing; the server
gets a cluster of its own (initdb with a password, scram auth), a free port on loopback only, and
is stopped and removed afterwards. PostgreSQL refuses to run as root, so as root it runs as the
`postgres` system user the package creates.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flower_dagster.settings import REPO_ROOT
from tests.http_support import free_port

ENSURE_SCRIPT = REPO_ROOT / "scripts" / "ensure-postgres.sh"
# dagster-postgres's own storage classes, where deploy/dagster.yaml names flower-dagster's pooled
# ones (flower_dagster/storage.py, `Pooled<class>`): the stock way, for comparisons.
STOCK_STORAGE_MODULES = {
    "run_storage": "dagster_postgres.run_storage",
    "event_log_storage": "dagster_postgres.event_log",
    "schedule_storage": "dagster_postgres.schedule_storage",
}


def with_stock_storage(config: Mapping[str, Any]) -> dict[str, Any]:
    """An instance configuration with dagster-postgres's storage classes in place of
    flower-dagster's pooled ones; the rest, connection settings included, unchanged."""
    return {
        **config,
        **{
            name: {
                **config[name],
                "module": module,
                "class": config[name]["class"].replace("Pooled", ""),
            }
            for name, module in STOCK_STORAGE_MODULES.items()
        },
    }


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    database: str

    @property
    def env(self) -> dict[str, str]:
        """The variables deploy/dagster.yaml reads its connection from."""
        return {
            "DAGSTER_PG_HOST": self.host,
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_USER": self.user,
            "DAGSTER_PG_PASSWORD": self.password,
            "DAGSTER_PG_DB": self.database,
        }

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PostgresServer:
        """The server `env` points at (the inverse of `env`), in a process given only that."""
        return cls(
            env["DAGSTER_PG_HOST"],
            int(env["DAGSTER_PG_PORT"]),
            env["DAGSTER_PG_USER"],
            env["DAGSTER_PG_PASSWORD"],
            env["DAGSTER_PG_DB"],
        )

    def query(self, sql: str) -> Any:
        """One statement on the server's database in a connection of its own, outside a
        transaction (CREATE DATABASE needs that): the first column of its first row, if any."""
        import psycopg2

        connection = psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=self.database,
        )
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchone()[0] if cursor.description else None
        finally:
            connection.close()


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    subprocess.run(["bash", str(ENSURE_SCRIPT)], check=True)
    return _bin_dir()


@contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A running server; its folder is its own (the postgres user must reach it, which pytest's
    private temporary folders do not allow), removed when it stops."""
    bin_dir = _bin_dir()
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    folder = Path(tempfile.mkdtemp(prefix="flower-postgres-"))
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()
    password = secrets.token_urlsafe(16)
    pwfile = folder / "pwfile"
    pwfile.write_text(password + "\n")
    if as_root:
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
        shutil.chown(pwfile, "postgres")

    def run(*args: str) -> None:
        result = subprocess.run([*prefix, *args], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed: {result.stdout}{result.stderr}")

    run(
        str(bin_dir / "initdb"),
        "-D",
        str(data),
        "-U",
        "flower",
        "--auth=scram-sha-256",
        f"--pwfile={pwfile}",
        "--encoding=UTF8",
        "--no-sync",
    )
    pwfile.unlink()
    port = free_port()
    options = f"-h 127.0.0.1 -p {port} -k {sockets} -c fsync=off -c full_page_writes=off"
    run(
        str(bin_dir / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        options,
        "-l",
        str(folder / "log"),
        "-w",
        "start",
    )
    server = PostgresServer("127.0.0.1", port, "flower", password, "dagster")
    try:
        env = {**os.environ, "PGPASSWORD": password}
        subprocess.run(
            [
                str(bin_dir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-U",
                "flower",
                "dagster",
            ],
            check=True,
            env=env,
            capture_output=True,
        )
        yield server
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)
