"""Twenty reviewers grading at once while a run writes results: no grade lost, none duplicated.

The reviewers are threads, as sessions of the Streamlit server are, and each goes through the same calls
as the grading page (review.next_item, review.submit), one short transaction each. A second thread
writes work items through Store.write_item in a loop meanwhile.
"""

from __future__ import annotations

import threading

from review_seed import N_EXAMPLES, RUN_ID, SUITE, item_result, seeded_copy

from harness import review
from harness.rubrics import load_rubric

N_REVIEWERS = 20
PER_REVIEWER = 50


def test_twenty_reviewers_and_a_writing_run(tmp_path):
    store, _ = seeded_copy(tmp_path / "busy.duckdb")
    write_outputs_for_50(store)
    queue, items = review.create_queue(store, review.QueueRequest(
        RUN_ID, "wide", load_rubric("pass_fail"), sample=PER_REVIEWER, overlap=N_REVIEWERS, candidates=["zephyrine"]))
    assert len(items) == PER_REVIEWER
    done = threading.Event()
    errors: list[BaseException] = []
    written = [0]

    def writer() -> None:
        try:
            while not done.is_set():
                store.write_item(item_result("zephyrine", f"v{written[0] % 3}", suite=SUITE, n=N_EXAMPLES))
                written[0] += 1
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    def reviewer(name: str) -> None:
        try:
            for _ in range(PER_REVIEWER):
                item = review.next_item(store, queue, name)
                assert item is not None
                assert review.submit(store, queue, item.item_id, name, {"overall": "pass"})
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=reviewer, args=(f"r{i:02d}",)) for i in range(N_REVIEWERS)]
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
    counts = store.query("SELECT count(*) AS n, count(DISTINCT (item_id, reviewer)) AS d FROM review_grades").iloc[0]
    assert (counts["n"], counts["d"]) == (N_REVIEWERS * PER_REVIEWER, N_REVIEWERS * PER_REVIEWER)
    per_item = store.query("SELECT item_id, count(*) AS n FROM review_grades GROUP BY item_id")
    assert len(per_item) == PER_REVIEWER and (per_item["n"] == N_REVIEWERS).all()
    assert review.next_item(store, queue, "r00") is None


def test_double_submit_at_the_same_moment_stores_one(tmp_path):
    store, _ = seeded_copy(tmp_path / "double.duckdb")
    queue, _ = review.create_queue(store, review.QueueRequest(RUN_ID, SUITE, load_rubric("pass_fail"), sample=1))
    item = review.next_item(store, queue, "alice")
    barrier = threading.Barrier(4)
    stored: list[bool] = []

    def click() -> None:
        barrier.wait()
        stored.append(review.submit(store, queue, item.item_id, "alice", {"overall": "pass"}))

    threads = [threading.Thread(target=click) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(stored) == [False, False, False, True]
    assert store.query("SELECT count(*) AS n FROM review_grades")["n"][0] == 1
    assert not review.submit(store, queue, item.item_id, "alice", {"overall": "pass"})  # and once more later
    assert store.query("SELECT count(*) AS n FROM review_grades")["n"][0] == 1


def write_outputs_for_50(store) -> None:
    """A suite 'wide' with 50 examples for one candidate."""
    store.write_item(item_result("zephyrine", "base", suite="wide", n=PER_REVIEWER))
