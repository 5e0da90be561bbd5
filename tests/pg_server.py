"""A real PostgreSQL 15 on loopback for the team-store tests: `initdb` into a temporary folder, a free port,
started once per test session and stopped at its end, pass or fail.

Skips (with the reason) when the PostgreSQL binaries or DuckDB's ducklake/postgres extension wheels
(`pip install '.[team]'`, duckdb 1.5.5) are missing. As root, the server runs as the `postgres` user.
tests/conftest.py imports the fixtures below, so every test module can take them:

- `pg_server`, `team_address`: the server; a new, empty team store (its own database, never created yet).
- `store_kind` ("file" or "team"), `new_store_address(name)`, `any_store`, `seeded_store(accounts)`: the store
  test suite on both back-ends. A test that takes one of them runs twice. Each team store is its own
  PostgreSQL database, copied from a template database built once per session (migrated, or seeded as
  tests/review_seed.py seeds a file), with its own copy of the template's data files, and dropped after
  the test: no test sees another's rows.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from harness.store import Store, TeamAddress
from harness.store.address import parse
from harness.store.extensions import WHEELS, wheel_file
from harness.store.team import META_SCHEMA

T = TypeVar("T")

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
    templates: dict[Hashable, tuple[str, Path, Any]] = field(default_factory=dict)

    def _run(self, *args: str) -> str:
        command = [str(self.bin / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, timeout=60, text=True)
        if done.returncode:
            raise RuntimeError(f"{' '.join(args[:1])} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
        return done.stdout

    def new_database(self, template: str | None = None) -> str:
        name = f"harness_{os.getpid()}_{next(_names)}"
        copy = ["-T", template] if template else []
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, *copy, name)
        return name

    def drop_database(self, name: str) -> None:
        self._run("dropdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "--force", "--if-exists", name)

    def sql(self, dbname: str, statement: str) -> str:
        """One statement through psql; its rows as text (`|` between fields)."""
        return self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", dbname,
                         "-v", "ON_ERROR_STOP=1", "-Atc", statement)

    def store_from(self, key: Hashable, build: Callable[[str], T], data: Path) -> tuple[str, T]:
        """A new team store copied from the template `key` (built once per session by build(address), which
        returns what the copies share, e.g. passwords): its own database and, under `data` (which must not
        exist yet), its own copy of the template's data files. (The address, what build returned.)"""
        if key not in self.templates:
            lake = self.folder / f"template_{len(self.templates)}"
            lake.mkdir()
            name = self.new_database()
            built = build(self.address(name, lake))
            from harness.store import team

            team.close_all()  # CREATE DATABASE ... TEMPLATE needs the template without connections
            self.templates[key] = (name, lake, built)
        template, lake, built = self.templates[key]
        shutil.copytree(lake, data)
        name = f"harness_{os.getpid()}_{next(_names)}"
        self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, "-d", "postgres", "-v",
                  "ON_ERROR_STOP=1", "-q", "-c", f"CREATE DATABASE {name} TEMPLATE {template}", "-c", f"\\c {name}",
                  "-c", f"UPDATE {META_SCHEMA}.ducklake_metadata SET value = '{data}/' WHERE key = 'data_path'")
        return self.address(name, data), built

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


# the store test suite on both back-ends ---------------------------------------------------------------------
def address_text(path: Path | TeamAddress | str) -> str:
    """What --db / HARNESS_DB take for a store (a team address whole: str() hides its password and data path)."""
    return path.full() if isinstance(path, TeamAddress) else str(path)


def lake_snapshot(address: TeamAddress) -> int:
    """The latest DuckLake snapshot of a team store (every commit to its lake tables makes a new one)."""
    server = PgServer(pg_bin(), int(address.field("port") or 5432), address.field("user") or "postgres", Path())
    return int(server.sql(address.field("dbname"), f"SELECT max(snapshot_id) FROM {META_SCHEMA}.ducklake_snapshot"))


def seeded_team_store(server: PgServer, accounts: tuple[str, ...], data: Path) -> tuple[Store, dict[str, str]]:
    """tests/review_seed.py's seeded store as a new team store (data: its data folder, not there yet), with
    these reviewer accounts past their first login: (store, name -> password). Drop its database after."""
    address, passwords = server.store_from(("seeded", tuple(accounts)), _seeded(tuple(accounts)), data)
    return Store(address), dict(passwords)


def _empty(address: str) -> None:
    Store(address).runs()  # creates and migrates it


def _seeded(accounts: tuple[str, ...]) -> Callable[[str], dict[str, str]]:
    def build(address: str) -> dict[str, str]:
        from review_seed import own_password, seed_store

        store = seed_store(address)
        return {name: own_password(store, name) for name in accounts}

    return build


@pytest.fixture(params=["file", "team"], name="store_kind")
def store_kind_fixture(request) -> str:
    """The back-end of this test's stores: each test that takes a store fixture below runs on both."""
    if request.param == "team":
        request.getfixturevalue("pg_server")  # skips, with the reason, where PostgreSQL or the wheels are missing
    return request.param


@pytest.fixture(name="_team_stores")
def team_stores_fixture(request) -> Iterator[list[str]]:
    """The team stores a test made; after it, this process's connections close and their databases go."""
    made: list[str] = []
    yield made
    if made:
        from harness.store import team

        team.close_all()
        server = request.getfixturevalue("pg_server")
        for address in made:
            server.drop_database(parse(address).field("dbname"))


@pytest.fixture(name="new_store_address")
def new_store_address_fixture(store_kind, tmp_path, request, _team_stores) -> Callable[[str], Path | str]:
    """new_store_address(name) -> a new store of this test's kind: tmp_path/name, where nothing is yet (the
    first write creates it), or the address of a new team store holding the current schema and no rows."""
    def make(name: str = "store.duckdb") -> Path | str:
        if store_kind == "file":
            return tmp_path / name
        server = request.getfixturevalue("pg_server")
        address, _ = server.store_from("empty", _empty, tmp_path / f"{name}.lake")
        _team_stores.append(address)
        return address

    return make


@pytest.fixture(name="any_store")
def any_store_fixture(new_store_address) -> Store:
    """A new, empty store, a file or a team store (the test runs on both)."""
    return Store(new_store_address())


@pytest.fixture(name="seeded_store")
def seeded_store_fixture(store_kind, tmp_path, request, _team_stores) -> Callable[..., tuple[Store, dict[str, str]]]:
    """seeded_store(accounts=(), name=...) -> (store, name -> password): tests/review_seed.py's seeded store
    (seeded_copy) with these reviewer accounts past their first login, a file or a team store."""
    from review_seed import seeded_copy

    def make(accounts: tuple[str, ...] = (), name: str = "seeded.duckdb") -> tuple[Store, dict[str, str]]:
        if store_kind == "file":
            return seeded_copy(tmp_path / name, accounts)
        store, passwords = seeded_team_store(request.getfixturevalue("pg_server"), accounts, tmp_path / f"{name}.lake")
        _team_stores.append(address_text(store.path))
        return store, passwords

    return make
