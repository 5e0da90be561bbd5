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

from dataclasses import dataclass
from datetime import datetime

import duckdb

from harness.errors import HarnessError
from harness.records.review import Grade, ReviewItem, SubmitOutcome
from harness.store.results import changed
from harness.store.review_sql import fetch_items, insert_grade

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
    """One item as one reviewer finds it: graded by them, claimed by them (live), slots others take."""

    graded: bool
    holds: bool
    taken: int  # grades plus other reviewers' live claims


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
        SELECT EXISTS (SELECT 1 FROM review_grades WHERE queue_id = $queue AND item_id = $item
                       AND reviewer = $reviewer),
               EXISTS (SELECT 1 FROM review_claims WHERE queue_id = $queue AND item_id = $item
                       AND reviewer = $reviewer AND expires_at > $now),
               (SELECT count(*) FROM review_grades WHERE queue_id = $queue AND item_id = $item)
               + (SELECT count(*) FROM review_claims WHERE queue_id = $queue AND item_id = $item
                  AND reviewer <> $reviewer AND expires_at > $now)""",
                      {"queue": queue_id, "item": item_id, "reviewer": reviewer, "now": now}).fetchone()
    return Slots(bool(row[0]), bool(row[1]), int(row[2]))


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
    "duplicate" if they graded it already (the first grade stays); "full" when every slot is taken."""
    if not _take_turn(con, grade.queue_id, grade.item_id):
        raise HarnessError(f"item {grade.item_id} is not in queue {grade.queue_id}")
    slots = _slots(con, grade.queue_id, grade.item_id, grade.reviewer, now)
    if slots.graded:
        return "duplicate"
    if not slots.holds and slots.taken >= overlap:
        return "full"
    if not insert_grade(con, grade):
        return "duplicate"
    release(con, grade.queue_id, grade.reviewer, grade.item_id)
    return "stored"

