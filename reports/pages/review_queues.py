"""Admin page "Review queues": progress per queue and reviewer, CSV export, new queues, accounts. Layout only."""

from __future__ import annotations

from urllib.parse import quote

import streamlit as st

from harness import review
from harness.errors import HarnessError
from harness.records.review import MODES, ROLES, STRATEGIES
from harness.review import auth as review_auth
from harness.review.analysis import export_csv, progress_tables
from harness.review.rubrics import builtin_rubrics, load_rubric
from harness.store import Store
from reports import ui
from reports.access import EXPORT_PATH, served_with_login
from reports.pages.grade import admin_account
from reports.review_views import queue_summary, run_choices


def page() -> None:
    ui.render_page(_render)


def _render(store: Store) -> None:
    account = admin_account()
    if account is None:
        return
    st.title("Review queues")
    queues = review.queues_for(store, account)
    _progress(store, queues)
    _create_form(store, account.name)
    _accounts(store)


def _progress(store: Store, queues: list) -> None:
    st.subheader("Progress")
    if not queues:
        st.info("No queues yet: create one below or with `harness review create`.")
        return
    per_queue, per_reviewer = progress_tables(store)
    ui.table(per_queue, "review_progress", "rq_progress")
    st.caption("Per reviewer")
    ui.table(per_reviewer, "review_reviewers", "rq_reviewers")
    with st.expander("How the queues were made"):
        st.dataframe(queue_summary(queues), hide_index=True)
    by_id = {q.queue_id: q for q in queues}
    chosen = st.selectbox("Export grades of", list(by_id), key="rq_export")
    if served_with_login():  # the server's own route: an admin's live session only, made when asked for
        st.markdown(f'<a href="{EXPORT_PATH}?queue={quote(chosen)}" target="_self" download>'
                    "Download grades (CSV)</a>", unsafe_allow_html=True)
    else:
        st.download_button("Download grades (CSV)", lambda: export_csv(store, by_id[chosen]).encode("utf-8"),
                           f"grades_{chosen}.csv", "text/csv", key="rq_export_csv", on_click="ignore")


def _create_form(store: Store, admin: str) -> None:
    st.subheader("New queue")
    runs = list(store.runs()["run_id"])
    if not runs:
        st.info("A queue samples a run's outputs; there are no runs yet.")
        return
    run_id = st.selectbox("Run", runs, key="rq_run")
    choices = run_choices(store.table("items", [run_id]))
    if not choices:
        st.info("This run has no finished work items yet.")
        return
    suite = st.selectbox("Suite", list(choices), key="rq_suite")
    reviewers = [a.name for a in review_auth.accounts(store)]
    rubrics = list(builtin_rubrics())
    with st.form("rq_create"):
        mode = st.radio("Mode", MODES, horizontal=True)
        rubric = st.selectbox("Rubric", rubrics,
                              help="Built-in rubrics (harness/review/builtin/); the CLI also takes a path.")
        candidates = st.multiselect("Candidates (none: all)", choices[suite])
        left, mid, right = st.columns(3)
        sample = left.number_input("Examples to sample", 1, 10_000, 20)
        overlap = mid.number_input("Grades per item", 1, 20, 1)
        strategy = right.selectbox("Strategy", STRATEGIES)
        chosen = st.multiselect("Reviewers (none: every reviewer)", reviewers)
        blind = st.checkbox("Blind (hide candidate names)", value=True)
        name = st.text_input("Queue name (optional)")
        submitted = st.form_submit_button("Create queue", type="primary")
    if submitted:
        request = review.QueueRequest(run_id, suite, load_rubric(rubric), mode, int(sample), strategy, int(overlap),
                                      blind, candidates, chosen, name.strip() or None, created_by=admin)
        try:
            queue, items = review.create_queue(store, request)
        except HarnessError as exc:
            st.error(str(exc))
            return
        st.success(f"Created queue {queue.queue_id} with {len(items)} items.")


def _accounts(store: Store) -> None:
    st.subheader("Reviewers")
    found = review_auth.accounts(store)
    if found:
        st.dataframe([{"name": a.name, "role": a.role} for a in found], hide_index=True)
    else:
        st.caption("No accounts: the app runs in single-user mode without a login. Adding one turns login on.")
    with st.form("rq_account"):
        name = st.text_input("Name")
        role = st.radio("Role", ROLES, horizontal=True)
        reset = st.checkbox("Reset the password of an existing account")
        submitted = st.form_submit_button("Create account / reset password")
    if submitted:
        try:
            password = (review_auth.reset_password(store, name) if reset
                        else review_auth.add_account(store, name.strip(), role))
        except HarnessError as exc:
            st.error(str(exc))
            return
        st.success(f"One-time password for {name} (shown once; only a salted hash is stored):")
        st.code(password, language=None)
