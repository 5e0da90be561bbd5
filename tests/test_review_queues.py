"""Review queues: sampling strategies, assignment with overlap, grades, skip and undo (claims: test_review_claims)."""

from __future__ import annotations

from collections import Counter

import pytest
from review_seed import CANDIDATES, N_EXAMPLES, RUN_ID, SUITE, write_outputs

from harness import review
from harness.errors import HarnessError
from harness.records.review import Account
from harness.review.rubrics import load_rubric
from harness.store import reviews

A, B = (f"{c}:base" for c in CANDIDATES)


@pytest.fixture
def store(seeded_store):
    """A seeded store, a file or a team store (every test here runs on both back-ends)."""
    return seeded_store(("alice", "bob", "carol"))[0]


def make(store, mode="single", **kwargs):
    rubric = load_rubric("pairwise" if mode == "pairwise" else "pass_fail")
    return review.create_queue(store, review.QueueRequest(RUN_ID, SUITE, rubric, mode=mode, **kwargs))


def grade_all(store, queue, reviewer, answer="pass"):
    graded = []
    while (item := review.next_item(store, queue, reviewer)) is not None:
        assert item.item_id not in graded  # never the same item twice
        assert review.submit(store, queue, item.item_id, reviewer, {"overall": answer}) == "stored"
        graded.append(item.item_id)
    return graded


def test_single_queue_items(store):
    queue, items = make(store, sample=4, seed=7)
    assert len(items) == 4 * 2  # one item per sampled example and candidate
    assert sorted(i.position for i in items) == list(range(8))
    assert len({i.example_id for i in items}) == 4
    assert all(len(i.item_id) >= 12 and not any(c in i.item_id for c in CANDIDATES) for i in items)
    again, _ = make(store, sample=4, seed=7)
    assert {i.example_id for i in reviews.items(store, again.queue_id)} == \
        {i.example_id for i in items}  # the seed fixes the sample
    with_ref = {i.example_id: (i.input, i.output_a) for i in items if i.candidate_a == CANDIDATES[0]}
    assert all("Summarise note" in text for text, _ in with_ref.values())


def test_pairwise_positions_are_random_and_recorded(store):
    queue, items = make(store, mode="pairwise", sample=N_EXAMPLES, seed=1)
    assert len(items) == N_EXAMPLES and all(i.pairwise for i in items)
    assert {i.swapped for i in items} == {True, False}
    first, second = (c.candidate for c in queue.candidates)
    for item in items:
        assert item.candidate_a == (second if item.swapped else first)  # A shows the second exactly when swapped
        assert item.candidate_b == (first if item.swapped else second)
        assert item.output_a != item.output_b


def test_stratified_keeps_label_proportions(store):
    refs = ["pos"] * 30 + ["neg"] * 10
    write_outputs(store, "labels", refs, {A: refs, B: ["pos"] * 40})
    _, items = review.create_queue(store, review.QueueRequest(RUN_ID, "labels", load_rubric("pass_fail"),
                                                              sample=8, strategy="stratified", candidates=[A]))
    assert Counter(i.reference for i in items) == Counter({"pos": 6, "neg": 2})


def test_disagreement_picks_the_examples_where_candidates_differ(store):
    refs = [f"answer {i}" for i in range(20)]
    other = [r if i not in (3, 11, 17) else f"something else {i}" for i, r in enumerate(refs)]
    write_outputs(store, "dis", refs, {A: refs, B: other})
    _, items = review.create_queue(store, review.QueueRequest(RUN_ID, "dis", load_rubric("pairwise"),
                                                              mode="pairwise", sample=3, strategy="disagreement"))
    assert {i.example_id for i in items} == {"dis-3", "dis-11", "dis-17"}
    assert all(i.priority > 1.0 for i in items)  # text distance plus metric spread


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "pairwise", "candidates": [A]}, "at least two candidates"),
    ({"candidates": ["nobody:base"]}, r"--candidates nobody:base: not in run .* \(available: "),
    ({"reviewers": ["dave"]}, "'dave' has no account"),
    ({"reviewers": ["alice"], "overlap": 2}, "--overlap 2 needs at least 2 reviewers"),
    ({"strategy": "best"}, "--strategy best"),
    ({"sample": 0}, "at least 1"),
])
def test_bad_requests(store, kwargs, message):
    kwargs = dict(kwargs)  # the parameter's dict is shared by both back-ends' runs: never change it
    mode = kwargs.pop("mode", "single")
    with pytest.raises(HarnessError, match=message):
        make(store, mode=mode, **kwargs)


def test_rubric_must_fit_the_mode_and_names_are_unique(store):
    with pytest.raises(HarnessError, match="pairwise mode needs a pairwise rubric"):
        review.create_queue(store, review.QueueRequest(RUN_ID, SUITE, load_rubric("likert"), mode="pairwise"))
    make(store, name="week1")
    with pytest.raises(HarnessError, match="queue 'week1' already exists"):
        make(store, name="week1")
    with pytest.raises(HarnessError, match="no predictions for suite 'nope'"):
        review.create_queue(store, review.QueueRequest(RUN_ID, "nope", load_rubric("likert")))


def test_overlap_gives_each_item_k_reviewers_and_nobody_twice(store):
    queue, items = make(store, sample=3, overlap=2, reviewers=["alice", "bob", "carol"])
    assert len(grade_all(store, queue, "alice")) == 6
    assert review.progress(store, queue, "alice").fraction == 1.0
    assert len(grade_all(store, queue, "bob")) == 6
    assert grade_all(store, queue, "carol") == []  # every item has its two grades
    grades = store.query("SELECT item_id, reviewer FROM review_grades")
    assert grades.groupby("item_id").size().eq(2).all() and len(grades) == 12
    assert not grades.duplicated().any()


def test_reviewers_see_only_their_queues(store):
    mine, _ = make(store, sample=2, reviewers=["alice"], name="alice-only")
    open_queue, _ = make(store, sample=2, name="everyone")
    assert {q.queue_id for q in review.queues_for(store, Account("bob", "reviewer"))} == {"everyone"}
    assert {q.queue_id for q in review.queues_for(store, Account("alice", "reviewer"))} == {"alice-only", "everyone"}
    assert len(review.queues_for(store, Account("root", "admin"))) == 2
    with pytest.raises(HarnessError, match="not assigned to bob"):
        review.get_queue(store, "alice-only", Account("bob", "reviewer"))
    review.assign(store, "alice-only", ["alice", "bob"])
    assert review.get_queue(store, "alice-only", Account("bob", "reviewer")).reviewers == ["alice", "bob"]


def test_double_submit_stores_one_and_keeps_the_first(store):
    queue, _ = make(store, sample=2)
    item = review.next_item(store, queue, "alice")
    assert review.submit(store, queue, item.item_id, "alice", {"overall": "pass"}, comment=" ok ") == "stored"
    assert review.submit(store, queue, item.item_id, "alice", {"overall": "fail"}) == "duplicate"
    rows = store.query("SELECT overall, comment FROM review_grades")
    assert rows.values.tolist() == [["pass", "ok"]]
    with pytest.raises(HarnessError, match="answer 'overall'"):
        review.submit(store, queue, item.item_id, "bob", {})
    with pytest.raises(HarnessError, match="not in queue"):
        review.submit(store, queue, "nope", "bob", {"overall": "pass"})


def test_skip_comes_back_last_and_undo_reopens_the_item(store):
    queue, items = make(store, sample=2)
    first = review.next_item(store, queue, "alice")
    review.skip(store, queue, first.item_id, "alice")
    second = review.next_item(store, queue, "alice", last=first.item_id)
    assert second.item_id != first.item_id
    review.submit(store, queue, second.item_id, "alice", {"overall": "fail"})
    undone = review.undo_last(store, queue, "alice")
    assert undone.item_id == second.item_id
    assert review.next_item(store, queue, "alice", prefer=undone.item_id).item_id == second.item_id
    assert review.undo_last(store, queue, "alice") is None  # nothing left to undo
    graded = grade_all(store, queue, "alice")
    assert graded[-1] == first.item_id and len(graded) == len(items)  # the skipped item came back last
    assert review.skipped_left(store, queue, "alice") == 0


def test_grades_never_touch_machine_scores(store):
    before = store.query("SELECT * FROM scores ORDER BY ALL")
    stats = store.query("SELECT count(*) AS n FROM example_stats")
    queue, _ = make(store, sample=3)
    grade_all(store, queue, "alice", "fail")
    assert store.query("SELECT * FROM scores ORDER BY ALL").equals(before)
    assert store.query("SELECT count(*) AS n FROM example_stats").equals(stats)
