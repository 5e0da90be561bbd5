"""Store housekeeping: `harness store maintain` and `harness store copy` (moving a file store up to a team store).

A copy writes the PostgreSQL tables of the team store in one transaction and the DuckLake tables in another
(a DuckDB transaction writes one attached database). When the second fails, the first is undone, so a
failed copy leaves the target as it was.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from harness.errors import HarnessError
from harness.store import Store, team
from harness.store.address import TeamAddress

SKIP = {"schema_version", "store_meta"}  # each store has its own
KEYS = {"runs": "run_id", "review_queues": "queue_id", "reviewers": "name", "gate_decisions": "id"}


@dataclass
class CopyReport:
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.rows.values())


def _tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.execute("SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database() "
                       "AND table_schema = 'main' ORDER BY table_name").fetchall()
    return [name for (name,) in rows if name not in SKIP]


def _read_all(con: duckdb.DuckDBPyConnection) -> dict[str, pa.Table]:
    return {name: con.execute(f"SELECT * FROM main.{name}").fetch_arrow_table() for name in _tables(con)}


def _clashes(con: duckdb.DuckDBPyConnection, source: dict[str, pa.Table]) -> list[str]:
    found = []
    for table, key in KEYS.items():
        if table not in source or source[table].num_rows == 0:
            continue
        values = source[table].column(key).to_pylist()
        rows = con.execute(f"SELECT {key} FROM {table} WHERE {key} IN (SELECT unnest(?)) LIMIT 3", [values])
        found += [f"{table}.{key}={value!r}" for (value,) in rows.fetchall()]
    return found


def _insert(con: duckdb.DuckDBPyConnection, tables: dict[str, pa.Table]) -> None:
    for name, rows in tables.items():
        if rows.num_rows:
            con.register("_copied", rows)
            try:
                con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM _copied")
            finally:
                con.unregister("_copied")


def _undo(con: duckdb.DuckDBPyConnection, tables: dict[str, pa.Table]) -> None:
    for name, rows in tables.items():
        key = KEYS.get(name) or next((k for k in ("queue_id", "name") if k in rows.column_names), None)
        if rows.num_rows and key:
            con.execute(f"DELETE FROM {name} WHERE {key} IN (SELECT unnest(?))", [rows.column(key).to_pylist()])


def copy(source: Store, target: Store) -> CopyReport:
    """Every table of `source` (runs, results, reviews, gate decisions) into `target`; refuses clashing ids."""
    if source.path == target.path:
        raise HarnessError(f"store copy: --from and --to are the same store ({source.path}); give another --to")
    tables = source.transaction(_read_all)

    def check(con: duckdb.DuckDBPyConnection) -> list[str]:
        known = set(_tables(con)) | ({name for name in team.PG_TABLES} if isinstance(target.path, TeamAddress)
                                     else set())
        unknown = sorted(set(tables) - known)
        if unknown:
            raise HarnessError(f"store copy: {target.path} has no table {', '.join(unknown)}; upgrade harness or "
                               "copy into a store of the same schema")
        return _clashes(con, tables)

    clashes = target.transaction(check)
    if clashes:
        raise HarnessError(f"store copy: {target.path} already has {', '.join(clashes)}; nothing was copied "
                           "(copy into a new store, or remove those runs there first)")
    keyed = {n: t for n, t in tables.items() if isinstance(target.path, TeamAddress) and n in team.PG_TABLES}
    bulk = {n: t for n, t in tables.items() if n not in keyed}
    if keyed:
        target.transaction(lambda con: _insert(con, keyed))
    try:
        target.transaction(lambda con: _insert(con, bulk))
    except BaseException:
        if keyed:
            target.transaction(lambda con: _undo(con, keyed))
        raise
    return CopyReport({name: rows.num_rows for name, rows in tables.items()})


def maintain(store: Store) -> list[str]:
    """Housekeeping; returns what was done. A team store: flush inlined rows to Parquet, merge small files,
    expire snapshots older than a week and delete the files nobody reads any more."""
    if not isinstance(store.path, TeamAddress):
        store.transaction(lambda con: None)  # a writer: checks the file and brings its schema up to date
        return ["nothing to do: a DuckDB file merges and checkpoints itself"]
    steps = [("flushed inlined data", "CALL ducklake_flush_inlined_data('lake')"),
             ("merged adjacent files", "CALL ducklake_merge_adjacent_files('lake')"),
             ("expired snapshots older than 7 days",
              "CALL ducklake_expire_snapshots('lake', older_than => now() - INTERVAL 7 DAY)"),
             ("deleted files no snapshot reads", "CALL ducklake_cleanup_old_files('lake', cleanup_all => true)")]
    team.calls(store.path, [sql for _, sql in steps])
    return [name for name, _ in steps]

