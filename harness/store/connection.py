"""DuckDB connections for one transaction at a time, taken in turn (harness/store/filelock.py).

Every transaction runs in the caller's turn: the thread lock and the OS lock on `STORE.lock`. A new
connection checks the file first (exists, DuckDB header; schema.check_file) and looks at its schema once
per process and file (a harness store, not a newer one), and a writer upgrades it. While more threads of
the process queue, the connection is kept for them (for at most filelock.BATCH_S). Otherwise it is closed.
A writer (`create=True`) may create and migrate the file. A reader opens it read-only and never creates,
migrates or checkpoints anything. A DuckDB lock held by a process that does not use the lock file (a
`duckdb` shell) is waited out with backoff, under the same deadline and notes.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import duckdb

from harness.errors import HarnessError
from harness.store import schema
from harness.store.filelock import StoreLock, Wait, store_lock

DEFAULT_DB = "harness.duckdb"
DEFAULT_LOCK_TIMEOUT_S = 60.0
FOREVER = math.inf
T = TypeVar("T")
_schemas: dict[tuple[str, int, int], schema.Schema] = {}
_migrate_lock = threading.Lock()
_LOCK_WORDS = re.compile(r"\block(ed|ing)?\b|conflict|being used by another process")


def default_path(explicit: str | os.PathLike | None = None) -> Path:
    return Path(explicit or os.environ.get("HARNESS_DB") or DEFAULT_DB)


def lock_timeout() -> float:
    """Seconds a caller waits for a busy store: HARNESS_DB_LOCK_TIMEOUT (default 60; `inf` waits for ever)."""
    raw = os.environ.get("HARNESS_DB_LOCK_TIMEOUT", "").strip()
    if not raw:
        return DEFAULT_LOCK_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not value >= 0:
        raise HarnessError(f"HARNESS_DB_LOCK_TIMEOUT={raw!r} is not a number of seconds; set it to a number "
                           "such as 60 (or inf to wait for ever), or unset it")
    return value


def _is_lock_error(exc: Exception) -> bool:
    return bool(_LOCK_WORDS.search(str(exc).lower()))  # "lock" as a word: "block" is not a lock error


def is_busy(exc: BaseException) -> bool:
    """Whether an error from a store call means another process holds the store (try again shortly).

    Callers outside harness/store/ ask this instead of handling DuckDB's error types themselves.
    """
    if not isinstance(exc, HarnessError | duckdb.Error):
        return False
    text = str(exc).lower()
    return "lock" in text or "conflict" in text or "being used by another process" in text


def is_duplicate_key(exc: BaseException) -> bool:
    """A commit refused because the same primary key arrived twice at the same moment."""
    return isinstance(exc, duckdb.Error) and "duplicate key" in str(exc).lower()  # PostgreSQL's too (a team store)


def once_per_key(fn: Callable[[], T], attempts: int, pause_s: float, exhausted: str | None = None) -> T:
    """fn(), run again (after attempt * pause_s) while a duplicate key refuses its commit: the rerun sees the
    committed row. When every attempt was refused: HarnessError(exhausted), or the last error itself."""
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as exc:
            if not is_duplicate_key(exc):
                raise
            if attempt == attempts - 1 and exhausted is None:
                raise
            time.sleep(pause_s * (attempt + 1))
    raise HarnessError(exhausted or "the store refused the same row too often; try again in a moment")


def _identity(path: Path) -> tuple[str, int, int] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return str(path.resolve()), info.st_dev, info.st_ino


def _connect(path: Path, read_only: bool, wait: Wait) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to `path`, waiting (with backoff) while a process outside the lock file holds it."""
    delay = 0.02
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:
            if isinstance(exc, duckdb.IOException) and not _is_lock_error(exc):
                raise _damaged(path, exc) from None
            if not _is_lock_error(exc):
                raise HarnessError(f"{path}: cannot open the store ({_first_line(exc)})") from None
            delay = _backoff(wait, delay)


@contextmanager
def connect(path: Path, timeout_s: float | None = None, *, read_only: bool = False,
            wait: Wait | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to `path` for the `with` block (no turn taken, no schema check: `retrying` does those)."""
    con = _connect(Path(path), read_only, wait or Wait(Path(path), lock_timeout() if timeout_s is None else timeout_s))
    try:
        yield con
    finally:
        con.close()


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def _known_schema(path: Path, wait: Wait) -> schema.Schema | None:
    """The file's schema (looked at read-only, once per process and file); None when there is no file yet."""
    key = _identity(path)
    if key is None:
        return None
    if key not in _schemas:
        try:
            with connect(path, read_only=True, wait=wait) as con:
                found = schema.inspect(con, path)
        except duckdb.IOException as exc:
            raise _damaged(path, exc) from None
        _schemas[key] = found
    return _schemas[key]


def _damaged(path: Path, exc: Exception) -> HarnessError:
    return HarnessError(f"{path}: cannot read the store ({_first_line(exc)}); it is damaged or truncated, or "
                        "written by another DuckDB version: restore it from a backup or give another --db")


def _recheck(con: duckdb.DuckDBPyConnection, path: Path, known: schema.Schema) -> schema.Schema:
    applied = schema.versions(con, path)
    if applied != known.applied:
        known = schema.Schema(applied)
        key = _identity(path)
        if key is not None:
            _schemas[key] = known
    return known


def _upgrade(con: duckdb.DuckDBPyConnection, path: Path, known: schema.Schema | None) -> None:
    """Create or migrate the schema of a file this process writes to (once per process and file)."""
    from harness.store.migrations import migrate

    if known is not None and not known.missing():
        return
    with _migrate_lock:
        migrate(con)
        key = _identity(path)
        if key is not None:
            _schemas[key] = schema.Schema(frozenset(schema.known_versions()))


def in_transaction(con: duckdb.DuckDBPyConnection, fn: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    """fn(con) between BEGIN and COMMIT; rolled back (and re-raised) on any error. Both back-ends use it."""
    con.execute("BEGIN TRANSACTION")
    try:
        result = fn(con)
        con.execute("COMMIT")
        return result
    except Exception:
        try:
            con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # a failed COMMIT has rolled back already; keep its error (a conflict is retried)
        raise


@dataclass
class _Open:
    """The connection of the thread whose turn it is; kept for the next thread while the turn is kept."""

    con: duckdb.DuckDBPyConnection
    read_only: bool
    known: schema.Schema | None

    def close(self) -> None:
        self.con.close()


def _open(path: Path, create: bool, wait: Wait) -> _Open:
    """Check the file, look at its schema, connect; a writer creates or upgrades the schema."""
    schema.check_file(path, create)
    known = _known_schema(path, wait)
    if known is not None and known.empty and not create:
        raise HarnessError(f"{path} is an empty DuckDB file, not a harness store yet; a run fills it: "
                           f"harness run EXPERIMENT --db {path}")
    con = _connect(path, not create, wait)
    try:
        if known is not None and not known.empty:  # each time: a newer harness may have upgraded it since
            known = _recheck(con, path, known)
        if create:
            _upgrade(con, path, known)
    except BaseException:
        con.close()
        raise
    return _Open(con, not create, known)


def _attempt(fn: Callable, path: Path, create: bool, wait: Wait, lock: StoreLock, outer: bool):
    """One try in this thread's turn: the kept connection if it suits, else a new one; then the transaction."""
    if not outer:  # inside this thread's own transaction: the kept connection is in use, open another
        with connect(path, read_only=not create, wait=wait) as con:
            return in_transaction(con, fn)
    kept = lock.kept.get("connection")
    if kept is not None and kept.read_only != (not create):
        lock.kept.pop("connection").close()
        kept = None
    if kept is None:
        kept = lock.kept["connection"] = _open(path, create, wait)
    try:
        return in_transaction(kept.con, fn)
    except duckdb.CatalogException:
        if kept.known is not None and kept.known.missing() and not create:
            raise schema.older_error(path, kept.known) from None
        raise


def retrying(fn: Callable[[duckdb.DuckDBPyConnection], T], path: Path, timeout_s: float | None = None, *,
             create: bool = True) -> T:
    """Run fn(con) in one transaction, in turn (filelock.StoreLock); retried on DuckDB lock and conflict errors.

    timeout_s: the longest wait (None: HARNESS_DB_LOCK_TIMEOUT; FOREVER for a run's writes).
    create: a writer, which may create and migrate the file; else a reader (read-only, never creates).
    """
    path = Path(path)
    wait = Wait(path, lock_timeout() if timeout_s is None else timeout_s)
    lock = store_lock(path)
    if not lock.file.exists() and schema.check_file(path, create):
        _known_schema(path, wait)  # a file no harness has locked yet: look before leaving a lock file beside it
    delay = 0.02
    while True:
        try:
            with lock.turn(wait) as outer:
                return _attempt(fn, path, create, wait, lock, outer)
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise _damaged(path, exc) from None
            delay = _backoff(wait, delay)
        except duckdb.Error as exc:
            if not _is_lock_error(exc):
                raise
            delay = _backoff(wait, delay)


def _backoff(wait: Wait, delay: float) -> float:
    if wait.expired():
        raise wait.timed_out()
    wait.tick()
    time.sleep(min(delay, wait.slice()))
    return min(delay * 2, 0.5)
