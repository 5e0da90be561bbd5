"""A real PostgreSQL 15 on loopback for the team-store tests: `initdb` into a temporary folder, a free port,
started once per test session and stopped at its end, pass or fail.

Skips (with the reason) when the PostgreSQL binaries or DuckDB's ducklake/postgres extension wheels
(`pip install '.[team]'`, duckdb 1.5.5) are missing. As root, the server runs as the `postgres` user.
A test module imports the fixtures: `from pg_server import pg_server_fixture, team_address_fixture`.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.store.extensions import WHEELS, wheel_file

BIN_DIRS = [os.environ.get("HARNESS_PG_BIN", ""), "/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin"]
_names = itertools.count()


def pg_bin() -> Path | None:
    for folder in BIN_DIRS:
        if folder and (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    return None


def why_not() -> str | None:
    """The reason the team-store tests cannot run here, or None."""
    if pg_bin() is None:
        return "PostgreSQL binaries (initdb, pg_ctl) not found; install postgresql-15 or set HARNESS_PG_BIN"
    missing = [name for name in WHEELS if wheel_file(name) is None]
    if missing:
        return f"DuckDB extension wheels for {', '.join(missing)} not installed (pip install '.[team]')"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class PgServer:
    bin: Path
    port: int
    user: str
    folder: Path

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", self.user, "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def new_database(self) -> str:
        name = f"harness_{os.getpid()}_{next(_names)}"
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name)
        return name

    def address(self, dbname: str, data_path: Path | None = None) -> str:
        text = f"ducklake:postgres:host=127.0.0.1 port={self.port} dbname={dbname} user={self.user}"
        return text + (f" data_path={data_path}" if data_path is not None else "")


def _start() -> PgServer:
    folder = Path(tempfile.mkdtemp(prefix="harness_pg_"))
    user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    if os.geteuid() == 0:
        shutil.chown(folder, user)
    server = PgServer(pg_bin(), _free_port(), user, folder)
    server._run("initdb", "-D", str(folder / "data"), "-U", user, "-A", "trust", "--no-sync")
    server._run("pg_ctl", "-D", str(folder / "data"), "-l", str(folder / "log"), "-w", "-o",
                f"-p {server.port} -h 127.0.0.1 -k {folder} -c fsync=off -c max_connections=300", "start")
    return server


@pytest.fixture(scope="session", name="pg_server")
def pg_server_fixture() -> Iterator[PgServer]:
    reason = why_not()
    if reason:
        pytest.skip(reason)
    server = _start()
    try:
        yield server
    finally:
        from harness.store import team

        team.close_all()
        try:
            server._run("pg_ctl", "-D", str(server.folder / "data"), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(server.folder, ignore_errors=True)


@pytest.fixture(name="team_address")
def team_address_fixture(pg_server: PgServer, tmp_path: Path) -> str:
    """The address of a new, empty team store (its own PostgreSQL database and data folder)."""
    data = tmp_path / "lake"
    data.mkdir()
    return pg_server.address(pg_server.new_database(), data)
