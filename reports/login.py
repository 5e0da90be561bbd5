"""The login gate of the app: nothing but the login form until a reviewer account logs in.

`login_gate(store)` returns "admin", "reviewer" or None (it drew the login form; the app stops). With
no accounts in the store everyone is "admin" (single-user local mode). The logged-in user lives in
`st.session_state["user"]` as {"name", "role"}; every page run re-reads the account, so a removed
account is logged out at once.
"""

from __future__ import annotations

import streamlit as st

from harness.review_auth import login, session_account
from harness.store import Store

LOCAL_USER = {"name": "local", "role": "admin", "local": True}


def login_gate(store: Store) -> str | None:
    user = st.session_state.get("user") or {}
    any_accounts, account = session_account(store, None if user.get("local") else user.get("name"))
    if not any_accounts:
        st.session_state["user"] = dict(LOCAL_USER)
        return "admin"
    if account is not None:
        st.session_state["user"] = {"name": account.name, "role": account.role}
        _account_box(account.name, account.role)
        return account.role
    st.session_state.pop("user", None)
    _login_form(store)
    return None


def log_out() -> None:
    """Forget the user and everything the session remembered about their work."""
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def _account_box(name: str, role: str) -> None:
    with st.sidebar:
        st.caption(f"Logged in as **{_plain(name)}** ({role})")
        st.button("Log out", key="logout", on_click=log_out)


def _plain(text: str) -> str:
    return "".join(c for c in text if c.isalnum() or c in "._-@")


def _login_form(store: Store) -> None:
    st.title("Log in")
    with st.form("login", enter_to_submit=True):
        name = st.text_input("Name", key="login_name", autocomplete="username")
        password = st.text_input("Password", type="password", key="login_password",
                                 autocomplete="current-password")
        submitted = st.form_submit_button("Log in", type="primary")
    if not submitted:
        st.caption("Ask an admin for an account: `harness review add-reviewer NAME`.")
        return
    result = login(store, name, password)
    if result.account is None:
        st.error(result.message)
        return
    st.session_state["user"] = {"name": result.account.name, "role": result.account.role}
    st.rerun()
