"""SQL for reuse by content (harness/reuse/): find a stored result with the same fingerprint and copy it into
another run, one transaction per item, so every run stays complete on its own (`reused_from` names the run
that computed it)."""

from __future__ import annotations

import duckdb

from harness.store.results import ITEM_KEY

RESULT_TABLES = ("predictions", "example_stats", "scores")


def item_source(con: duckdb.DuckDBPyConnection, fingerprint: str, exclude_run: str) -> str | None:
    """The newest run (not `exclude_run`) holding a done item with this fingerprint."""
    row = con.execute(
        "SELECT run_id FROM items WHERE fingerprint = ? AND status = 'done' AND run_id <> ? "
        "ORDER BY finished_at DESC LIMIT 1", [fingerprint, exclude_run]).fetchone()
    return str(row[0]) if row else None


def copy_item(con: duckdb.DuckDBPyConnection, source: str, target: str, key: tuple[str, str, str]) -> None:
    """The item (candidate, variant, suite) of run `source` copied into run `target`, replacing what
    `target` had for it; the candidate's row too when `target` has none."""
    candidate, variant, suite = key
    where = [target, candidate, variant, suite]
    for table in (*RESULT_TABLES, "items"):
        con.execute(f"DELETE FROM {table} WHERE {ITEM_KEY}", where)
    for table in RESULT_TABLES:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * REPLACE (?::VARCHAR AS run_id) FROM {table} "
                    f"WHERE {ITEM_KEY}", [target, source, candidate, variant, suite])
    con.execute("INSERT INTO items BY NAME SELECT * REPLACE (?::VARCHAR AS run_id, "
                "coalesce(reused_from, run_id) AS reused_from, now()::TIMESTAMP AS finished_at) "
                f"FROM items WHERE {ITEM_KEY}", [target, source, candidate, variant, suite])
    copy_candidate(con, source, target, candidate)


def copy_candidate(con: duckdb.DuckDBPyConnection, source: str, target: str, candidate: str) -> None:
    have = con.execute("SELECT count(*) FROM candidates WHERE run_id = ? AND candidate = ?",
                       [target, candidate]).fetchone()
    if have and have[0]:
        return
    con.execute("INSERT INTO candidates BY NAME SELECT * REPLACE (?::VARCHAR AS run_id) FROM candidates "
                "WHERE run_id = ? AND candidate = ?", [target, source, candidate])


def adapter_sources(con: duckdb.DuckDBPyConnection, recipe: str, exclude_run: str) -> list[dict]:
    """Adapters trained (or reused) with this recipe in other runs, newest first, as rows."""
    frame = con.execute("SELECT * FROM adapters WHERE recipe_fingerprint = ? AND run_id <> ? "
                        "ORDER BY run_id DESC", [recipe, exclude_run]).df()
    return frame.to_dict("records")


def copy_adapter(con: duckdb.DuckDBPyConnection, source: str, target: str, candidate: str, suite: str) -> None:
    """The adapter row and training log of (candidate, suite) copied from run `source` into run `target`
    (the adapter's files stay where they are; `reused_from` names the run that trained it)."""
    key = [target, candidate, suite]
    for table in ("adapters", "training_log"):
        con.execute(f"DELETE FROM {table} WHERE run_id = ? AND candidate = ? AND suite = ?", key)
    src = [target, source, candidate, suite]
    con.execute("INSERT INTO adapters BY NAME SELECT * REPLACE (?::VARCHAR AS run_id, "
                "coalesce(reused_from, run_id) AS reused_from) FROM adapters "
                "WHERE run_id = ? AND candidate = ? AND suite = ?", src)
    con.execute("INSERT INTO training_log BY NAME SELECT * REPLACE (?::VARCHAR AS run_id) FROM training_log "
                "WHERE run_id = ? AND candidate = ? AND suite = ?", src)
    copy_candidate(con, source, target, candidate)
