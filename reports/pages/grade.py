"""The grading page: one item at a time, the rubric as a form (Enter submits), skip and undo.

Layout only: harness.review hands out items and stores grades, reports.review_views says what to show.
Model text is drawn with st.text (never Markdown or HTML). The page always asks the store for the
reviewer's next item, so it resumes where they left off, on any machine.
"""

from __future__ import annotations

import time

import streamlit as st

from harness import review
from harness.errors import HarnessError
from harness.records.review import Account, Queue, ReviewItem
from harness.store import Store
from reports import ui
from reports.review_views import comment_label, item_view, progress_text, questions, queue_label


def current_account() -> Account:
    user = st.session_state.get("user")
    if not user:
        st.stop()
    return Account(user["name"], user["role"])


def admin_account() -> Account | None:
    """The logged-in admin; for anyone else an error on the page and None (the page then stops)."""
    account = current_account()
    if account.role != "admin":
        st.error("This page is for admins.")
        return None
    return account


def page() -> None:
    ui.render_page(_render)


def _render(store: Store) -> None:
    account = current_account()
    st.title("Grade")
    state = review.desk(store, account, st.session_state.get("grade_queue"),
                        last=st.session_state.get("grade_last_skipped"),
                        prefer=st.session_state.pop("grade_prefer", None))
    if state.queue is None:
        st.info("No review queue is assigned to you yet. Come back when an admin has created one.")
        return
    by_id = {q.queue_id: q for q in state.queues}
    st.session_state["grade_queue"] = state.queue.queue_id
    st.selectbox("Queue", list(by_id), key="grade_queue", format_func=lambda q: queue_label(by_id[q], account))
    queue, item = state.queue, state.item
    _flash()
    with st.expander("Instructions", expanded=True):
        st.markdown(queue.rubric.instructions)
    st.progress(state.progress.fraction, text=progress_text(state.progress, state.skipped))
    if item is None:
        st.success("All done in this queue: thank you!")
        _undo_button(store, queue, account)
        return
    _show_item(queue, item)
    _grade_form(store, queue, item, account)
    left, right, _ = st.columns([1, 1, 4])
    if left.button("Skip for now", key=f"skip-{item.item_id}"):
        review.skip(store, queue, item.item_id, account.name)
        st.session_state["grade_last_skipped"] = item.item_id
        st.rerun()
    with right:
        _undo_button(store, queue, account)


def _flash() -> None:
    refused = st.session_state.pop("grade_refused", None)
    if refused:
        st.warning(refused)
    message = st.session_state.pop("grade_flash", None)
    if message:
        st.toast(message)


def _show_item(queue: Queue, item: ReviewItem) -> None:
    view = item_view(queue, item)
    st.session_state.setdefault(f"shown-{item.item_id}", time.monotonic())
    st.subheader("Input")
    with st.container(border=True):
        st.text(view.input)
    if view.reference is not None:
        st.subheader("Reference")
        with st.container(border=True):
            st.text(view.reference)
    columns = st.columns(len(view.outputs))
    for column, (title, text) in zip(columns, view.outputs, strict=True):
        with column:
            st.subheader(title)
            with st.container(border=True):
                st.text(text)


def _grade_form(store: Store, queue: Queue, item: ReviewItem, account: Account) -> None:
    rubric = queue.rubric
    with st.form(f"grade-{item.item_id}", enter_to_submit=True):
        for question in questions(rubric, item.item_id):
            st.radio(question.label, question.choices, index=None, horizontal=True, key=question.key,
                     format_func=rubric.choice_label)
        label = comment_label(rubric)
        if label:
            st.text_input(label, key=f"comment-{item.item_id}")
        st.form_submit_button("Submit grade", type="primary", on_click=_submit, args=(store, queue, item, account))
    problem = st.session_state.pop(f"grade_problem-{item.item_id}", None)
    if problem:
        st.warning(problem)


def _submit(store: Store, queue: Queue, item: ReviewItem, account: Account) -> None:
    """The submit button's callback: it runs before the next page run asks for the reviewer's item, so a grade
    for an item that is no longer theirs to show is still taken, and stored or refused out loud."""
    answers = {q.name: st.session_state.get(q.key) for q in questions(queue.rubric, item.item_id)}
    given = {k: v for k, v in answers.items() if v is not None}
    comment = st.session_state.get(f"comment-{item.item_id}") if comment_label(queue.rubric) else None
    elapsed = time.monotonic() - st.session_state.get(f"shown-{item.item_id}", time.monotonic())
    try:
        outcome = review.submit(store, queue, item.item_id, account.name, given, comment, round(elapsed, 1))
    except HarnessError as exc:
        st.session_state[f"grade_problem-{item.item_id}"] = str(exc)
        return
    key = "grade_refused" if outcome == "full" else "grade_flash"  # a refusal stays on the page, not a toast
    st.session_state[key] = review.submit_message(outcome, queue)


def _undo_button(store: Store, queue: Queue, account: Account) -> None:
    if st.button("Undo last grade", key=f"undo-{queue.queue_id}"):
        item = review.undo_last(store, queue, account.name)
        if item is None:
            st.session_state["grade_flash"] = "Nothing to undo"
        else:
            st.session_state["grade_prefer"] = item.item_id
            st.session_state["grade_flash"] = "Last grade removed: grade it again"
        st.rerun()
