"""The review pages app.py adds to its navigation: `ADMIN_PAGES` and `REVIEWER_PAGES` (lists of st.Page).

They are built on each access (module `__getattr__`) because st.Page needs the running script's
context: a list made at import time outside a script run would hold empty pages.
"""

from __future__ import annotations

import streamlit as st

from reports.pages import grade as grading
from reports.pages import human_review as review_analysis
from reports.pages import review_queues as review_admin


def reviewer_pages() -> list:
    return [st.Page(grading.page, title="Grade", url_path="grade", icon=":material/rate_review:")]


def admin_pages() -> list:
    return [
        st.Page(review_admin.page, title="Review queues", url_path="review-queues", icon=":material/checklist:"),
        st.Page(review_analysis.page, title="Human review", url_path="human-review", icon=":material/groups:"),
        *reviewer_pages(),
    ]


def __getattr__(name: str) -> list:
    if name == "ADMIN_PAGES":
        return admin_pages()
    if name == "REVIEWER_PAGES":
        return reviewer_pages()
    raise AttributeError(name)
