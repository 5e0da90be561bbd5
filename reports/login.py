"""The login gate of the app's script: who is using this page run.

`login_gate(store)` returns "admin", "reviewer" or None (it drew a login form or link; the app stops).
In `open` mode (reports/access.py) everyone is the local admin. In `accounts` mode the user is the owner
of a live session: the server's cookie (set by reports/auth_routes.py) when served by `harness report`,
or, without those routes (AppTest, plain `streamlit run app.py`), a token kept in this Streamlit session
by the form below. Every page run re-checks the session in the store, so logging out elsewhere, a
password reset and removing the account end it at once.
"""

from __future__ import annotations

import streamlit as st

from harness.records.review import Account
from harness.review.auth import change_password, login
from harness.review.sessions import COOKIE, create_session, end_session, session_account
from harness.store import Store
from reports.access import LOGOUT_PATH, auth_mode, login_url, served_with_login

LOCAL_USER = {"name": "local", "role": "admin", "local": True}
_TOKEN = "_session_token"


def _token() -> str | None:
    if served_with_login():
        return st.context.cookies.get(COOKIE)
    return st.session_state.get(_TOKEN)


def login_gate(store: Store) -> str | None:
    if auth_mode(store) == "open":
        st.session_state["user"] = dict(LOCAL_USER)
        return "admin"
    token = _token()
    account = session_account(store, token) if token else None
    if account is not None:
        st.session_state["user"] = {"name": account.name, "role": account.role}
        _account_box(store, account)
        return account.role
    if "user" in st.session_state or _TOKEN in st.session_state:
        _forget()  # the session ended (logout, reset, removal): nothing of the user's work stays
    if served_with_login():
        _login_link()
    else:
        _login_form(store)
    return None


def _forget() -> None:
    """Forget the user and everything the session remembered about their work."""
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def log_out(store: Store) -> None:
    end_session(store, _token())
    _forget()


def _account_box(store: Store, account: Account) -> None:
    with st.sidebar:
        st.caption(f"Logged in as **{_plain(account.name)}** ({account.role})")
        if served_with_login():
            st.markdown(f'<a href="{LOGOUT_PATH}" target="_self">Log out</a>', unsafe_allow_html=True)
        else:
            st.button("Log out", key="logout", on_click=log_out, args=(store,))


def _plain(text: str) -> str:
    return "".join(c for c in text if c.isalnum() or c in "._-@")


def _login_link() -> None:
    """Served by harness report: the login page is the server's own; it brings the user back here."""
    url = st.context.url or "/"
    path = "/" + url.split("://", 1)[-1].partition("/")[2]
    st.title("Log in")
    st.info("Your session has ended (logged out, password reset, or the account was removed).")
    st.markdown(f'<a href="{login_url(path)}" target="_self">Log in again</a>', unsafe_allow_html=True)


def _login_form(store: Store) -> None:
    st.title("Log in")
    changing = st.session_state.get("login_must_change")
    with st.form("login", enter_to_submit=True):
        name = st.text_input("Name", key="login_name", autocomplete="username")
        password = st.text_input("Password", type="password", key="login_password",
                                 autocomplete="current-password")
        if changing:
            st.caption("The password you were given works once: choose your own (10 characters or more).")
            new = st.text_input("New password", type="password", key="login_new", autocomplete="new-password")
            confirm = st.text_input("New password again", type="password", key="login_confirm")
        submitted = st.form_submit_button("Log in", type="primary")
    if not submitted:
        st.caption("Ask an admin for an account: `harness review add-reviewer NAME`.")
        return
    result = change_password(store, name, password, new, confirm) if changing else login(store, name, password)
    if result.must_change_password and result.account is not None:
        st.session_state["login_must_change"] = True
        st.rerun()
    if result.account is None:
        st.error(result.message)
        return
    st.session_state.pop("login_must_change", None)
    st.session_state[_TOKEN] = create_session(store, result.account)
    st.rerun()
