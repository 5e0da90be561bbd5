"""Short-lived DuckDB connections with retry and backoff while another process holds the file."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from harness.errors import HarnessError

DEFAULT_DB = "harness.duckdb"
LOCK_TIMEOUT_S = float(os.environ.get("HARNESS_DB_LOCK_TIMEOUT", "60"))
_migrated: set[str] = set()
_migrate_lock = threading.Lock()


def default_path(explicit: str | os.PathLike | None = None) -> Path:
    return Path(explicit or os.environ.get("HARNESS_DB") or DEFAULT_DB)


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text or "conflict" in text or "being used by another process" in text


@contextmanager
def connect(path: Path, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the store for one short transaction; wait (with backoff) while another process holds it."""
    from harness.store.migrations import migrate

    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while True:
        try:
            con = duckdb.connect(str(path))
            break
        except duckdb.Error as exc:
            if not _is_lock_error(exc) or time.monotonic() > deadline:
                if _is_lock_error(exc):
                    raise HarnessError(
                        f"{path}: the store stayed locked by another process for {timeout_s:.0f}s; "
                        "wait for it to finish or use another --db"
                    ) from None
                raise HarnessError(f"{path}: cannot open the store ({str(exc).splitlines()[0]})") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
    try:
        key = str(Path(path).resolve())
        if key not in _migrated:
            with _migrate_lock:
                migrate(con)
                _migrated.add(key)
        yield con
    finally:
        con.close()


def retrying(fn, path: Path, timeout_s: float = LOCK_TIMEOUT_S):
    """Run fn(con) in one transaction, retrying on lock and write-conflict errors."""
    deadline = time.monotonic() + timeout_s
    delay = 0.02
    while True:
        try:
            with connect(path, timeout_s) as con:
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
        except duckdb.Error as exc:
            if not _is_lock_error(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)
