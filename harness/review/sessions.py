"""Login sessions of the review app: signed, expiring tokens backed by a row in the store.

A token is a random session id signed with `itsdangerous` (the store's own secret, or
`HARNESS_SECRET_KEY`) and carrying its issue time; the store keeps only the SHA-256 of the id. A token is
good while its signature holds, it is younger than `SESSION_TTL`, and its row exists: logging out,
a password reset and removing the account delete the rows, so a copied token stops working at once.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from datetime import datetime, timedelta

from itsdangerous import BadData, URLSafeTimedSerializer

from harness.records.review import Account
from harness.store import Store, reviews

SESSION_TTL = timedelta(hours=12)
COOKIE = "harness_session"
_SALT = "harness-review-session"
_secrets: dict[str, bytes] = {}


def server_secret(store: Store) -> bytes:
    """HARNESS_SECRET_KEY when set (share it between app servers), else a random secret kept in the store."""
    configured = os.environ.get("HARNESS_SECRET_KEY")
    if configured:
        return configured.encode("utf-8")
    key = str(store.path)
    if key not in _secrets:
        _secrets[key] = reviews.app_secret(store, "session", secrets.token_bytes(32))
    return _secrets[key]


def _serializer(store: Store) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(server_secret(store), salt=_SALT)


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


def create_session(store: Store, account: Account, now: datetime | None = None) -> str:
    """Open a session for a logged-in account; returns its token (for a cookie)."""
    now = now or datetime.now()
    session_id = secrets.token_urlsafe(32)
    reviews.insert_session(store, _digest(session_id), account.name, now, now + SESSION_TTL)
    return _serializer(store).dumps(session_id)


def _session_id(store: Store, token: str | None) -> str | None:
    if not token or len(token) > 512:
        return None
    try:
        return str(_serializer(store).loads(token, max_age=SESSION_TTL.total_seconds()))
    except BadData:
        return None


def session_account(store: Store, token: str | None, now: datetime | None = None) -> Account | None:
    """The account of a live session, as stored now; None for a bad, expired or ended token."""
    session_id = _session_id(store, token)
    if session_id is None:
        return None
    return reviews.session_account(store, _digest(session_id), now or datetime.now())


def end_session(store: Store, token: str | None) -> None:
    session_id = _session_id(store, token)
    if session_id is not None:
        reviews.delete_session(store, _digest(session_id))
