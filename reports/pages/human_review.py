"""Admin page "Human review": human scores, win rates, Bradley-Terry, agreement, metric correlations.

Layout only: harness.review.analysis computes every table.
"""

from __future__ import annotations

import streamlit as st

from harness import review
from harness.review.analysis import analyse, grades, metric_correlations
from harness.store import Store
from reports import ui
from reports.pages.grade import admin_account

RESAMPLES = 1000


def page() -> None:
    ui.render_page(_render)


def _render(store: Store) -> None:
    account = admin_account()
    if account is None:
        return
    st.title("Human review")
    queues = review.queues_for(store, account)
    if not queues:
        st.info("No review queues yet. An admin creates one on *Review queues* or with `harness review create`.")
        return
    by_id = {q.queue_id: q for q in queues}
    queue = by_id[st.selectbox("Queue", list(by_id), key="hr_queue")]
    criterion = st.selectbox("Question", [n for n, _ in queue.rubric.questions()], key="hr_criterion")
    result = analyse(store, queue, criterion, RESAMPLES)
    st.caption(f"{len(result.grades)} grades on {result.grades['item_id'].nunique()} items; "
               f"intervals: {RESAMPLES} bootstrap resamples of examples (single) or items (pairwise), 95%.")
    if result.scores is not None:
        st.subheader("Human score per candidate")
        ui.table(result.scores, f"human_scores_{queue.queue_id}", "hr_scores")
    if result.win_rates is not None:
        st.subheader("Win rate (ties count half)")
        ui.table(result.win_rates, f"win_rates_{queue.queue_id}", "hr_wins")
        st.subheader("Bradley–Terry log-strength (mean 0)")
        ui.table(result.strengths, f"bradley_terry_{queue.queue_id}", "hr_bt")
    st.subheader("Agreement between reviewers")
    ui.table(result.agreement, f"agreement_{queue.queue_id}", "hr_agreement")
    st.subheader("Correlation with automatic metrics, per suite")
    frames = {q.queue_id: grades(store, q, criterion) for q in queues if criterion in dict(q.rubric.questions())}
    ui.table(metric_correlations(store, list(by_id.values()), frames), "human_metric_correlation", "hr_corr")
    st.caption("Pooled over every queue that asks this question. Pairwise queues correlate the preference for "
               "the first candidate with the metric difference (first − second).")
