"""Reviewer accounts: one-time passwords, argon2id hashes, and per-name login throttling.

Passwords are hashed with argon2id (`argon2-cffi`, RFC 9106 parameters); accounts made before it keep a
salted scrypt hash that is replaced by an argon2id one at their next login. A password handed out by
`add-reviewer` or `reset-password` is one-time: it logs in only to choose a new password.

Throttling: every attempt is counted as a failure *before* its password is checked, in one transaction
(`harness.store.reviews.reserve_attempt`), and a success clears the count. So parallel guesses queue behind each other:
after `FREE_FAILURES` attempts a name is locked for `BASE_DELAY_S * 2**(extra failures)` seconds (at most
`MAX_DELAY_S`), and no more than `FREE_FAILURES` passwords are ever checked before the lock, however many
arrive at once, in however many app processes. Unknown names are throttled the same way and cost the
same hashing work, so they reveal nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from harness.errors import HarnessError
from harness.records.review import ROLES, Account
from harness.store import Store, reviews

FREE_FAILURES = 3
BASE_DELAY_S = 2.0
MAX_DELAY_S = 15 * 60.0
MIN_PASSWORD = 10
NAME = re.compile(r"^[A-Za-z0-9_.@\-]{1,64}$")
LEGACY_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": 32}
_HASHER = PasswordHasher()
_DUMMY_HASH = _HASHER.hash("no such account")


@dataclass(frozen=True)
class LoginResult:
    account: Account | None
    message: str
    retry_after_s: float = 0.0
    must_change_password: bool = False


def hash_password(password: str) -> bytes:
    """An argon2id hash in its encoded form (parameters and salt included)."""
    return _HASHER.hash(password).encode("ascii")


def _verify(password: str, salt: bytes, digest: bytes) -> bool:
    """Check a password against an argon2id hash (salt empty) or a legacy scrypt one."""
    if salt:
        given = hashlib.scrypt(password.encode("utf-8"), salt=salt, **LEGACY_SCRYPT)
        return hmac.compare_digest(given, digest)
    try:
        return _HASHER.verify(digest.decode("ascii"), password)
    except (VerificationError, InvalidHashError, UnicodeDecodeError):
        return False


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
    password = new_password()
    if not reviews.insert_account(store, name, role, b"", hash_password(password)):
        raise HarnessError(f"reviewer '{name}' already exists; `harness review reset-password {name}` "
                           "gives them a new password")
    return password


def reset_password(store: Store, name: str) -> str:
    """A new one-time password; the account's open sessions end and a lockout is lifted."""
    password = new_password()
    if not reviews.reset_password(store, name, b"", hash_password(password), datetime.now()):
        raise HarnessError(f"reviewer '{name}' not found; `harness review reviewers` lists them")
    return password


def remove_account(store: Store, name: str) -> None:
    """Remove an account; its open sessions end at once."""
    if not reviews.delete_account(store, name):
        raise HarnessError(f"reviewer '{name}' not found; `harness review reviewers` lists them")


def accounts(store: Store) -> list[Account]:
    return reviews.accounts(store)


def has_accounts(store: Store) -> bool:
    return reviews.count_accounts(store) > 0


def decide_mode(store: Store) -> Literal["open", "accounts"]:
    """The authentication mode of an app server starting now on this store: `accounts` when it has any."""
    return "accounts" if store.path.exists() and has_accounts(store) else "open"


def lock_delay(failures: int) -> timedelta:
    """How long a name stays locked after its `failures`-th wrong password in a row."""
    if failures < FREE_FAILURES:
        return timedelta(0)
    return timedelta(seconds=min(BASE_DELAY_S * 2 ** (failures - FREE_FAILURES), MAX_DELAY_S))


def login(store: Store, name: str, password: str, now: datetime | None = None) -> LoginResult:
    """Check a name and password, honouring and updating the name's throttle."""
    now = now or datetime.now()
    name = (name or "").strip()[:64]
    allowed, locked_until = reviews.reserve_attempt(store, name, now, lock_delay)
    if not allowed:
        wait = (locked_until - now).total_seconds()
        return LoginResult(None, f"too many failed logins for this name; try again in {wait:.0f} s", wait)
    found = reviews.credentials(store, name)
    role, salt, digest, must_change = found if found else ("", b"", _DUMMY_HASH.encode(), False)
    matches = _verify(password or "", salt, digest)  # the same hashing work for unknown names
    if found and matches:
        if salt:  # a legacy scrypt hash: replace it with argon2id now that the password is known
            reviews.set_password(store, name, b"", hash_password(password), must_change)
        reviews.record_success(store, name, now)
        return LoginResult(Account(name, role), "logged in", must_change_password=must_change)
    wait = max(0.0, (locked_until - now).total_seconds()) if locked_until else 0.0
    extra = f"; locked for {wait:.0f} s" if wait else ""
    return LoginResult(None, f"wrong name or password{extra}", wait)


def check_new_password(password: str, confirm: str, old: str) -> str | None:
    """Why a chosen password is refused, or None when it is fine."""
    if password != confirm:
        return "the two new passwords differ"
    if len(password) < MIN_PASSWORD:
        return f"choose a password of at least {MIN_PASSWORD} characters"
    if password == old:
        return "choose a password different from the one-time password"
    return None


def change_password(store: Store, name: str, old: str, new: str, confirm: str | None = None) -> LoginResult:
    """Log in with the current (e.g. one-time) password and replace it; the account's other sessions end."""
    result = login(store, name, old)
    if result.account is None:
        return result
    problem = check_new_password(new, new if confirm is None else confirm, old)
    if problem:
        return LoginResult(None, problem, must_change_password=result.must_change_password)
    reviews.set_password(store, result.account.name, b"", hash_password(new), False)
    return LoginResult(result.account, "password changed")


def set_own_password(store: Store, name: str, new: str) -> Account:
    """Replace a password once the caller proved who they are (the login route's change token)."""
    found = reviews.credentials(store, name)
    if found is None:
        raise HarnessError(f"reviewer '{name}' not found")
    reviews.set_password(store, name, b"", hash_password(new), False)
    return Account(name, found[0])


def current_account(store: Store, name: str) -> Account | None:
    """The account as stored now (None once removed)."""
    found = reviews.credentials(store, name)
    return Account(name, found[0]) if found else None
