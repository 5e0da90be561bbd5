"""Twenty reviewers grading at once while a run writes results: every item gets exactly `overlap` grades.

The reviewers are threads, as sessions of the Streamlit server are, and each goes through the same calls
as the grading page (review.next_item, review.submit), one short transaction each. The overlap (3) is far
below the number of reviewers, so a grade beyond it would show. A second thread writes work items through
Store.write_item meanwhile. Two app processes and a real `harness run`: tests/test_review_claims.py.
"""

from __future__ import annotations

import threading

import pytest
from review_seed import N_EXAMPLES, RUN_ID, SUITE, item_result

from harness import review
from harness.review.rubrics import load_rubric

N_REVIEWERS = 20
N_ITEMS = 50
OVERLAP = 3


@pytest.mark.parametrize("store_kind", ["file", pytest.param("team", marks=pytest.mark.slow)], indirect=True)
def test_twenty_reviewers_and_a_writing_run(seeded_store):  # on both back-ends (about 40 s on a team store: slow)
    store, _ = seeded_store()
    write_outputs_for_50(store)
    queue, items = review.create_queue(store, review.QueueRequest(
        RUN_ID, "wide", load_rubric("pass_fail"), sample=N_ITEMS, overlap=OVERLAP, candidates=["zephyrine"]))
    assert len(items) == N_ITEMS
    done = threading.Event()
    errors: list[BaseException] = []
    written = [0]
    graded: dict[str, list[str]] = {f"r{i:02d}": [] for i in range(N_REVIEWERS)}

    def writer() -> None:
        try:
            while not done.is_set():
                store.write_item(item_result("zephyrine", f"v{written[0] % 3}", suite=SUITE, n=N_EXAMPLES))
                written[0] += 1
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    def reviewer(name: str) -> None:
        try:
            while (item := review.next_item(store, queue, name)) is not None:
                assert item.item_id not in graded[name]  # never the same item twice
                assert review.submit(store, queue, item.item_id, name, {"overall": "pass"}) == "stored"
                graded[name].append(item.item_id)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=reviewer, args=(name,)) for name in graded]
    run = threading.Thread(target=writer)
    run.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    done.set()
    run.join(timeout=60)
    assert not errors, errors[:3]
    assert written[0] > 0  # the run really wrote while reviewers graded
    grades = store.query("SELECT item_id, reviewer FROM review_grades")
    assert len(grades) == N_ITEMS * OVERLAP and not grades.duplicated().any()
    assert sorted(map(tuple, grades.values.tolist())) == sorted((i, r) for r, ids in graded.items() for i in ids)
    per_item = grades.groupby("item_id").size()
    assert len(per_item) == N_ITEMS and (per_item == OVERLAP).all()
    assert all(review.next_item(store, queue, name) is None for name in graded)


def test_double_submit_at_the_same_moment_stores_one(seeded_store):  # on both back-ends
    store, _ = seeded_store()
    queue, _ = review.create_queue(store, review.QueueRequest(RUN_ID, SUITE, load_rubric("pass_fail"), sample=1))
    item = review.next_item(store, queue, "alice")
    barrier = threading.Barrier(4)
    stored: list[str] = []

    def click() -> None:
        barrier.wait()
        stored.append(review.submit(store, queue, item.item_id, "alice", {"overall": "pass"}))

    threads = [threading.Thread(target=click) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(stored) == ["duplicate", "duplicate", "duplicate", "stored"]
    assert store.query("SELECT count(*) AS n FROM review_grades")["n"][0] == 1
    assert review.submit(store, queue, item.item_id, "alice", {"overall": "pass"}) == "duplicate"  # once more later
    assert store.query("SELECT count(*) AS n FROM review_grades")["n"][0] == 1


def write_outputs_for_50(store) -> None:
    """A suite 'wide' with 50 examples for one candidate."""
    store.write_item(item_result("zephyrine", "base", suite="wide", n=N_ITEMS))
