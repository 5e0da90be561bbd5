"""SQL of review assignment on one connection (used by harness/store/claims.py): claims with leases on a
queue's items, and grades that keep to the overlap.

An item has `overlap` slots. A grade takes one for good; a claim takes one while it is live (until its
`expires_at`). A reviewer holds at most one claim per queue (the primary key), and a claim that lapses frees
its slot by itself: nothing has to clean it up.

Exactness under concurrency: every transaction that takes a slot first bumps the item's `slot_turns`. DuckDB
gives each transaction a snapshot; two that both read "one slot left" and insert *different* rows (two
claims, two grades) would both commit. Two that update the *same row* conflict instead: the second fails
with "Conflict on update" and Store.transaction runs it again on a fresh snapshot, where it sees the first.
So, within one process (threads share one database instance) and across processes (the file lock lets one
in at a time), an item never has more than `overlap` grades and live claims together. Freeing a slot
(a skip, a lapse) needs no turn: a transaction that misses it only sees fewer free slots than there are.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import duckdb

from harness.errors import HarnessError
from harness.records.review import Grade, ReviewItem, SubmitOutcome
from harness.store.results import changed
from harness.store.review_sql import delete_skip, fetch_items, insert_grade

_OPEN = """
    WITH graded AS (
        SELECT item_id, count(*) AS n, bool_or(reviewer = $reviewer) AS mine
        FROM review_grades WHERE queue_id = $queue GROUP BY item_id),
    held AS (
        SELECT item_id, count(*) FILTER (WHERE reviewer <> $reviewer) AS n, bool_or(reviewer = $reviewer) AS mine
        FROM review_claims WHERE queue_id = $queue AND expires_at > $now GROUP BY item_id),
    open AS (
        SELECT i.*, s.item_id IS NOT NULL AS skipped, coalesce(c.mine, false) AS mine
        FROM review_items i
        LEFT JOIN graded g ON g.item_id = i.item_id
        LEFT JOIN held c ON c.item_id = i.item_id
        LEFT JOIN (SELECT item_id FROM review_skips WHERE queue_id = $queue AND reviewer = $reviewer) s
               ON s.item_id = i.item_id
        WHERE i.queue_id = $queue AND NOT coalesce(g.mine, false)
          AND (coalesce(c.mine, false) OR coalesce(g.n, 0) + coalesce(c.n, 0) < $overlap))"""  # open to $reviewer


@dataclass(frozen=True)
class Slots:
    """One item as one reviewer finds it: graded by them, claimed by them (live), slots others take, and
    whether they have a claim row on it (live or lapsed) or a skip of it, which a grade removes."""

    graded: bool
    holds: bool
    taken: int  # grades plus other reviewers' live claims
    claimed: bool = False
    skipped: bool = False


def _params(queue_id: str, reviewer: str, overlap: int, now: datetime) -> dict:
    return {"queue": queue_id, "reviewer": reviewer, "overlap": overlap, "now": now}


def open_items(con: duckdb.DuckDBPyConnection, queue_id: str, reviewer: str, overlap: int, now: datetime,
               last: str | None, prefer: str | None, limit: int) -> list[ReviewItem]:
    """The first `limit` items the reviewer may be given now, in order: the one they hold a live claim on,
    `prefer`, then unskipped ones by position, then those they skipped, `last` (just skipped) at the end."""
    sql = f"""{_OPEN} SELECT * FROM open
              ORDER BY NOT mine, item_id <> $prefer, item_id = $last, skipped, position LIMIT $limit"""
    params = {**_params(queue_id, reviewer, overlap, now), "prefer": prefer or "", "last": last or "",
              "limit": limit}
    return fetch_items(con.execute(sql, params))


def open_counts(con: duckdb.DuckDBPyConnection, queue_id: str, reviewer: str, overlap: int,
                now: datetime) -> tuple[int, int]:
    """(items the reviewer may be given now, their own claim included; how many of those they skipped)."""
    sql = f"{_OPEN} SELECT count(*), count(*) FILTER (WHERE skipped) FROM open"
    row = con.execute(sql, _params(queue_id, reviewer, overlap, now)).fetchone()
    return int(row[0]), int(row[1])


def _take_turn(con: duckdb.DuckDBPyConnection, queue_id: str, item_id: str) -> bool:
    """Write the item's row, so that a concurrent slot-taker of the same item conflicts; False: no such item."""
    return changed(con.execute("UPDATE review_items SET slot_turns = coalesce(slot_turns, 0) + 1 "
                               "WHERE queue_id = ? AND item_id = ?", [queue_id, item_id]))


def _slots(con: duckdb.DuckDBPyConnection, queue_id: str, item_id: str, reviewer: str, now: datetime) -> Slots:
    row = con.execute("""
        SELECT count(*) FILTER (WHERE kind = 'g' AND reviewer = $reviewer) > 0,
               count(*) FILTER (WHERE kind = 'c' AND reviewer = $reviewer AND expires_at > $now) > 0,
               count(*) FILTER (WHERE kind = 'g' OR (kind = 'c' AND reviewer <> $reviewer AND expires_at > $now)),
               count(*) FILTER (WHERE kind = 'c' AND reviewer = $reviewer) > 0,
               count(*) FILTER (WHERE kind = 's') > 0
        FROM (SELECT 'g' AS kind, reviewer, NULL::TIMESTAMP AS expires_at FROM review_grades
              WHERE queue_id = $queue AND item_id = $item
              UNION ALL SELECT 'c', reviewer, expires_at FROM review_claims WHERE queue_id = $queue AND item_id = $item
              UNION ALL SELECT 's', reviewer, NULL FROM review_skips
              WHERE queue_id = $queue AND item_id = $item AND reviewer = $reviewer)""",
                      {"queue": queue_id, "item": item_id, "reviewer": reviewer, "now": now}).fetchone()
    return Slots(bool(row[0]), bool(row[1]), int(row[2]), bool(row[3]), bool(row[4]))


def hold(con: duckdb.DuckDBPyConnection, queue_id: str, item_id: str, reviewer: str, overlap: int, now: datetime,
         expires_at: datetime) -> bool:
    """Claim a slot of the item for the reviewer until `expires_at`, or renew their live claim on it; it
    replaces any other claim of theirs in the queue. False when the item has no slot for them."""
    if not _take_turn(con, queue_id, item_id):
        return False
    slots = _slots(con, queue_id, item_id, reviewer, now)
    if slots.graded or not (slots.holds or slots.taken < overlap):
        return False
    con.execute("""INSERT INTO review_claims VALUES (?, ?, ?, ?, ?) ON CONFLICT (queue_id, reviewer) DO UPDATE
                   SET item_id = excluded.item_id, claimed_at = excluded.claimed_at,
                       expires_at = excluded.expires_at""",
                [queue_id, reviewer, item_id, now, expires_at])
    return True


def release(con: duckdb.DuckDBPyConnection, queue_id: str, reviewer: str, item_id: str) -> None:
    """Give the reviewer's claim on this item (live or lapsed) back to the pool."""
    con.execute("DELETE FROM review_claims WHERE queue_id = ? AND reviewer = ? AND item_id = ?",
                [queue_id, reviewer, item_id])


def store_grade(con: duckdb.DuckDBPyConnection, grade: Grade, overlap: int, now: datetime) -> SubmitOutcome:
    """Store a grade if the reviewer holds a live claim on the item or a slot is still free ("stored");
    "duplicate" if they graded it already (the first grade stays); "full" when every slot is taken. The
    reviewer's skip of the item and their claim on it go with the grade (only statements that have a row to
    delete are run). team_direct.py does the same as one PostgreSQL function."""
    if not _take_turn(con, grade.queue_id, grade.item_id):
        raise HarnessError(f"item {grade.item_id} is not in queue {grade.queue_id}")
    slots = _slots(con, grade.queue_id, grade.item_id, grade.reviewer, now)
    if slots.graded:
        return "duplicate"
    if not slots.holds and slots.taken >= overlap:
        return "full"
    insert_grade(con, grade)
    if slots.skipped:
        delete_skip(con, grade.queue_id, grade.item_id, grade.reviewer)
    if slots.claimed:
        release(con, grade.queue_id, grade.reviewer, grade.item_id)
    return "stored"


# many grades at once (claims.store_grade on a file: group_commit.Together) ------------------------------
GradeRequest = tuple[Grade, int, Callable[[], datetime]]  # the grade, the queue's overlap, the lease clock


def store_grades(con: duckdb.DuckDBPyConnection, requests: list[GradeRequest]) -> list[str]:
    """store_grade for each request in order, as if one after another, in five statements for all of them:
    "stored", "duplicate", "full", or "missing" (no such item in the queue; the caller raises)."""
    keys = sorted({(g.queue_id, g.item_id) for g, _, _ in requests})
    pairs = {"queues": [q for q, _ in keys], "items": [i for _, i in keys]}
    con.execute("""UPDATE review_items SET slot_turns = coalesce(slot_turns, 0) + 1
                   FROM (SELECT unnest($queues::VARCHAR[]) AS q, unnest($items::VARCHAR[]) AS i) k
                   WHERE queue_id = k.q AND item_id = k.i""", pairs)  # every item's turn, as store_grade's
    rows = con.execute("""
        WITH k AS (SELECT unnest($queues::VARCHAR[]) AS q, unnest($items::VARCHAR[]) AS i)
        SELECT 'i', queue_id, item_id, NULL, NULL FROM review_items JOIN k ON queue_id = k.q AND item_id = k.i
        UNION ALL SELECT 'g', queue_id, item_id, reviewer, NULL FROM review_grades
                  JOIN k ON queue_id = k.q AND item_id = k.i
        UNION ALL SELECT 'c', queue_id, item_id, reviewer, expires_at FROM review_claims
                  JOIN k ON queue_id = k.q AND item_id = k.i
        UNION ALL SELECT 's', queue_id, item_id, reviewer, NULL FROM review_skips
                  JOIN k ON queue_id = k.q AND item_id = k.i""", pairs).fetchall()
    state = _GradeState(rows)
    outcomes = [state.grade(grade, overlap, clock()) for grade, overlap, clock in requests]
    state.write(con)
    return outcomes


class _GradeState:
    """The items' grades, claims and skips, updated grade by grade as store_grade would find them."""

    def __init__(self, rows: list[tuple]):
        self.items = {(q, i) for kind, q, i, _, _ in rows if kind == "i"}
        self.graded = {(q, i, r) for kind, q, i, r, _ in rows if kind == "g"}
        self.claims = {(q, i, r): t for kind, q, i, r, t in rows if kind == "c"}
        self.skips = {(q, i, r) for kind, q, i, r, _ in rows if kind == "s"}
        self.new: list[Grade] = []
        self.released: list[tuple[str, str, str]] = []
        self.unskipped: list[tuple[str, str, str]] = []

    def grade(self, grade: Grade, overlap: int, now: datetime) -> str:
        item, key = (grade.queue_id, grade.item_id), (grade.queue_id, grade.item_id, grade.reviewer)
        if item not in self.items:
            return "missing"
        if key in self.graded:
            return "duplicate"
        holds = key in self.claims and self.claims[key] > now
        taken = sum(1 for q, i, _ in self.graded if (q, i) == item) + sum(
            1 for (q, i, r), t in self.claims.items() if (q, i) == item and r != grade.reviewer and t > now)
        if not holds and taken >= overlap:
            return "full"
        self.graded.add(key)
        self.new.append(grade)
        if self.claims.pop(key, None) is not None:
            self.released.append(key)
        if key in self.skips:
            self.skips.discard(key)
            self.unskipped.append(key)
        return "stored"

    def write(self, con: duckdb.DuckDBPyConnection) -> None:
        if self.new:
            con.execute("""INSERT INTO review_grades SELECT unnest($q::VARCHAR[]), unnest($i::VARCHAR[]),
                           unnest($r::VARCHAR[]), unnest($a::VARCHAR[]), unnest($o::VARCHAR[]), unnest($c::VARCHAR[]),
                           unnest($e::DOUBLE[]), unnest($t::TIMESTAMP[])""",
                        {"q": [g.queue_id for g in self.new], "i": [g.item_id for g in self.new],
                         "r": [g.reviewer for g in self.new],
                         "a": [json.dumps(g.answers, sort_keys=True) for g in self.new],
                         "o": [g.answers.get("overall") for g in self.new], "c": [g.comment for g in self.new],
                         "e": [g.elapsed_s for g in self.new], "t": [g.created_at for g in self.new]})
        for table, keys in (("review_claims", self.released), ("review_skips", self.unskipped)):
            if keys:
                con.execute(f"""DELETE FROM {table} USING (SELECT unnest($q::VARCHAR[]) AS q,
                                unnest($i::VARCHAR[]) AS i, unnest($r::VARCHAR[]) AS r) k
                                WHERE queue_id = k.q AND item_id = k.i AND reviewer = k.r""",
                            {"q": [k[0] for k in keys], "i": [k[1] for k in keys], "r": [k[2] for k in keys]})
