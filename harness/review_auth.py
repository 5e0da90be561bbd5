"""Reviewer accounts: one-time passwords, salted scrypt hashes, and per-name login throttling.

Only a random salt and `hashlib.scrypt(password, salt)` are stored. After `FREE_FAILURES` wrong
passwords in a row a name is locked for `BASE_DELAY_S * 2**(extra failures)` seconds (at most
`MAX_DELAY_S`); the count and the lock live in the store, so every app process and restart sees them.
Unknown names are throttled the same way and cost the same scrypt work, so they reveal nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from harness.errors import HarnessError
from harness.review_records import ROLES, Account
from harness.store import Store
from harness.store import reviews as sql
from harness.store.reviews import ReviewStore

SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES = 2**14, 8, 1, 32
FREE_FAILURES = 3
BASE_DELAY_S = 2.0
MAX_DELAY_S = 15 * 60.0
NAME = re.compile(r"^[A-Za-z0-9_.@\-]{1,64}$")
_DUMMY_SALT = b"\0" * 16


@dataclass(frozen=True)
class LoginResult:
    account: Account | None
    message: str
    retry_after_s: float = 0.0


def hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P,
                          maxmem=64 * 1024 * 1024, dklen=KEY_BYTES)


def new_password() -> str:
    return secrets.token_urlsafe(12)


def check_name(name: str) -> str:
    if not NAME.match(name or ""):
        raise HarnessError(f"reviewer name {name!r}: use 1-64 letters, digits, '.', '_', '-' or '@'")
    return name


def add_account(store: Store, name: str, role: str = "reviewer") -> str:
    """Create an account; returns its one-time password (shown once, never stored)."""
    check_name(name)
    if role not in ROLES:
        raise HarnessError(f"--role {role}: must be one of {', '.join(ROLES)}")
    password, salt = new_password(), secrets.token_bytes(16)
    if not ReviewStore(store).run(sql.insert_account, name, role, salt, hash_password(password, salt)):
        raise HarnessError(f"reviewer '{name}' already exists; `harness review reset-password {name}` "
                           "gives them a new password")
    return password


def reset_password(store: Store, name: str) -> str:
    password, salt = new_password(), secrets.token_bytes(16)
    if not ReviewStore(store).run(sql.set_password, name, salt, hash_password(password, salt)):
        raise HarnessError(f"reviewer '{name}' not found; `harness review reviewers` lists them")
    ReviewStore(store).run(sql.record_success, name, datetime.now())  # a reset also lifts a lockout
    return password


def remove_account(store: Store, name: str) -> None:
    if not ReviewStore(store).run(sql.delete_account, name):
        raise HarnessError(f"reviewer '{name}' not found; `harness review reviewers` lists them")


def accounts(store: Store) -> list[Account]:
    return ReviewStore(store).run(sql.accounts)


def has_accounts(store: Store) -> bool:
    return ReviewStore(store).run(sql.count_accounts) > 0


def lock_delay(failures: int) -> timedelta:
    """How long a name stays locked after its `failures`-th wrong password in a row."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    return timedelta(seconds=min(BASE_DELAY_S * 2 ** (failures - FREE_FAILURES), MAX_DELAY_S))


def login(store: Store, name: str, password: str, now: datetime | None = None) -> LoginResult:
    """Check a name and password, honouring and updating the name's throttle."""
    now = now or datetime.now()
    db = ReviewStore(store)
    name = (name or "").strip()
    (_, locked_until), found = store.transaction(lambda con: (sql.throttle(con, name), sql.credentials(con, name)))
    if locked_until is not None and locked_until > now:
        wait = (locked_until - now).total_seconds()
        return LoginResult(None, f"too many failed logins for this name; try again in {wait:.0f} s", wait)
    role, salt, digest = found if found else ("", _DUMMY_SALT, b"")
    given = hash_password(password or "", salt)
    if found and hmac.compare_digest(given, digest):
        db.run(sql.record_success, name, now)
        return LoginResult(Account(name, role), "logged in")
    failures, locked_until = db.run(sql.record_failure, name, now, lock_delay)
    wait = max(0.0, (locked_until - now).total_seconds())
    extra = f"; locked for {wait:.0f} s" if wait else ""
    return LoginResult(None, f"wrong name or password{extra}", wait)


def current_account(store: Store, name: str) -> Account | None:
    """The account as stored now (None once removed): a logged-in session re-checks it on every page."""
    found = ReviewStore(store).run(sql.credentials, name)
    return Account(name, found[0]) if found else None


def session_account(store: Store, name: str | None) -> tuple[bool, Account | None]:
    """(are there any accounts, the named account as stored now), in one read."""
    def read(con) -> tuple[bool, Account | None]:
        found = sql.credentials(con, name) if name else None
        return sql.count_accounts(con) > 0, Account(name, found[0]) if found else None

    return store.transaction(read)
