"""SQL of human review on one connection: accounts, login throttling, queues, items and grades.

Used only inside harness/store/: harness/store/reviews.py (and claims.py) call these in one short
transaction each, composing several where they must be one. Grades live in their own tables: nothing
here writes to the machine-score tables.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

import duckdb
import pandas as pd

from harness.records.review import Account, Candidate, Grade, Queue, ReviewItem
from harness.records.rubric import Rubric
from harness.store.results import changed

ITEM_COLUMNS = [f.name for f in dataclasses.fields(ReviewItem)]
_OPEN_TO = """(NOT EXISTS (SELECT 1 FROM review_queue_reviewers r WHERE r.queue_id = q.queue_id)
               OR EXISTS (SELECT 1 FROM review_queue_reviewers r WHERE r.queue_id = q.queue_id AND r.reviewer = ?))"""


# accounts ---------------------------------------------------------------------------------------------
def insert_account(con: duckdb.DuckDBPyConnection, name: str, role: str, salt: bytes, digest: bytes) -> bool:
    """A new account whose password is one-time: it must be changed at the first login."""
    return changed(con.execute(
        "INSERT INTO reviewers (name, role, salt, password_hash, created_at, password_set_at, last_login_at, "
        "must_change_password) VALUES (?, ?, ?, ?, now(), now(), NULL, true) ON CONFLICT DO NOTHING",
        [name, role, salt, digest]))


def set_password(con: duckdb.DuckDBPyConnection, name: str, salt: bytes, digest: bytes, one_time: bool) -> bool:
    """Replace a password; every session of the account ends with it."""
    row = changed(con.execute("UPDATE reviewers SET salt = ?, password_hash = ?, password_set_at = now(), "
                              "must_change_password = ? WHERE name = ?", [salt, digest, one_time, name]))
    con.execute("DELETE FROM review_sessions WHERE name = ?", [name])
    return bool(row)


def credentials(con: duckdb.DuckDBPyConnection, name: str) -> tuple[str, bytes, bytes, bool] | None:
    """(role, salt, password hash, must change the password) of an account, or None."""
    row = con.execute("SELECT role, salt, password_hash, coalesce(must_change_password, false) FROM reviewers "
                      "WHERE name = ?", [name]).fetchone()
    return (row[0], bytes(row[1]), bytes(row[2]), bool(row[3])) if row else None


def accounts(con: duckdb.DuckDBPyConnection) -> list[Account]:
    rows = con.execute("SELECT name, role FROM reviewers ORDER BY name").fetchall()
    return [Account(name, role) for name, role in rows]


def count_accounts(con: duckdb.DuckDBPyConnection) -> int:
    return int(con.execute("SELECT count(*) FROM reviewers").fetchone()[0])


def delete_account(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    con.execute("DELETE FROM review_queue_reviewers WHERE reviewer = ?", [name])
    con.execute("DELETE FROM review_sessions WHERE name = ?", [name])
    return changed(con.execute("DELETE FROM reviewers WHERE name = ?", [name]))


# login throttling ------------------------------------------------------------------------------------
def throttle(con: duckdb.DuckDBPyConnection, name: str) -> tuple[int, datetime | None]:
    row = con.execute("SELECT failures, locked_until FROM login_throttle WHERE name = ?", [name]).fetchone()
    return (int(row[0]), row[1]) if row else (0, None)


def reserve_attempt(con: duckdb.DuckDBPyConnection, name: str, now: datetime,
                    lock_for) -> tuple[bool, datetime | None]:
    """Count a login attempt as a failure BEFORE its password is checked, in one transaction.

    (allowed, locked_until): refused while the name is locked. Because the count goes up first, parallel
    guesses each see the ones before them, so at most the free attempts are ever checked at once; a success
    clears the count (record_success). `lock_for(failures)` is a timedelta.
    """
    failures, locked_until = throttle(con, name)
    if locked_until is not None and locked_until > now:
        return False, locked_until
    failures += 1
    locked_until = now + lock_for(failures)
    con.execute("INSERT INTO login_throttle VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                "failures = excluded.failures, last_failure_at = excluded.last_failure_at, "
                "locked_until = excluded.locked_until", [name, failures, now, locked_until])
    return True, locked_until if locked_until > now else None


def record_success(con: duckdb.DuckDBPyConnection, name: str, now: datetime) -> None:
    con.execute("DELETE FROM login_throttle WHERE name = ?", [name])
    con.execute("UPDATE reviewers SET last_login_at = ? WHERE name = ?", [now, name])


# sessions ---------------------------------------------------------------------------------------------
def insert_session(con: duckdb.DuckDBPyConnection, token_hash: str, name: str, now: datetime,
                   expires_at: datetime) -> None:
    con.execute("DELETE FROM review_sessions WHERE expires_at < ?", [now])
    con.execute("INSERT INTO review_sessions VALUES (?, ?, ?, ?)", [token_hash, name, now, expires_at])


def session_account(con: duckdb.DuckDBPyConnection, token_hash: str, now: datetime) -> Account | None:
    """The account a live session belongs to (None once it expired, ended, or the account went)."""
    row = con.execute("SELECT r.name, r.role FROM review_sessions s JOIN reviewers r USING (name) "
                      "WHERE s.token_hash = ? AND s.expires_at > ?", [token_hash, now]).fetchone()
    return Account(row[0], row[1]) if row else None


def delete_session(con: duckdb.DuckDBPyConnection, token_hash: str) -> None:
    con.execute("DELETE FROM review_sessions WHERE token_hash = ?", [token_hash])


def count_sessions(con: duckdb.DuckDBPyConnection, name: str) -> int:
    return int(con.execute("SELECT count(*) FROM review_sessions WHERE name = ?", [name]).fetchone()[0])


def app_secret(con: duckdb.DuckDBPyConnection, name: str, new_value: bytes) -> bytes:
    """The store's secret `name`, created with `new_value` the first time it is asked for."""
    con.execute("INSERT INTO app_secrets VALUES (?, ?, now()) ON CONFLICT DO NOTHING", [name, new_value])
    return bytes(con.execute("SELECT value FROM app_secrets WHERE name = ?", [name]).fetchone()[0])


# queues -------------------------------------------------------------------------------------------------
def insert_queue(con: duckdb.DuckDBPyConnection, queue: Queue, items: list[ReviewItem]) -> None:
    candidates = json.dumps([dataclasses.asdict(c) for c in queue.candidates])
    con.execute("INSERT INTO review_queues VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
        queue.queue_id, queue.run_id, queue.suite, queue.mode, queue.strategy, queue.sample_n, queue.overlap,
        queue.blind, queue.rubric.to_json(), candidates, queue.seed, queue.created_by, queue.created_at])
    set_queue_reviewers(con, queue.queue_id, queue.reviewers)
    frame = pd.DataFrame([dataclasses.asdict(i) for i in items], columns=ITEM_COLUMNS)
    con.register("_review_items", frame)
    try:
        con.execute("INSERT INTO review_items BY NAME SELECT * FROM _review_items")
    finally:
        con.unregister("_review_items")


def set_queue_reviewers(con: duckdb.DuckDBPyConnection, queue_id: str, reviewers: list[str]) -> None:
    con.execute("DELETE FROM review_queue_reviewers WHERE queue_id = ?", [queue_id])
    for name in reviewers:
        con.execute("INSERT INTO review_queue_reviewers VALUES (?, ?)", [queue_id, name])


def queue_exists(con: duckdb.DuckDBPyConnection, queue_id: str) -> bool:
    return con.execute("SELECT 1 FROM review_queues WHERE queue_id = ?", [queue_id]).fetchone() is not None


def _queue(row: dict, reviewers: list[str]) -> Queue:
    return Queue(
        queue_id=row["queue_id"], run_id=row["run_id"], suite=row["suite"], mode=row["mode"],
        strategy=row["strategy"], sample_n=int(row["sample_n"]), overlap=int(row["overlap"]),
        blind=bool(row["blind"]), rubric=Rubric.from_json(row["rubric_json"]),
        candidates=[Candidate(**c) for c in json.loads(row["candidates_json"])], reviewers=reviewers,
        seed=int(row["seed"]), created_by=row["created_by"], created_at=row["created_at"])


def queues(con: duckdb.DuckDBPyConnection, reviewer: str | None = None) -> list[Queue]:
    """Every queue (reviewer None) or the queues open to one reviewer, newest first."""
    where, params = ("WHERE " + _OPEN_TO, [reviewer]) if reviewer is not None else ("", [])
    rows = con.execute(f"SELECT * FROM review_queues q {where} ORDER BY created_at DESC, queue_id", params).df()
    assigned = con.execute("SELECT queue_id, reviewer FROM review_queue_reviewers ORDER BY reviewer").fetchall()
    by_queue: dict[str, list[str]] = {}
    for queue_id, name in assigned:
        by_queue.setdefault(queue_id, []).append(name)
    return [_queue(row, by_queue.get(row["queue_id"], [])) for row in rows.to_dict("records")]


def items(con: duckdb.DuckDBPyConnection, queue_id: str) -> list[ReviewItem]:
    rows = con.execute("SELECT * FROM review_items WHERE queue_id = ? ORDER BY position", [queue_id]).df()
    return [_item(row) for row in rows.to_dict("records")]


def _item(row: dict) -> ReviewItem:
    """A row of review_items (pandas gives NaN for NULL and numpy scalars) as a ReviewItem."""
    values = {k: None if not isinstance(row[k], str) and pd.isna(row[k]) else row[k] for k in ITEM_COLUMNS}
    values["position"], values["swapped"] = int(values["position"]), bool(values["swapped"])
    values["priority"] = float(values["priority"] or 0.0)
    return ReviewItem(**values)


def fetch_items(cursor: duckdb.DuckDBPyConnection) -> list[ReviewItem]:
    """The rows of a query over review_items (extra columns are ignored) as ReviewItems."""
    names = [d[0] for d in cursor.description]
    return [_item(dict(zip(names, row, strict=True))) for row in cursor.fetchall()]


def item(con: duckdb.DuckDBPyConnection, queue_id: str, item_id: str) -> ReviewItem | None:
    found = fetch_items(con.execute("SELECT * FROM review_items WHERE queue_id = ? AND item_id = ?",
                                    [queue_id, item_id]))
    return found[0] if found else None


# grades --------------------------------------------------------------------------------------------------
def insert_grade(con: duckdb.DuckDBPyConnection, grade: Grade) -> None:
    """Add a grade the caller found this reviewer had not given (claim_sql.store_grade, in the same
    transaction). A plain INSERT, cheaper than ON CONFLICT: should the same grade be committed by another
    transaction at once, this one fails with a duplicate key and claims.store_grade runs it again."""
    con.execute("INSERT INTO review_grades VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [grade.queue_id, grade.item_id, grade.reviewer, json.dumps(grade.answers, sort_keys=True),
                 grade.answers.get("overall"), grade.comment, grade.elapsed_s, grade.created_at])


def delete_skip(con: duckdb.DuckDBPyConnection, queue_id: str, item_id: str, reviewer: str) -> None:
    con.execute("DELETE FROM review_skips WHERE queue_id = ? AND item_id = ? AND reviewer = ?",
                [queue_id, item_id, reviewer])


def insert_skip(con: duckdb.DuckDBPyConnection, queue_id: str, item_id: str, reviewer: str) -> None:
    con.execute("INSERT INTO review_skips VALUES (?, ?, ?, now()) ON CONFLICT DO NOTHING",
                [queue_id, item_id, reviewer])


def delete_last_grade(con: duckdb.DuckDBPyConnection, queue_id: str, reviewer: str) -> str | None:
    """Remove this reviewer's most recent grade in the queue; the item id, or None when there is none."""
    row = con.execute("SELECT item_id FROM review_grades WHERE queue_id = ? AND reviewer = ? "
                      "ORDER BY created_at DESC, item_id DESC LIMIT 1", [queue_id, reviewer]).fetchone()
    if row is None:
        return None
    con.execute("DELETE FROM review_grades WHERE queue_id = ? AND reviewer = ? AND item_id = ?",
                [queue_id, reviewer, row[0]])
    return str(row[0])


def count_grades(con: duckdb.DuckDBPyConnection, queue_id: str, reviewer: str) -> int:
    return int(con.execute("SELECT count(*) FROM review_grades WHERE queue_id = ? AND reviewer = ?",
                           [queue_id, reviewer]).fetchone()[0])


def own_grade(con: duckdb.DuckDBPyConnection, queue_id: str, item_id: str, reviewer: str) -> Grade | None:
    row = con.execute("SELECT answers_json, comment, elapsed_s, created_at FROM review_grades "
                      "WHERE queue_id = ? AND item_id = ? AND reviewer = ?", [queue_id, item_id, reviewer]).fetchone()
    if row is None:
        return None
    return Grade(queue_id, item_id, reviewer, json.loads(row[0]), row[1], row[2], row[3])


def grades_frame(con: duckdb.DuckDBPyConnection, queue_id: str | None = None) -> pd.DataFrame:
    """Every grade joined with its item (admin use: export and analysis)."""
    where, params = ("WHERE g.queue_id = ?", [queue_id]) if queue_id else ("", [])
    return con.execute(f"""
        SELECT g.queue_id, g.item_id, i.position, i.example_id, g.reviewer, g.overall, g.answers_json, g.comment,
               g.elapsed_s, g.created_at, i.candidate_a, i.variant_a, i.candidate_b, i.variant_b, i.swapped,
               q.run_id, q.suite, q.mode
        FROM review_grades g
        JOIN review_items i USING (queue_id, item_id)
        JOIN review_queues q USING (queue_id)
        {where} ORDER BY g.queue_id, i.position, g.reviewer""", params).df()


def progress_frame(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per queue: items, items with at least `overlap` grades, grades given."""
    return con.execute("""
        WITH counts AS (
            SELECT i.queue_id, i.item_id, count(g.reviewer) AS n
            FROM review_items i LEFT JOIN review_grades g USING (queue_id, item_id)
            GROUP BY ALL)
        SELECT q.queue_id, q.run_id, q.suite, q.mode, q.overlap, count(c.item_id) AS items,
               count_if(c.n >= q.overlap)::BIGINT AS complete, coalesce(sum(c.n), 0)::BIGINT AS grades
        FROM review_queues q LEFT JOIN counts c USING (queue_id)
        GROUP BY ALL ORDER BY q.queue_id""").df()


def reviewer_progress_frame(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Per queue and reviewer: grades given and items skipped."""
    return con.execute("""
        SELECT queue_id, reviewer, count(*) FILTER (WHERE kind = 'grade') AS graded,
               count(*) FILTER (WHERE kind = 'skip') AS skipped, max(t) AS last_activity
        FROM (SELECT queue_id, reviewer, 'grade' AS kind, created_at AS t FROM review_grades
              UNION ALL SELECT queue_id, reviewer, 'skip', created_at FROM review_skips)
        GROUP BY ALL ORDER BY queue_id, reviewer""").df()


# run data the queues are built from ---------------------------------------------------------------------
def predictions(con: duckdb.DuckDBPyConnection, run_id: str, suite: str) -> pd.DataFrame:
    return con.execute("""SELECT candidate, variant, example_id, input, reference, output, error
                          FROM predictions WHERE run_id = ? AND suite = ?
                          ORDER BY candidate, variant, example_id""", [run_id, suite]).df()


def example_stats(con: duckdb.DuckDBPyConnection, run_id: str, suite: str) -> pd.DataFrame:
    return con.execute("""SELECT candidate, variant, example_id, metric, options_json, stat_names, stats
                          FROM example_stats WHERE run_id = ? AND suite = ?""", [run_id, suite]).df()
