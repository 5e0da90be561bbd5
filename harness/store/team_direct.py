"""A team store's grades in one PostgreSQL round trip: psycopg, a small pool per store, a server-side function.

Through DuckDB's postgres extension a grade is a transaction of six statements, each a round trip or more,
taken in turn by the writers of one process (team.py), under REPEATABLE READ, where two graders of one item
conflict and one runs again. Here a grade is one call of the PL/pgSQL function `harness_store_grade_v1` on
an autocommit connection at READ COMMITTED: the function bumps the item's `slot_turns` first, which locks the
item's row until it commits, so graders of one item queue on that row (not a retry) and graders of different
items run at the same time. Each later statement of the function takes a fresh snapshot, so it sees the
grades and claims the previous holder of the row committed. That is the same rule as claim_sql.store_grade
(every slot-taker writes the item's row first), so the DuckDB-path claims (claim_sql.hold) and these grades
keep to one overlap together: a REPEATABLE READ transaction that finds the row changed since its snapshot
fails and is run again (team.retrying).

The function is created on first use (once per process and store, under an advisory lock, so two processes
do not race); its name carries a version, so a changed body gets a new name and old processes keep theirs.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, cast

from harness.errors import HarnessError
from harness.records.review import Grade, SubmitOutcome
from harness.store.address import TeamAddress

POOL_SIZE = 8  # connections per store and process: graders beyond it wait for one (a grade is ~1 ms)
GRADE_FUNCTION = "harness_store_grade_v1"
_ATTEMPTS = 5
_CREATE_GRADE_FUNCTION = f"""
CREATE FUNCTION public.{GRADE_FUNCTION}(
    p_queue text, p_item text, p_reviewer text, p_answers text, p_overall text, p_comment text,
    p_elapsed double precision, p_created timestamp, p_overlap integer, p_now timestamp)
RETURNS text LANGUAGE plpgsql VOLATILE SET search_path = public, pg_temp AS $fn$
DECLARE
    v_graded boolean;
    v_holds boolean;
    v_taken bigint;
BEGIN
    UPDATE review_items SET slot_turns = coalesce(slot_turns, 0) + 1
     WHERE queue_id = p_queue AND item_id = p_item;
    IF NOT FOUND THEN
        RETURN 'missing';
    END IF;
    SELECT EXISTS (SELECT 1 FROM review_grades
                    WHERE queue_id = p_queue AND item_id = p_item AND reviewer = p_reviewer),
           EXISTS (SELECT 1 FROM review_claims
                    WHERE queue_id = p_queue AND item_id = p_item AND reviewer = p_reviewer AND expires_at > p_now),
           (SELECT count(*) FROM review_grades WHERE queue_id = p_queue AND item_id = p_item)
           + (SELECT count(*) FROM review_claims
               WHERE queue_id = p_queue AND item_id = p_item AND reviewer <> p_reviewer AND expires_at > p_now)
      INTO v_graded, v_holds, v_taken;
    IF v_graded THEN
        RETURN 'duplicate';
    END IF;
    IF NOT v_holds AND v_taken >= p_overlap THEN
        RETURN 'full';
    END IF;
    INSERT INTO review_grades (queue_id, item_id, reviewer, answers_json, overall, comment, elapsed_s, created_at)
    VALUES (p_queue, p_item, p_reviewer, p_answers, p_overall, p_comment, p_elapsed, p_created)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN 'duplicate';
    END IF;
    DELETE FROM review_skips WHERE queue_id = p_queue AND item_id = p_item AND reviewer = p_reviewer;
    DELETE FROM review_claims WHERE queue_id = p_queue AND reviewer = p_reviewer AND item_id = p_item;
    RETURN 'stored';
END
$fn$"""
_HAS_FUNCTION = "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace " \
                "WHERE n.nspname = 'public' AND p.proname = %s"
_CALL_GRADE = f"SELECT public.{GRADE_FUNCTION}(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError:
        raise HarnessError("a team store needs the PostgreSQL client psycopg; install it with "
                           "pip install 'harness[team]'") from None
    return psycopg


class _Pool:
    """Up to POOL_SIZE autocommit READ COMMITTED connections to one PostgreSQL database, reused LIFO."""

    def __init__(self, dsn: str, size: int):
        self.dsn = dsn
        self._idle: list[Any] = []
        self._guard = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)

    def _new(self) -> Any:
        psycopg = _psycopg()
        con = psycopg.connect(self.dsn, autocommit=True)
        con.execute("SET default_transaction_isolation = 'read committed'")  # whatever the server's default
        return con

    @contextmanager
    def connection(self) -> Iterator[Any]:
        self._slots.acquire()
        try:
            with self._guard:
                con = self._idle.pop() if self._idle else None
            if con is None or con.closed:
                con = self._new()
            try:
                yield con
            except BaseException:
                con.close()  # a broken or mid-statement connection is never handed on
                raise
            with self._guard:
                self._idle.append(con)
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._guard:
            for con in self._idle:
                con.close()
            self._idle.clear()


_pools: dict[str, _Pool] = {}
_ready: set[str] = set()
_pools_guard = threading.Lock()


_inherited: list[dict[str, _Pool]] = []


def _forget_after_fork() -> None:
    """A forked child opens its own connections. The parent's stay referenced, never closed here: closing one
    would end the parent's session on the socket they share."""
    global _pools, _pools_guard
    _inherited.append(_pools)
    _pools, _pools_guard = {}, threading.Lock()
    _ready.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def _pool(address: TeamAddress) -> _Pool:
    with _pools_guard:
        found = _pools.get(address.dsn)
        if found is None:
            found = _pools[address.dsn] = _Pool(address.dsn, POOL_SIZE)
        return found


def close_all() -> None:
    """Close every pooled connection of this process (tests; a process exiting does it anyway)."""
    with _pools_guard:
        for pool in _pools.values():
            pool.close()
        _pools.clear()
        _ready.clear()


def _ensure_function(con: Any, dsn: str) -> None:
    """Create the grade function unless the database has it (two processes at once: one creates it)."""
    if dsn in _ready:
        return
    with con.transaction():
        con.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [GRADE_FUNCTION])
        if not con.execute(_HAS_FUNCTION, [GRADE_FUNCTION]).fetchone()[0]:
            con.execute(_CREATE_GRADE_FUNCTION)
    with _pools_guard:
        _ready.add(dsn)


def _call(address: TeamAddress, fn: Callable[[Any], Any]) -> Any:
    """fn(connection) with the grade function in place; run again on a dropped connection or a deadlock."""
    psycopg = _psycopg()
    retry = (psycopg.OperationalError, psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure)
    for attempt in range(_ATTEMPTS):
        try:
            with _pool(address).connection() as con:
                _ensure_function(con, address.dsn)
                return fn(con)
        except psycopg.errors.UndefinedTable:
            raise HarnessError(f"team store {address}: its PostgreSQL tables are missing (review_items, "
                               "review_grades); a writing command creates them, e.g. harness review create-queue "
                               "... --db ADDRESS") from None
        except retry as exc:
            if attempt == _ATTEMPTS - 1:
                raise HarnessError(f"team store {address}: PostgreSQL refused a grade ({_first_line(exc)}); "
                                   "check that the server is running and try again") from None
            time.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def store_grade(address: TeamAddress, grade: Grade, overlap: int, clock: Callable[[], datetime]) -> SubmitOutcome:
    """Store a grade if its slot allows it, as claim_sql.store_grade does: "stored", "duplicate" or "full".
    `clock` is read at each attempt (the lease clock, as inside a retried transaction)."""
    answers = json.dumps(grade.answers, sort_keys=True)

    def call(con: Any) -> str:
        params = [grade.queue_id, grade.item_id, grade.reviewer, answers, grade.answers.get("overall"),
                  grade.comment, grade.elapsed_s, grade.created_at, overlap, clock()]
        return con.execute(_CALL_GRADE, params).fetchone()[0]

    outcome = _call(address, call)
    if outcome == "missing":
        raise HarnessError(f"item {grade.item_id} is not in queue {grade.queue_id}")
    return cast(SubmitOutcome, outcome)
