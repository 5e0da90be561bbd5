"""The review flow in Streamlit's AppTest: login gate, grading single and pairwise items, logout, admin pages."""

from __future__ import annotations

from pathlib import Path

import pytest
from pg_server import address_text
from review_seed import CANDIDATES, RUN_ID, SUITE
from streamlit.testing.v1 import AppTest

from harness import review
from harness.records.review import Account
from harness.review.rubrics import load_rubric

APP = Path(__file__).resolve().parents[1] / "app.py"
USERS = ("alice", "bob", "boss")


@pytest.fixture
def setup(seeded_store, monkeypatch):
    """A seeded store with two queues, a file or a team store (every test here runs on both back-ends)."""
    store, passwords = seeded_store(USERS)
    store.transaction(lambda con: con.execute("UPDATE reviewers SET role = 'admin' WHERE name = 'boss'"))
    monkeypatch.setenv("HARNESS_DB", address_text(store.path))
    for name, rubric, mode in (("single-blind", "likert", "single"), ("pair-blind", "pairwise", "pairwise")):
        review.create_queue(store, review.QueueRequest(RUN_ID, SUITE, load_rubric(rubric), mode=mode, sample=4,
                                                       overlap=2, reviewers=["alice", "bob"], name=name))
    return store, passwords


def page_text(at: AppTest) -> str:
    """Everything the app sent to the browser for this run (element protos, main and sidebar)."""
    parts: list[str] = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


def log_in(at: AppTest, name: str, password: str) -> None:
    at.text_input(key="login_name").input(name)
    at.text_input(key="login_password").input(password)
    at.button[0].click()
    at.run()


def submit(at: AppTest, answers: dict[str, str]) -> None:
    for radio in at.radio:
        question = radio.key.rsplit("-", 1)[-1]
        radio.set_value(answers[question])
    next(b for b in at.button if b.label == "Submit grade").click()
    at.run()
    assert not at.exception, at.exception


def test_login_required_then_grade_single_and_pairwise_then_log_out(setup):
    store, passwords = setup
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    # nothing but the login form
    assert [e.type for e in at.main if e.type != "main"] == ["title", "form", "text_input", "text_input", "button",
                                                            "caption"]
    assert len(at.sidebar) == 0 and "user" not in at.session_state
    assert "Summarise note" not in page_text(at) and "single-blind" not in page_text(at)
    log_in(at, "alice", "wrong")
    assert at.error[0].value.startswith("wrong name or password") and "user" not in at.session_state

    log_in(at, "alice", passwords["alice"])
    assert at.session_state["user"] == {"name": "alice", "role": "reviewer"}
    at.selectbox(key="grade_queue").set_value("single-blind").run()
    for i in range(3):
        assert at.progress[0].proto.text.startswith(f"{i} of 8 graded")
        text = page_text(at)
        assert not any(c in text for c in CANDIDATES)  # blind
        assert "Output" in text and "<script>" not in [m.value for m in at.markdown]
        submit(at, {"overall": "4", "correctness": "5", "fluency": "3"})
    at.selectbox(key="grade_queue").set_value("pair-blind").run()
    for i in range(3):
        assert at.progress[0].proto.text.startswith(f"{i} of 4 graded")
        assert [s.value for s in at.subheader][-2:] == ["Output A", "Output B"]
        assert not any(c in page_text(at) for c in CANDIDATES)
        submit(at, {"overall": "A", "correctness": "tie"})
    at.sidebar.button(key="logout").click().run()
    assert "user" not in at.session_state and at.title[0].value == "Log in"

    stored = store.query("SELECT queue_id, reviewer, overall FROM review_grades ORDER BY queue_id")
    assert stored.groupby("queue_id").size().to_dict() == {"pair-blind": 3, "single-blind": 3}
    assert set(stored["reviewer"]) == {"alice"}
    assert sorted(stored["overall"]) == ["4", "4", "4", "A", "A", "A"]

    # a second reviewer gets the same items (overlap 2) but never sees the first one's grades
    bob = AppTest.from_file(str(APP), default_timeout=60)
    bob.run()
    log_in(bob, "bob", passwords["bob"])
    bob.selectbox(key="grade_queue").set_value("single-blind").run()
    assert bob.progress[0].proto.text.startswith("0 of 8 graded")
    alice_items = set(store.query("SELECT item_id FROM review_grades WHERE queue_id = 'single-blind'")["item_id"])
    shown = bob.radio[0].key.split("-")[1]
    assert shown in alice_items
    assert all(r.value is None for r in bob.radio)
    assert "alice" not in page_text(bob)


def test_grading_rejects_an_incomplete_form_and_supports_skip_and_undo(setup):
    _, passwords = setup
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    log_in(at, "alice", passwords["alice"])
    at.selectbox(key="grade_queue").set_value("pair-blind").run()
    first = at.radio[0].key
    next(b for b in at.button if b.label == "Submit grade").click()
    at.run()
    assert "answer 'overall'" in at.warning[0].value and at.radio[0].key == first
    next(b for b in at.button if b.label == "Skip for now").click()
    at.run()
    assert at.radio[0].key != first and "1 skipped" in at.progress[0].proto.text
    second = at.radio[0].key
    submit(at, {"overall": "B", "correctness": "B"})
    next(b for b in at.button if b.label == "Undo last grade").click()
    at.run()
    assert at.radio[0].key == second and at.progress[0].proto.text.startswith("0 of")


def test_admin_sees_review_pages_and_a_reviewer_does_not(setup):
    _, passwords = setup
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    log_in(at, "boss", passwords["boss"])
    assert at.session_state["user"]["role"] == "admin"
    assert at.title[0].value == "Leaderboard"  # the report's default page; review pages are in the navigation
    reviewer = AppTest.from_file(str(APP), default_timeout=60)
    reviewer.run()
    log_in(reviewer, "alice", passwords["alice"])
    assert reviewer.title[0].value == "Grade"  # a reviewer's only page (the browser test checks the navigation)
    assert "Leaderboard" not in page_text(reviewer)


def _admin_page(module: str) -> None:
    import importlib

    import streamlit as st

    st.session_state["user"] = {"name": "boss", "role": "admin"}
    importlib.import_module(module).page()


@pytest.mark.parametrize("module, title", [("reports.pages.review_queues", "Review queues"),
                                           ("reports.pages.human_review", "Human review")])
def test_admin_pages_render(setup, module, title):
    store, _ = setup
    queue = review.get_queue(store, "single-blind", Account("boss", "admin"))
    for name in ("alice", "bob"):
        item = review.next_item(store, queue, name)
        review.submit(store, queue, item.item_id, name, {"overall": "3", "correctness": "3", "fluency": "3"})
    at = AppTest.from_function(_admin_page, args=(module,), default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    assert at.title[0].value == title
    if title == "Review queues":
        assert any(b.proto.label == "Download grades (CSV)" for b in at.get("download_button"))
    else:
        assert "Agreement between reviewers" in [s.value for s in at.subheader]


def test_admin_creates_a_queue_and_an_account_in_the_app(setup):
    from harness.review.auth import login

    store, _ = setup
    at = AppTest.from_function(_admin_page, args=("reports.pages.review_queues",), default_timeout=60)
    at.run()
    assert at.selectbox(key="rq_run").value == RUN_ID and at.selectbox(key="rq_suite").value == SUITE
    next(s for s in at.selectbox if s.label == "Rubric").set_value("pass_fail")
    next(n for n in at.number_input if n.label == "Examples to sample").set_value(3)
    next(t for t in at.text_input if t.label == "Queue name (optional)").input("from-app")
    next(b for b in at.button if b.label == "Create queue").click()
    at.run()
    assert not at.exception and at.success[0].value == "Created queue from-app with 6 items."
    queue = review.get_queue(store, "from-app", Account("boss", "admin"))
    assert queue.blind and queue.rubric.kind == "pass_fail" and queue.created_by == "boss"

    next(t for t in at.text_input if t.label == "Name").input("dave")
    next(b for b in at.button if b.label == "Create account / reset password").click()
    at.run()
    password = at.code[-1].value
    assert login(store, "dave", password).account.role == "reviewer"


def _old_item_ids(store, queue_id: str) -> set[str]:
    """The ids the old code gave items: an unsalted hash of queue, example and candidate labels (guessable by
    anyone who knows the shortlist). Computed for every candidate combination a reviewer could try."""
    import hashlib
    from itertools import combinations

    examples = store.query("SELECT DISTINCT example_id FROM review_items WHERE queue_id = ?", [queue_id])
    labels = [f"{c}:base" for c in CANDIDATES]
    groups = [[label] for label in labels] + [sorted(p) for p in combinations(labels, 2)]
    return {hashlib.sha256("|".join([queue_id, e, *g]).encode()).hexdigest()[:12]
            for e in examples["example_id"] for g in groups}


def test_blind_pages_hold_no_id_derivable_from_the_candidates(setup):
    store, passwords = setup
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.run()
    log_in(at, "alice", passwords["alice"])
    for queue_id in ("single-blind", "pair-blind"):
        at.selectbox(key="grade_queue").set_value(queue_id).run()
        guessable = _old_item_ids(store, queue_id)
        for _ in range(2):
            text = page_text(at)
            assert not any(g in text for g in guessable)
            assert not any(c in text for c in CANDIDATES)
            shown = {k.split("-")[1] for k in (r.key for r in at.radio) if k and k.count("-") >= 2}
            stored = set(store.query("SELECT item_id FROM review_items WHERE queue_id = ?", [queue_id])["item_id"])
            assert shown and shown <= stored and not (shown & guessable)  # the page's ids are the random ones
            next(b for b in at.button if b.label == "Skip for now").click()
            at.run()
