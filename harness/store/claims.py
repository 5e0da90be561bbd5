"""Review assignment in the store: claims with leases on a queue's items, and grades that keep to the overlap.

Every function takes a `Store` and is one short transaction; the ones that read and claim (desk, next_item,
undo_last) or grade (store_grade) compose their statements here. The SQL, and the argument for exactness
under concurrency, are in harness/store/claim_sql.py. Writes keyed by a primary key are run again when the
same row arrives twice at the same moment (a double click, two tabs): the rerun sees the committed row.

`clock` is the caller's clock of leases (read inside the transaction, so a retried one reads it again);
a claim lasts `lease` after the page last showed it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import cast

from harness.errors import HarnessError
from harness.records.review import Account, Desk, Grade, Progress, Queue, ReviewItem, SubmitOutcome
from harness.store import Store, review_sql, team, team_direct
from harness.store import claim_sql as sql
from harness.store.address import TeamAddress
from harness.store.connection import once_per_key
from harness.store.group_commit import Together, grouped

Clock = Callable[[], datetime]
_UNIQUE_ATTEMPTS = 20


def _unique(store: Store, fn):
    return once_per_key(lambda: store.transaction(fn), _UNIQUE_ATTEMPTS, 0.01)


def _claim_next(con, queue: Queue, reviewer: str, now: datetime, lease: timedelta, last: str | None,
                prefer: str | None) -> ReviewItem | None:
    """The item the reviewer holds a live claim on (its lease renewed), else a new claim on the first open one."""
    for found in sql.open_items(con, queue.queue_id, reviewer, queue.overlap, now, last, prefer, limit=4):
        if sql.hold(con, queue.queue_id, found.item_id, reviewer, queue.overlap, now, now + lease):
            return found  # the first one: both read the same snapshot
    return None


def desk(store: Store, account: Account, queue_id: str | None, last: str | None, prefer: str | None,
         clock: Clock, lease: timedelta) -> Desk:
    """The account's queues, the chosen one (default: the newest), their progress and next item in it."""
    def read(con) -> Desk:
        queues = review_sql.queues(con, None if account.role == "admin" else account.name)
        queue = next((q for q in queues if q.queue_id == queue_id), queues[0] if queues else None)
        if queue is None:
            return Desk(queues, None, Progress(0, 0), 0, None)
        now, q, name, k = clock(), queue.queue_id, account.name, queue.overlap
        found = _claim_next(con, queue, name, now, lease, last, prefer)
        remaining, skipped = sql.open_counts(con, q, name, k, now)
        return Desk(queues, queue, Progress(review_sql.count_grades(con, q, name), remaining), skipped, found)

    return _unique(store, read)


def next_item(store: Store, queue: Queue, reviewer: str, last: str | None, prefer: str | None, clock: Clock,
              lease: timedelta) -> ReviewItem | None:
    """The reviewer's claimed item, claimed now if need be; None when nothing is left for them."""
    return _unique(store, lambda con: _claim_next(con, queue, reviewer, clock(), lease, last, prefer))


def hold(store: Store, queue_id: str, item_id: str, reviewer: str, overlap: int, now: datetime,
         expires_at: datetime) -> bool:
    """Claim a slot of the item for the reviewer until `expires_at` (claim_sql.hold); False: no slot for them."""
    return store.transaction(lambda con: sql.hold(con, queue_id, item_id, reviewer, overlap, now, expires_at))


def progress(store: Store, queue: Queue, reviewer: str, clock: Clock) -> Progress:
    """Grades the reviewer gave in the queue and items still open to them, from one snapshot."""
    def read(con) -> Progress:
        return Progress(review_sql.count_grades(con, queue.queue_id, reviewer),
                        sql.open_counts(con, queue.queue_id, reviewer, queue.overlap, clock())[0])

    return store.transaction(read)


def skipped_left(store: Store, queue: Queue, reviewer: str, clock: Clock) -> int:
    """How many of the items open to the reviewer they skipped."""
    return store.transaction(lambda con: sql.open_counts(con, queue.queue_id, reviewer, queue.overlap, clock())[1])


def store_grade(store: Store, grade: Grade, overlap: int, clock: Clock) -> SubmitOutcome:
    """Store a grade if its slot allows it (claim_sql.store_grade): "stored", "duplicate" or "full". On a
    file, committed together with the grades other threads submit meanwhile (group_commit.py); on a team
    store that writes, one call of a PostgreSQL function (team_direct.py) instead of a transaction."""
    if isinstance(store.path, TeamAddress):
        if not store.create:
            return _unique(store, lambda con: sql.store_grade(con, grade, overlap, clock()))  # refused: read-only
        team.known(store.path, store.create)  # created or upgraded, as Store.transaction does first
        return team_direct.store_grade(store.path, grade, overlap, clock)

    def group() -> SubmitOutcome | str:  # the lease clock is read when the group runs (again on a retry)
        together = Together(sql.store_grades, (grade, overlap, clock))
        return grouped(lambda con: sql.store_grade(con, grade, overlap, clock()), store.path, store.timeout_s,
                       create=store.create, together=together)

    outcome = once_per_key(group, _UNIQUE_ATTEMPTS, 0.01)
    if outcome == "missing":
        raise HarnessError(f"item {grade.item_id} is not in queue {grade.queue_id}")
    return cast(SubmitOutcome, outcome)


def skip(store: Store, queue_id: str, item_id: str, reviewer: str) -> None:
    """Put the item at the end of the reviewer's list and give its slot back to the pool, in one transaction."""
    def write(con) -> None:
        review_sql.insert_skip(con, queue_id, item_id, reviewer)
        sql.release(con, queue_id, reviewer, item_id)

    store.transaction(write)


def undo_last(store: Store, queue: Queue, reviewer: str, clock: Clock, lease: timedelta) -> ReviewItem | None:
    """Delete the reviewer's latest grade in the queue and return its item, claimed for them again."""
    def undo(con) -> ReviewItem | None:
        item_id = review_sql.delete_last_grade(con, queue.queue_id, reviewer)
        if item_id is None:
            return None
        now = clock()
        sql.hold(con, queue.queue_id, item_id, reviewer, queue.overlap, now, now + lease)
        return review_sql.item(con, queue.queue_id, item_id)

    return store.transaction(undo)
