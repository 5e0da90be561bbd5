"""Human review in the store: accounts, login throttling, sessions, queues, items and grades.

Every function takes a `Store` and runs as one short transaction (retried while another process holds the
file); where several statements must be one transaction, the function here composes them. The SQL itself
is in harness/store/review_sql.py; assignment (claims) is harness/store/claims.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pandas as pd

from harness.records.review import Account, Grade, Queue, ReviewItem
from harness.store import Store
from harness.store import review_sql as sql
from harness.store.connection import once_per_key

_RESERVE_ATTEMPTS = 50


# accounts ---------------------------------------------------------------------------------------------
def insert_account(store: Store, name: str, role: str, salt: bytes, digest: bytes) -> bool:
    """A new account whose password is one-time; False when the name is taken."""
    return store.transaction(lambda con: sql.insert_account(con, name, role, salt, digest))


def set_password(store: Store, name: str, salt: bytes, digest: bytes, one_time: bool) -> bool:
    """Replace a password; every session of the account ends with it. False: no such account."""
    return store.transaction(lambda con: sql.set_password(con, name, salt, digest, one_time))


def reset_password(store: Store, name: str, salt: bytes, digest: bytes, now: datetime) -> bool:
    """A new one-time password, its sessions ended and its lockout lifted, in one transaction."""
    def reset(con) -> bool:
        found = sql.set_password(con, name, salt, digest, True)
        if found:
            sql.record_success(con, name, now)
        return found

    return store.transaction(reset)


def credentials(store: Store, name: str) -> tuple[str, bytes, bytes, bool] | None:
    """(role, salt, password hash, must change the password) of an account, or None."""
    return store.transaction(lambda con: sql.credentials(con, name))


def accounts(store: Store) -> list[Account]:
    return store.transaction(sql.accounts)


def count_accounts(store: Store) -> int:
    return store.transaction(sql.count_accounts)


def delete_account(store: Store, name: str) -> bool:
    """Remove an account, its sessions and its queue assignments; False: no such account."""
    return store.transaction(lambda con: sql.delete_account(con, name))


# login throttling ------------------------------------------------------------------------------------
def reserve_attempt(store: Store, name: str, now: datetime,
                    lock_for: Callable[[int], timedelta]) -> tuple[bool, datetime | None]:
    """Count a login attempt as a failure before its password is checked (review_sql.reserve_attempt), run
    again when two first attempts for a new name insert its row at once."""
    return once_per_key(lambda: store.transaction(lambda con: sql.reserve_attempt(con, name, now, lock_for)),
                        _RESERVE_ATTEMPTS, 0.005, "the login service is overloaded; try again in a moment")


def record_success(store: Store, name: str, now: datetime) -> None:
    store.transaction(lambda con: sql.record_success(con, name, now))


def throttle(store: Store, name: str) -> tuple[int, datetime | None]:
    """(failures in a row, locked until) of a name."""
    return store.transaction(lambda con: sql.throttle(con, name))


# sessions ---------------------------------------------------------------------------------------------
def insert_session(store: Store, token_hash: str, name: str, now: datetime, expires_at: datetime) -> None:
    store.transaction(lambda con: sql.insert_session(con, token_hash, name, now, expires_at))


def session_account(store: Store, token_hash: str, now: datetime) -> Account | None:
    return store.transaction(lambda con: sql.session_account(con, token_hash, now))


def delete_session(store: Store, token_hash: str) -> None:
    store.transaction(lambda con: sql.delete_session(con, token_hash))


def count_sessions(store: Store, name: str) -> int:
    return store.transaction(lambda con: sql.count_sessions(con, name))


def app_secret(store: Store, name: str, new_value: bytes) -> bytes:
    """The store's secret `name`, created with `new_value` the first time it is asked for."""
    return store.transaction(lambda con: sql.app_secret(con, name, new_value))


# queues -------------------------------------------------------------------------------------------------
def insert_queue(store: Store, queue: Queue, items: list[ReviewItem]) -> None:
    """A queue, its reviewers and its items, in one transaction."""
    store.transaction(lambda con: sql.insert_queue(con, queue, items))


def set_queue_reviewers(store: Store, queue_id: str, reviewers: list[str]) -> None:
    store.transaction(lambda con: sql.set_queue_reviewers(con, queue_id, reviewers))


def queue_exists(store: Store, queue_id: str) -> bool:
    return store.transaction(lambda con: sql.queue_exists(con, queue_id))


def queues(store: Store, reviewer: str | None = None) -> list[Queue]:
    """Every queue (reviewer None) or the queues open to one reviewer, newest first."""
    return store.transaction(lambda con: sql.queues(con, reviewer))


def items(store: Store, queue_id: str) -> list[ReviewItem]:
    return store.transaction(lambda con: sql.items(con, queue_id))


def item(store: Store, queue_id: str, item_id: str) -> ReviewItem | None:
    return store.transaction(lambda con: sql.item(con, queue_id, item_id))


# grades --------------------------------------------------------------------------------------------------
def count_grades(store: Store, queue_id: str, reviewer: str) -> int:
    return store.transaction(lambda con: sql.count_grades(con, queue_id, reviewer))


def own_grade(store: Store, queue_id: str, item_id: str, reviewer: str) -> Grade | None:
    return store.transaction(lambda con: sql.own_grade(con, queue_id, item_id, reviewer))


def grades_frame(store: Store, queue_id: str | None = None) -> pd.DataFrame:
    """Every grade joined with its item (admin use: export and analysis)."""
    return store.transaction(lambda con: sql.grades_frame(con, queue_id))


def progress_frames(store: Store) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per queue: items, complete, grades; per queue and reviewer: graded, skipped, last activity), read
    from one snapshot."""
    return store.transaction(lambda con: (sql.progress_frame(con), sql.reviewer_progress_frame(con)))


# run data the queues are built from ---------------------------------------------------------------------
def predictions(store: Store, run_id: str, suite: str) -> pd.DataFrame:
    return store.transaction(lambda con: sql.predictions(con, run_id, suite))


def example_stats(store: Store, run_id: str, suite: str) -> pd.DataFrame:
    return store.transaction(lambda con: sql.example_stats(con, run_id, suite))
