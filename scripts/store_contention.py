"""Does a run get a busy store? Reviewer threads in app processes grade without pause while a writer process
writes work items through `Store.write_item`; prints how long the writer's calls took (wait + own work).

    .venv/bin/python scripts/store_contention.py [--seconds 30] [--processes 2] [--threads 15]

Not a test (no timed assertion anywhere): a measurement to run by hand, on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RUN_ID, SUITE, N_EXAMPLES = "contention-run", "summ", 600


def item(variant: str, n: int = N_EXAMPLES):
    from harness.records import ItemResult, Prediction

    preds = [Prediction(f"{SUITE}-{i}", f"input {i}", f"reference {i}", f"output {i} {variant}") for i in range(n)]
    return ItemResult(RUN_ID, "cand", variant, SUITE, "done", dataset_fingerprint="fp", predictions=preds)


def seed(db: Path, reviewers: int) -> str:
    from harness.records import RunRecord
    from harness.review import QueueRequest, create_queue
    from harness.review.rubrics import load_rubric
    from harness.store import Store

    store = Store(db)
    store.start_run(RunRecord(RUN_ID, "contention", "x.yaml", "{}", "hash", 0, None, None, "{}", "script"))
    store.write_item(item("base"))
    queue, _ = create_queue(store, QueueRequest(RUN_ID, SUITE, load_rubric("pass_fail"), sample=N_EXAMPLES,
                                                overlap=reviewers, blind=False, created_by="script"))
    return queue.queue_id


def grader_process(db: str, queue_id: str, names: list[str], stop_at: float, out: mp.Queue) -> None:
    from harness.records.review import Account
    from harness.review import get_queue, next_item, submit
    from harness.store import Store

    store = Store(db)
    queue = get_queue(store, queue_id, Account("script", "admin"))
    latencies: list[float] = []
    errors: list[str] = []

    def grade(name: str) -> None:
        while time.time() < stop_at:
            try:
                started = time.perf_counter()
                found = next_item(store, queue, name)
                if found is None:
                    return
                submit(store, queue, found.item_id, name, {"overall": "pass"})
                latencies.append(time.perf_counter() - started)
            except Exception as exc:  # noqa: BLE001 (counted and reported)
                errors.append(f"{type(exc).__name__}: {exc}"[:200])

    threads = [threading.Thread(target=grade, args=(name,)) for name in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put({"grades": latencies, "errors": errors})


def writer_process(db: str, start_at: float, stop_at: float, pause_s: float, out: mp.Queue) -> None:
    from harness.store import FOREVER, Store

    store = Store(db, timeout_s=FOREVER)
    waits: list[float] = []
    while time.time() < start_at:
        time.sleep(0.05)
    n = 0
    while time.time() < stop_at:
        started = time.perf_counter()
        store.write_item(item(f"v{n % 50}", 50))
        waits.append(time.perf_counter() - started)
        n += 1
        time.sleep(pause_s)  # a run computes between its writes
    out.put({"writes": waits})


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=15)
    parser.add_argument("--writer-pause", type=float, default=0.5, help="seconds between the writer's writes")
    parser.add_argument("--no-writer", action="store_true", help="graders only (their latency alone)")
    args = parser.parse_args()
    reviewers = args.processes * args.threads
    db = Path(tempfile.mkdtemp(prefix="contention_")) / "store.duckdb"
    queue_id = seed(db, reviewers)
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start = time.time() + 5.0  # the graders' processes import and start first
    stop = start + args.seconds
    names = [f"r{i}" for i in range(reviewers)]
    procs = [ctx.Process(target=grader_process, args=(str(db), queue_id, names[i::args.processes], stop, out))
             for i in range(args.processes)]
    if not args.no_writer:
        procs.append(ctx.Process(target=writer_process, args=(str(db), start + 2.0, stop, args.writer_pause, out)))
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    grades = [v for r in results for v in r.get("grades", [])]
    writes = [v for r in results for v in r.get("writes", [])]
    errors = [e for r in results for e in r.get("errors", [])]
    print(json.dumps({
        "seconds": args.seconds, "reviewers": reviewers, "processes": args.processes,
        "grades": len(grades), "grade_p50_s": pct(grades, 50), "grade_p95_s": pct(grades, 95),
        "writes": len(writes), "write_p50_s": pct(writes, 50), "write_p95_s": pct(writes, 95),
        "write_max_s": max(writes, default=float("nan")), "errors": len(errors), "first_errors": errors[:3],
    }, indent=1))


if __name__ == "__main__":
    main()
