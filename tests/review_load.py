"""Reviewers under load, as one Streamlit app server has them: threads in one process, each looping
review.next_item / review.submit the way the grading page does (one short transaction each).

Run as a script, it is one "app process" (tests start two); `spawn` starts it. It reports, as JSON, every
submit with what the harness answered, the latency of every call, and any exception. Some reviewers also
send stale grades (an item they never claimed, as from a page left open), which must be stored only while
the item has a free slot and otherwise be refused out loud.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from harness import review
from harness.records.review import Account, Queue
from harness.store import Store, reviews


@dataclass
class Record:
    submits: list[list[str]] = field(default_factory=list)  # [queue, item, reviewer, outcome, kind]
    next_s: list[float] = field(default_factory=list)
    submit_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, queue: Queue, item_id: str, reviewer: str, outcome: str, kind: str, next_s: float | None,
            submit_s: float) -> None:
        with self.lock:
            self.submits.append([queue.queue_id, item_id, reviewer, outcome, kind])
            self.submit_s.append(submit_s)
            if next_s is not None:
                self.next_s.append(next_s)


class Queues:
    """The queues open to the reviewers, oldest first, re-read when a reviewer runs out of work."""

    def __init__(self, store: Store, only: str | None):
        self.store, self.only = store, only
        self.item_ids: dict[str, list[str]] = {}

    def open_for(self, done: set[str]) -> Queue | None:
        found = review.queues_for(self.store, Account("load", "admin"))
        for queue in sorted(found, key=lambda q: (q.created_at, q.queue_id)):
            if queue.queue_id not in done and (self.only is None or queue.queue_id == self.only):
                return queue
        return None

    def items(self, queue: Queue) -> list[str]:
        if queue.queue_id not in self.item_ids:
            self.item_ids[queue.queue_id] = [i.item_id for i in reviews.items(self.store, queue.queue_id)]
        return self.item_ids[queue.queue_id]


def grade(store: Store, queues: Queues, name: str, rec: Record, until: float, stale_every: int,
          think_s: float) -> None:
    """Grade until no queue has work for this reviewer (until == 0) or until the clock passes `until`,
    reading each item for a random 0 to 2 * think_s seconds."""
    rng, done, count = random.Random(name), set(), 0
    queue = queues.open_for(done)
    while queue is not None and (not until or time.time() < until):
        if think_s:
            time.sleep(rng.uniform(0, 2 * think_s))
        t0 = time.perf_counter()
        item = review.next_item(store, queue, name)
        t1 = time.perf_counter()
        if item is None:
            done.add(queue.queue_id)
            queue = queues.open_for(done)
            continue
        outcome = review.submit(store, queue, item.item_id, name, {"overall": rng.choice(["pass", "fail"])})
        rec.add(queue, item.item_id, name, outcome, "claimed", t1 - t0, time.perf_counter() - t1)
        count += 1
        if stale_every and count % stale_every == 0:
            stale = rng.choice(queues.items(queue))
            t2 = time.perf_counter()
            outcome = review.submit(store, queue, stale, name, {"overall": "pass"})
            rec.add(queue, stale, name, outcome, "stale", None, time.perf_counter() - t2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--names", required=True, help="comma-separated reviewer names, one thread each")
    parser.add_argument("--queue", default=None, help="only this queue (default: every queue, oldest first)")
    parser.add_argument("--until", type=float, default=0.0, help="stop at this time.time() (default: when done)")
    parser.add_argument("--stale-every", type=int, default=0, help="every Nth grade, also one on a random item")
    parser.add_argument("--think", type=float, default=0.0, help="mean seconds a reviewer reads an item")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    store, rec = Store(args.db), Record()
    queues = Queues(store, args.queue)

    def work(name: str) -> None:
        try:
            grade(store, queues, name, rec, args.until, args.stale_every, args.think)
        except BaseException:  # noqa: BLE001 (reported in the JSON)
            rec.errors.append(f"{name}: {traceback.format_exc()}")

    threads = [threading.Thread(target=work, args=(name,)) for name in args.names.split(",")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    Path(args.out).write_text(json.dumps({"submits": rec.submits, "next_s": rec.next_s, "submit_s": rec.submit_s,
                                          "errors": rec.errors}))


def spawn(db: Path, names: list[str], out: Path, env: dict, **options) -> subprocess.Popen:
    """One app process of reviewer threads (options: queue, until, stale_every, think); its output goes
    to `out` (JSON) and its stderr (notes of waiting for the store) to out.log."""
    command = [sys.executable, str(Path(__file__).resolve()), "--db", str(db), "--names", ",".join(names),
               "--out", str(out)]
    for key, value in options.items():
        if value is not None:
            command += [f"--{key.replace('_', '-')}", str(value)]
    with open(out.with_suffix(".log"), "w") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def results(procs: list[subprocess.Popen], outs: list[Path], timeout_s: float) -> dict:
    """Wait for the app processes and merge their JSON reports (an AssertionError if one failed)."""
    merged: dict = {"submits": [], "next_s": [], "submit_s": [], "errors": []}
    for proc, out in zip(procs, outs, strict=True):
        code = proc.wait(timeout=timeout_s)
        assert code == 0, f"reviewer process exited {code}: {out.with_suffix('.log').read_text()[-3000:]}"
        for key, values in json.loads(out.read_text()).items():
            merged[key] += values
    return merged


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
