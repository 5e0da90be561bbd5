"""Who may use the app: the authentication mode, fixed once per server process, and login URLs.

`open`: the engineer's own machine, no accounts; everyone is the local admin (loopback only).
`accounts`: every request needs a logged-in session. `harness report` decides the mode at start (accounts
when the store has any) and passes it as HARNESS_AUTH; a server in `accounts` mode never falls back to
`open`, even after the last account is removed. Without HARNESS_AUTH (plain `streamlit run app.py`,
Streamlit's AppTest) the mode is decided on first use and then kept for the life of the process.
"""

from __future__ import annotations

import os
import threading
from typing import Literal
from urllib.parse import quote, urlsplit

from harness.errors import HarnessError
from harness.review.auth import decide_mode
from harness.store import Store

AuthMode = Literal["open", "accounts"]
MODES: tuple[AuthMode, ...] = ("open", "accounts")
LOGIN_PATH = "/auth/login"
LOGOUT_PATH = "/auth/logout"
EXPORT_PATH = "/auth/export/grades.csv"
_modes: dict[str, AuthMode] = {}
_lock = threading.Lock()


def auth_mode(store: Store) -> AuthMode:
    configured = os.environ.get("HARNESS_AUTH")
    if configured:
        if configured not in MODES:
            raise HarnessError(f"HARNESS_AUTH={configured!r}: must be open or accounts")
        return configured  # type: ignore[return-value]
    key = str(store.path.resolve())
    with _lock:
        if key not in _modes:
            _modes[key] = decide_mode(store)
        return _modes[key]


def served_with_login() -> bool:
    """True when the app runs behind reports/server.py, whose routes handle logging in and out."""
    return os.environ.get("HARNESS_LOGIN_ROUTES") == "1"


def safe_next(target: str | None) -> str:
    """A same-site path to return to after logging in (never another host: no open redirect)."""
    target = (target or "/").strip()
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if target.startswith("/auth/"):
        return "/"
    return target


def login_url(next_path: str | None) -> str:
    return f"{LOGIN_PATH}?next={quote(safe_next(next_path), safe='')}"
