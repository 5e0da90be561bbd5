"""The Streamlit entry point: navigation and login only. `harness report` serves it (through
reports/server.py, which adds the login routes); HARNESS_DB names the store. The repository's app.py
runs it too (`streamlit run app.py`).

Login contract: `reports.login.login_gate(store)` returns "admin", "reviewer" or None (None: it showed the
login form, stop). In open mode (no accounts when the server started) everyone is "admin" and sees the
report pages plus `reports.review_pages.ADMIN_PAGES`; a reviewer sees only `REVIEWER_PAGES`.
"""

import importlib
from pathlib import Path

import streamlit as st

from reports.links import PAGES
from reports.ui import render_page

PAGES_DIR = Path(__file__).resolve().parent / "pages"


def _with_home(pages: list) -> list:
    """The default page sits at '/' and cannot have an address of its own, so a hidden default page forwards
    '/' to the first page; every real page keeps its address (/leaderboard, /grade, ...) for deep links."""
    def home() -> None:
        params = {key: st.query_params.get_all(key) for key in st.query_params}
        st.switch_page(pages[0], query_params=params)

    return [st.Page(home, title="Home", url_path="home", default=True, visibility="hidden"), *pages]


def _report_pages() -> list:
    return [st.Page(PAGES_DIR / f"{name}.py", title=title, url_path=name) for name, title in PAGES.items()]


def _pages(role: str) -> list | dict:
    review_pages = importlib.import_module("reports.review_pages")  # looked up per run: tests swap it
    if role == "reviewer":
        return _with_home(review_pages.reviewer_pages())
    report = _with_home(_report_pages())
    return {"Report": report, "Review": review_pages.admin_pages()}


def main() -> None:
    st.set_page_config(page_title="Harness report", layout="wide")
    role = {"role": None}
    login = importlib.import_module("reports.login")
    render_page(lambda store: role.update(role=login.login_gate(store)))
    if role["role"] is None:
        st.stop()
    st.navigation(_pages(role["role"])).run()


if __name__ == "__main__":  # Streamlit runs the entry script as __main__ on every rerun
    main()
