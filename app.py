"""The Streamlit entry point: navigation and login only. `harness report` runs it; HARNESS_DB names the store.

Login contract: `reports.login.login_gate(store)` returns "admin", "reviewer" or None (None: it showed the
login form, stop). Without reports/login.py (or without reviewer accounts) everyone is "admin" and sees the
report pages plus `reports.review_pages.ADMIN_PAGES`; a reviewer sees only `REVIEWER_PAGES`.
"""

import importlib

import streamlit as st

from reports.links import PAGES
from reports.ui import render_page

try:
    from reports.login import login_gate
except ModuleNotFoundError as exc:  # no login module yet: single-user local mode
    if exc.name != "reports.login":
        raise
    login_gate = None


def _optional(module: str):
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        return None


def _report_pages() -> list:
    """The report pages, each at its own address (/leaderboard, /compare, ...). The default page sits at '/'
    and cannot have an address of its own, so a hidden default page forwards '/' to the leaderboard."""
    pages = [st.Page(f"reports/pages/{name}.py", title=title, url_path=name) for name, title in PAGES.items()]

    def home() -> None:
        params = {key: st.query_params.get_all(key) for key in st.query_params}
        st.switch_page(pages[0], query_params=params)

    return [st.Page(home, title="Home", url_path="home", default=True, visibility="hidden"), *pages]


def _pages(role: str) -> list | dict:
    review = _optional("reports.review_pages")
    if role == "reviewer":
        return list(getattr(review, "REVIEWER_PAGES", [])) or [st.Page(_no_review_pages, title="Review")]
    report = _report_pages()
    admin = list(getattr(review, "ADMIN_PAGES", [])) if review else []
    return {"Report": report, "Review": admin} if admin else report


def _no_review_pages() -> None:
    st.info("There is nothing to review in this build.")


def main() -> None:
    st.set_page_config(page_title="Harness report", layout="wide")
    role = {"role": "admin" if login_gate is None else None}
    if login_gate is not None:
        render_page(lambda store: role.update(role=login_gate(store)))
    if role["role"] is None:
        st.stop()
    st.navigation(_pages(role["role"])).run()


main()
