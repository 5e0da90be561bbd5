"""A team store: DuckLake with its catalog in PostgreSQL, plus plain PostgreSQL tables for keyed rows.

The bulk tables (runs, predictions, statistics, scores, gate decisions, ...) are DuckLake tables (`lake`):
Parquet files under the data path, catalogued in the PostgreSQL schema `harness_lake`. DuckLake has no
primary keys or uniqueness, so the tables whose rows must be unique while reviewers write at once
(PG_TABLES: accounts, throttle, sessions, queues, items, grades, skips, claims, app secrets) are plain
PostgreSQL tables in `public`, reached through DuckDB's postgres extension (`pg`). Both are on one search
path, so the store's SQL is the same on both back-ends. A DuckDB transaction writes one attached database
only; no store transaction writes both (a review queue reads runs and writes PostgreSQL).
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import duckdb

from harness.errors import HarnessError
from harness.store import schema
from harness.store.address import EXAMPLE, TeamAddress
from harness.store.connection import in_transaction
from harness.store.extensions import load_team
from harness.store.filelock import Wait

T = TypeVar("T")
META_SCHEMA = "harness_lake"
PG_TABLES = frozenset({"reviewers", "login_throttle", "review_queues", "review_queue_reviewers", "review_items",
                       "review_grades", "review_skips", "review_claims", "review_sessions", "app_secrets"})
_RETRY = re.compile(r"conflict|could not serialize|deadlock|\block(ed)?\b|concurrent update")
_open_lock = threading.Lock()
_databases: dict[tuple[str, str | None, bool], duckdb.DuckDBPyConnection] = {}
_schemas: dict[tuple[str, bool], schema.Schema] = {}
_checked: dict[tuple[str, bool], float] = {}  # when each schema was last looked at (time.monotonic)
RECHECK_S = 10.0
_writers: dict[str, threading.Lock] = {}  # one writing transaction per process and store at a time


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _attach(address: TeamAddress, create: bool) -> duckdb.DuckDBPyConnection:
    """A DuckDB database with the PostgreSQL database (`pg`) and the DuckLake (`lake`) attached."""
    con = duckdb.connect()
    try:
        load_team(con)
        read_only = "" if create else ", READ_ONLY"
        try:
            con.execute(f"ATTACH {_quote(address.dsn)} AS pg (TYPE postgres{read_only})")
        except duckdb.Error as exc:
            raise HarnessError(f"team store {address}: cannot reach PostgreSQL ({_first_line(exc)}); check host=, "
                               "port=, dbname= and user= (and password= or ~/.pgpass) in --db, and that the server "
                               f"is running; for example {EXAMPLE!r}") from None
        for attempt in range(5):  # two processes creating one new store at once: the loser attaches the winner's
            try:
                _attach_lake(con, address, create, _has_lake(con))
                break
            except HarnessError as exc:
                if attempt == 4 or not ("duplicate key" in str(exc) or "already exists" in str(exc)):
                    raise
                time.sleep(random.uniform(0.1, 0.3) * (attempt + 1))
    except BaseException:
        con.close()
        raise
    return con


def _has_lake(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.tables WHERE table_catalog = 'pg' AND "
                            "table_schema = ? AND table_name = 'ducklake_metadata'", [META_SCHEMA]).fetchone()[0])


def _attach_lake(con: duckdb.DuckDBPyConnection, address: TeamAddress, create: bool, exists: bool) -> None:
    if not exists and not create:
        raise HarnessError(f"there is no team store at {address} yet (PostgreSQL has no schema {META_SCHEMA}); "
                           "a writing command creates it, for example harness run EXPERIMENT --db ADDRESS "
                           "--data-path FOLDER")
    if not exists and not address.data_path:
        raise HarnessError(f"team store {address}: a new team store needs a data path for its files; add "
                           "data_path=FOLDER to the address, or give --data-path (or HARNESS_DATA_PATH)")
    options = [f"METADATA_SCHEMA {_quote(META_SCHEMA)}"]
    if address.data_path:
        options.append(f"DATA_PATH {_quote(address.data_path)}")
    if not create:
        options.append("READ_ONLY")
    try:
        con.execute(f"ATTACH {_quote('ducklake:postgres:' + address.dsn)} AS lake ({', '.join(options)})")
    except duckdb.Error as exc:
        raise HarnessError(f"team store {address}: cannot open its DuckLake ({_first_line(exc)}); check the data "
                           "path (data_path= or --data-path; an existing store keeps its own, so it may be left "
                           "out)") from None


def database(address: TeamAddress, create: bool) -> duckdb.DuckDBPyConnection:
    """The process's DuckDB database for this team store (attached once; each transaction takes a cursor)."""
    key = (address.dsn, address.data_path, create)
    with _open_lock:
        if key not in _databases:
            _databases[key] = _attach(address, create)
        return _databases[key]


def cursor(address: TeamAddress, create: bool) -> duckdb.DuckDBPyConnection:
    cur = database(address, create).cursor()
    cur.execute("USE lake")
    cur.execute("SET search_path = 'lake.main,pg.public'")
    return cur


def close_all() -> None:
    """Detach every team store of this process, and close its direct connections (tests; a process exiting
    does it anyway)."""
    from harness.store import team_direct

    team_direct.close_all()
    with _open_lock:
        for con in _databases.values():
            con.close()
        _databases.clear()
        _schemas.clear()


def _statements(sql: str) -> list[str]:
    return [part.strip() for part in sql.split(";") if part.strip()]


def team_statement(statement: str) -> tuple[str, str]:
    """('pg' or 'lake', the statement as it runs there): keyed tables go to PostgreSQL, the rest to DuckLake."""
    match = re.match(r"(CREATE TABLE|ALTER TABLE|INSERT INTO)\s+(\w+)", statement, re.IGNORECASE)
    if match and match.group(2).lower() in PG_TABLES:
        verb, table = match.group(1).upper(), match.group(2)
        rest = statement[match.end():]
        if verb == "CREATE TABLE":
            return "pg", f"CREATE TABLE IF NOT EXISTS pg.public.{table}{rest}"
        if verb == "ALTER TABLE":  # in PostgreSQL's own dialect: DuckDB passes no DEFAULT through
            altered = f"ALTER TABLE public.{table}" + re.sub(r"ADD COLUMN\s+(?!IF)", "ADD COLUMN IF NOT EXISTS ",
                                                            rest, flags=re.IGNORECASE)
            return "pg", f"CALL postgres_execute('pg', {_quote(altered)})"
        return "pg", f"INSERT INTO pg.public.{table}{rest} ON CONFLICT DO NOTHING"
    unkeyed = re.sub(r",\s*PRIMARY KEY\s*\([^)]*\)", "", statement, flags=re.IGNORECASE)
    return "lake", re.sub(r"\s+PRIMARY KEY\b", "", unkeyed, flags=re.IGNORECASE)


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    """The same numbered migrations as a file: PostgreSQL statements first (idempotent, each its own
    transaction), then the DuckLake statements and the schema_version row in one transaction."""
    from harness.store.migrations import MIGRATIONS, current_version

    current_version(con)
    for number, sql in sorted(MIGRATIONS, key=lambda m: m[0]):
        if con.execute("SELECT count(*) FROM schema_version WHERE version = ?", [number]).fetchone()[0]:
            continue
        routed = [team_statement(s) for s in _statements(sql)]
        for where, statement in routed:
            if where == "pg":
                con.execute(statement)
        con.execute("CALL pg_clear_cache()")
        con.execute("BEGIN TRANSACTION")
        try:
            for where, statement in routed:
                if where == "lake":
                    con.execute(statement)
            con.execute("INSERT INTO schema_version VALUES (?, now())", [number])
            con.execute("COMMIT")
        except Exception:
            try:
                con.execute("ROLLBACK")
            except duckdb.Error:
                pass  # a failed COMMIT (another process migrated first) has rolled back already
            raise


def _known(address: TeamAddress, create: bool) -> schema.Schema:
    """The store's schema, looked at when the process first uses the store and again every RECHECK_S seconds
    (a long-lived report server must notice another machine's newer harness upgrading it); a writer creates
    or upgrades it (in its turn; a conflict with another process migrating the same store is tried again)."""
    key = (address.dsn, create)
    for attempt in range(5):
        try:
            if key in _schemas and time.monotonic() - _checked.get(key, 0.0) > RECHECK_S:
                del _schemas[key]  # looked at again below: a newer schema is refused, an older one upgraded
            if key not in _schemas:
                _checked[key] = time.monotonic()
                if create:
                    with _writer_lock(address):
                        _schemas[key] = _inspect(address, create)
                else:
                    _schemas[key] = _inspect(address, create)
            return _schemas[key]
        except duckdb.Error as exc:  # "already exists": another process committed that migration first
            text = str(exc).lower()
            if not (_RETRY.search(text) or "already exists" in text) or attempt == 4:
                raise
            time.sleep(random.uniform(0.05, 0.2) * (attempt + 1))
    raise AssertionError("unreachable")


def known(address: TeamAddress, create: bool) -> schema.Schema:
    """The store's schema as Store.transaction finds it first (created or upgraded by a writer); an empty one
    is refused to a reader."""
    found = _known(address, create)
    if found.empty and not create:
        raise HarnessError(f"the team store {address} has no tables yet; a run fills it: harness run EXPERIMENT "
                           "--db ADDRESS")
    return found


def _inspect(address: TeamAddress, create: bool) -> schema.Schema:
    cur = cursor(address, create)
    try:
        found = _schema(cur, address)
        if create and (found.empty or found.missing()):
            migrate(cur)
            found = schema.Schema(frozenset(schema.known_versions()))
        return found
    finally:
        cur.close()


def _schema(con: duckdb.DuckDBPyConnection, address: TeamAddress) -> schema.Schema:
    """The migrations of the team store's DuckLake. The catalog schema `harness_lake` is harness's by its name,
    so there is no marker to check (and another process may be half-way through migrating it)."""
    names = {name for (name,) in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'lake'").fetchall()}
    if "schema_version" not in names:
        if names:
            raise HarnessError(f"team store {address}: its DuckLake has tables ({', '.join(sorted(names)[:5])}) but "
                               "no harness schema_version; it is not a harness store; give another dbname")
        return schema.Schema(frozenset(), empty=True)
    return schema.Schema(schema.versions(con, address))


def _writer_lock(address: TeamAddress) -> threading.Lock:
    """Writers of one process take turns (as on a file store), so that its threads never conflict with each
    other; other processes and machines still write at the same time (DuckLake and PostgreSQL order them)."""
    with _open_lock:
        return _writers.setdefault(address.dsn, threading.Lock())


def retrying(fn: Callable[[duckdb.DuckDBPyConnection], T], address: TeamAddress, wait: Wait, create: bool) -> T:
    """fn(con) in one transaction on the team store; run again on a conflict with a concurrent transaction."""
    found = known(address, create)
    delay = 0.01
    turn = _writer_lock(address) if create else None
    while True:
        cur = cursor(address, create)
        try:
            if turn is None:
                return in_transaction(cur, fn)
            with turn:
                return in_transaction(cur, fn)
        except duckdb.CatalogException:
            if found.missing() and not create:
                raise schema.older_error(address, found) from None
            raise
        except duckdb.Error as exc:
            if not _RETRY.search(str(exc).lower()) or wait.expired():
                raise
        finally:
            cur.close()
        wait.tick("another writer")
        time.sleep(random.uniform(0.5, 1.0) * min(delay, max(wait.slice(), 0.001)))  # jitter: no lockstep
        delay = min(delay * 2, 0.25)


def calls(address: TeamAddress, statements: list[str]) -> None:
    """Housekeeping calls, each committed by itself (DuckLake's maintenance functions)."""
    _known(address, True)
    cur = cursor(address, True)
    try:
        for statement in statements:
            cur.execute(statement)
    finally:
        cur.close()
