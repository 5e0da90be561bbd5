"""The fast paths of a grade's commit keep their promises: on a file, grades of many threads committed together
(harness/store/group_commit.py) with the store handed on first come, first served (filelock.TurnQueue); on a
team store, one PostgreSQL function call per grade (harness/store/team_direct.py). Exactly one grade per
reviewer and item, never more grades than the queue's overlap, and a claim taken through the other path
still holds its slot.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pg_server as pg
import pytest
from review_seed import CANDIDATES, RUN_ID, SUITE, item_result

from harness import review
from harness.errors import HarnessError
from harness.records import RunRecord
from harness.review.rubrics import load_rubric
from harness.store import Store
from harness.store.filelock import TurnQueue
from harness.store.group_commit import Together, grouped

pg_server_fixture, team_address_fixture = pg.pg_server_fixture, pg.team_address_fixture  # fixtures


@pytest.fixture(params=["file", "team"])
def store(request, tmp_path) -> Store:
    if request.param == "file":
        target = tmp_path / "grades.duckdb"
    else:
        if pg.why_not():
            pytest.skip(pg.why_not())
        target = request.getfixturevalue("team_address")
    found = Store(target)
    found.start_run(RunRecord(RUN_ID, "t", "x.yaml", "{}", "hash", 0, None, None, "{}", "test"))
    for candidate in CANDIDATES:
        found.write_item(item_result(candidate, "base"))
    found.set_run_status(RUN_ID, "finished")
    return found


def _queue(store: Store, sample: int, overlap: int):
    return review.create_queue(store, review.QueueRequest(
        RUN_ID, SUITE, load_rubric("pass_fail"), sample=sample, overlap=overlap,
        candidates=[f"{CANDIDATES[0]}:base"]))


def _at_once(jobs: list) -> list:
    """Run every job in its own thread, released together; their results (an exception counts as one)."""
    start = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = jobs[i]()
        except Exception as exc:  # noqa: BLE001 - the test looks at it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.parametrize("overlap", [1, 3])
def test_concurrent_submits_store_one_grade_per_reviewer_and_item_within_the_overlap(store, overlap):
    queue, items = _queue(store, sample=3, overlap=overlap)
    reviewers = [f"r{i}" for i in range(8)]
    jobs = [(lambda name=name, item=item: review.submit(store, queue, item.item_id, name, {"overall": "pass"}))
            for name in reviewers for item in items for _ in range(2)]  # every grade twice: a double click
    outcomes = _at_once(jobs)
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    grades = store.query("SELECT item_id, reviewer FROM review_grades")
    assert not grades.duplicated().any()
    assert Counter(grades["item_id"]) == {item.item_id: overlap for item in items}
    assert Counter(outcomes)["stored"] == overlap * len(items)
    assert set(outcomes) <= {"stored", "duplicate", "full"}


def test_a_live_claim_keeps_its_slot_against_grades_without_one(store):
    queue, items = _queue(store, sample=1, overlap=2)
    held = review.next_item(store, queue, "holder")  # a claim, taken through a transaction
    assert held is not None and held.item_id == items[0].item_id
    outcomes = _at_once([(lambda name=name: review.submit(store, queue, held.item_id, name, {"overall": "pass"}))
                         for name in ("a", "b", "c", "d")])
    assert sorted(outcomes) == ["full", "full", "full", "stored"]
    assert review.submit(store, queue, held.item_id, "holder", {"overall": "fail"}) == "stored"
    assert review.submit(store, queue, held.item_id, "holder", {"overall": "pass"}) == "duplicate"
    grades = store.query("SELECT reviewer, overall FROM review_grades ORDER BY reviewer")
    assert len(grades) == 2 and "holder" in set(grades["reviewer"])
    assert grades.set_index("reviewer").loc["holder", "overall"] == "fail"  # the first grade stays
    assert store.query("SELECT count(*) AS n FROM review_claims")["n"].iloc[0] == 0  # the grade ended it


def test_a_grade_of_an_item_not_in_the_queue_is_refused(store):
    queue, _ = _queue(store, sample=1, overlap=1)
    with pytest.raises(HarnessError, match="not in queue"):
        review.submit(store, queue, "no-such-item", "a", {"overall": "pass"})


def test_a_grade_ends_the_reviewers_skip_and_claim_of_the_item(store):
    queue, items = _queue(store, sample=2, overlap=2)
    review.skip(store, queue, items[0].item_id, "a")
    held = review.next_item(store, queue, "a")  # the other item, now claimed
    assert held is not None and held.item_id == items[1].item_id
    outcomes = _at_once([lambda: review.submit(store, queue, items[0].item_id, "a", {"overall": "pass"}),
                         lambda: review.submit(store, queue, items[1].item_id, "a", {"overall": "pass"}),
                         lambda: review.submit(store, queue, items[1].item_id, "b", {"overall": "pass"})])
    assert outcomes == ["stored", "stored", "stored"]
    assert store.query("SELECT count(*) AS n FROM review_skips")["n"].iloc[0] == 0
    assert store.query("SELECT count(*) AS n FROM review_claims")["n"].iloc[0] == 0


def _insert_many(con, keys: list[int]) -> list[int]:
    if 3 in keys:
        raise HarnessError("three is refused")
    con.execute("INSERT INTO t SELECT unnest(?::INTEGER[])", [keys])
    return keys


@pytest.mark.parametrize("together", [False, True])
def test_a_grouped_call_that_raises_gets_its_error_alone(tmp_path, together):
    path = tmp_path / "group.duckdb"
    Store(path).query("SELECT 1 AS x")
    Store(path).transaction(lambda con: con.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)"))

    def insert(k: int):
        def fn(con):
            time.sleep(0.01)  # long enough for the other threads to queue behind the leader
            if k == 3:
                raise HarnessError("three is refused")
            con.execute("INSERT INTO t VALUES (?)", [k])
            return k
        return lambda: grouped(fn, path, together=Together(_insert_many, k) if together else None)

    results = _at_once([insert(k) for k in range(8)])
    assert isinstance(results[3], HarnessError)
    assert [r for i, r in enumerate(results) if i != 3] == [0, 1, 2, 4, 5, 6, 7]
    stored = Store(path).query("SELECT k FROM t ORDER BY k")["k"].tolist()
    assert stored == [0, 1, 2, 4, 5, 6, 7]


def test_the_turn_is_handed_on_in_the_order_threads_asked():
    turns = TurnQueue()
    assert turns.join() is None  # free: taken at once
    order: list[int] = []
    tickets = []
    for _ in range(5):
        tickets.append(turns.join())
        assert tickets[-1] is not None

    def wait(i: int) -> None:
        assert turns.wait(tickets[i], 5.0)
        order.append(i)
        turns.release()

    threads = [threading.Thread(target=wait, args=(i,)) for i in reversed(range(5))]
    for thread in threads:
        thread.start()
    assert not turns.try_acquire()
    turns.release()
    for thread in threads:
        thread.join()
    assert order == [0, 1, 2, 3, 4]
    assert turns.try_acquire()  # free again once every waiter had its turn
    late = turns.join()
    turns.leave(late)  # a waiter that gives up keeps nobody waiting
    turns.release()
    assert turns.try_acquire()
