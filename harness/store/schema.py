"""What a store file is, decided before anything is written to it.

A harness store is a DuckDB file whose `store_meta` says `application = harness` (migration 6), or, for a
store made before that, one with the harness `schema_version` table beside its `runs` table. Everything
else is refused with one line and left byte for byte as it was: a missing file (for reading), a file that
is not DuckDB (SQLite, text, an empty or truncated file), a DuckDB file of another application, and a
store written by a newer harness (schema numbers this code does not know).
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

import duckdb

from harness.errors import HarnessError
from harness.store.migrations import MIGRATIONS

SQLITE_MAGIC = b"SQLite format 3\x00"
DUCKDB_MAGIC = b"DUCK"  # bytes 8-11 of every DuckDB file, after the header checksum
DUCKDB_HEADERS = 12288  # a DuckDB file starts with three 4 KiB headers
KEEP = "nothing was changed; give another --db (or HARNESS_DB)"


@dataclass(frozen=True)
class Schema:
    """The migrations a store file has; `empty`: a DuckDB file with no tables at all (a writer fills it)."""

    applied: frozenset[int]
    empty: bool = False

    def missing(self) -> set[int]:
        return known_versions() - self.applied


def known_versions() -> set[int]:
    return {number for number, _ in MIGRATIONS}


def check_file(path: Path, create: bool) -> bool:
    """True when `path` exists and starts like a DuckDB file; False when it is missing and may be created."""
    try:
        info = path.stat()
    except FileNotFoundError:
        if create and not path.parent.is_dir():
            raise HarnessError(f"{path}: the folder {path.parent} does not exist; "
                               "create it or give another --db") from None
        if create:
            return False
        raise HarnessError(f"the store {path} does not exist; check --db (or HARNESS_DB), or create it by "
                           f"running an experiment: harness run EXPERIMENT --db {path}") from None
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read the store ({exc.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise HarnessError(f"{path} is a folder, not a store file; give a file path to --db")
    try:
        with open(path, "rb") as handle:
            head = handle.read(16)
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read the store ({exc.strerror})") from None
    _check_header(path, head, info.st_size)
    return True


def _check_header(path: Path, head: bytes, size: int) -> None:
    if size == 0:
        raise HarnessError(f"{path} is empty (0 bytes), not a DuckDB store; delete it or give another --db")
    if head.startswith(SQLITE_MAGIC):
        raise HarnessError(f"{path} is a SQLite database, not a harness store (a DuckDB file); {KEEP}")
    if head[8:12] != DUCKDB_MAGIC:
        raise HarnessError(f"{path} is not a DuckDB file (it does not start with a DuckDB header); {KEEP}")
    if size < DUCKDB_HEADERS:
        raise HarnessError(f"{path} is a truncated DuckDB file ({size} bytes); restore it from a backup or give "
                           "another --db")


def inspect(con: duckdb.DuckDBPyConnection, path: Path) -> Schema:
    """The schema of an open store file; raises HarnessError for another application's file or a newer one."""
    tables = con.execute("SELECT table_schema, table_name FROM information_schema.tables "
                         "WHERE table_catalog = current_database()").fetchall()
    if not tables:
        return Schema(frozenset(), empty=True)
    names = {name for schema, name in tables if schema == "main"}
    if not _is_harness(con, names):
        shown = ", ".join(sorted(f"{s}.{n}" if s != "main" else n for s, n in tables)[:5])
        more = f" and {len(tables) - 5} more" if len(tables) > 5 else ""
        raise HarnessError(f"{path} is a DuckDB file of another application (tables {shown}{more}; no harness "
                           f"schema marker), not a harness store; {KEEP}")
    return Schema(versions(con, path))


def versions(con: duckdb.DuckDBPyConnection, path: Path) -> frozenset[int]:
    """The migrations applied to a harness store; raises HarnessError when a newer harness wrote it."""
    applied = frozenset(int(v) for (v,) in con.execute("SELECT DISTINCT version FROM main.schema_version").fetchall())
    known = known_versions()
    if applied - known:
        raise HarnessError(f"{path} has store schema {max(applied)}, newer than this harness (schema {max(known)}); "
                           "upgrade harness to read or write it (nothing was changed)")
    return applied


def _is_harness(con: duckdb.DuckDBPyConnection, names: set[str]) -> bool:
    if "store_meta" in names:
        row = con.execute("SELECT value FROM main.store_meta WHERE key = 'application'").fetchone()
        return row is not None and row[0] == "harness"
    if not {"schema_version", "runs"} <= names:
        return False
    columns = [name for (name,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_catalog = current_database() "
        "AND table_schema = 'main' AND table_name = 'schema_version' ORDER BY ordinal_position").fetchall()]
    return columns == ["version", "applied_at"]


def older_error(path: Path, schema: Schema) -> HarnessError:
    found = max(schema.applied, default=0)
    return HarnessError(f"{path} has store schema {found}, older than this harness (schema {max(known_versions())}), "
                        "and reading commands never upgrade it; run a writing command on it first (for example "
                        f"`harness run ... --db {path}`)")
