"""The team store (DuckLake on PostgreSQL) against the DuckDB file: bulk writes, grade latency, leaderboard.

`python -m bench.store_team [--quick] [--per-item N]` (needs duckdb 1.5.5 with `harness[team]` and the
PostgreSQL binaries; it starts its own PostgreSQL 15 on loopback through tests/pg_server.py and stops it).

1. The run of bench/store_scale.py (20 work items; 50,000 examples each: 1,000,000 prediction rows and
   1,000,000 statistics rows) written with `Store.write_item` to a file and to a team store: seconds, ratio
   (target: team no worse than 3x).
2. 30 reviewer threads grading one queue of 40 items (overlap 30) at once through `review.submit` on the
   team store (the file store for comparison): every grade's commit latency, median and p95 (target p95
   under 250 ms), and the number of grades stored (must be 1,200).
3. `reports.leaderboard.leaderboard_frame` on the run, plain, on both.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.store_scale import RUN, build_items

REVIEWERS, ITEMS = 30, 40


def _write(target: str | Path, items: list) -> float:
    from harness.records import RunRecord
    from harness.store import Store

    store = Store(target)
    started = time.perf_counter()
    store.start_run(RunRecord(RUN, "bench", "x.yaml", "{}", "hash", 0, None, None, "{}", "bench"))
    for item in items:
        store.write_item(item)
    store.set_run_status(RUN, "finished")
    return time.perf_counter() - started


def _grades(target: str | Path) -> tuple[list[float], int]:
    from harness import review
    from harness.review.auth import add_account
    from harness.review.rubrics import load_rubric
    from harness.store import Store

    store = Store(target)
    queue, items = review.create_queue(store, review.QueueRequest(
        RUN, "suite-a", load_rubric("pass_fail"), sample=ITEMS, overlap=REVIEWERS, candidates=["model-0:base"]))
    names = [f"reviewer-{i:02d}" for i in range(REVIEWERS)]
    for name in names:
        add_account(store, name)
    latencies: list[float] = []
    lock = threading.Lock()

    def grade(name: str) -> None:
        for item in items:
            started = time.perf_counter()
            review.submit(store, queue, item.item_id, name, {"overall": "pass"})
            with lock:
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=grade, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = int(store.query("SELECT count(*) AS n FROM review_grades")["n"].iloc[0])
    return latencies, stored


def _leaderboard(target: str | Path) -> float:
    from harness.store import Store
    from reports.leaderboard import leaderboard_frame

    started = time.perf_counter()
    leaderboard_frame(Store(target, create=False), [RUN])
    return time.perf_counter() - started


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 examples per item (100,000 rows)")
    parser.add_argument("--per-item", type=int, help="examples per work item (default 50,000)")
    args = parser.parse_args()
    per_item = args.per_item or (5_000 if args.quick else 50_000)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import pg_server

    reason = pg_server.why_not()
    if reason:
        raise SystemExit(f"bench.store_team: {reason}")
    items = build_items(per_item)
    server = pg_server._start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-team-") as tmp:
            data = Path(tmp) / "lake"
            data.mkdir()
            team = server.address(server.new_database(), data)
            file = Path(tmp) / "bench.duckdb"
            _report(per_item, items, file, team)
    finally:
        from harness.store import team as team_module

        team_module.close_all()
        server._run("pg_ctl", "-D", str(server.folder / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(server.folder, ignore_errors=True)


def _report(per_item: int, items: list, file: Path, team: str) -> None:
    total = per_item * len(items)
    file_s, team_s = _write(file, items), _write(team, items)
    print(f"write {total:,} prediction + {total:,} statistics rows: file {file_s:.1f} s, team {team_s:.1f} s, "
          f"team/file {team_s / file_s:.2f}x (target <= 3x)")
    for name, target in (("file", file), ("team", team)):
        latencies, stored = _grades(target)
        print(f"grades, {REVIEWERS} reviewers x {ITEMS} items at once, {name}: {stored} stored; commit latency "
              f"median {1000 * statistics.median(latencies):.0f} ms, p95 {1000 * _p95(latencies):.0f} ms "
              "(target p95 < 250 ms)")
    print(f"leaderboard_frame over {total:,} rows: file {_leaderboard(file):.2f} s, team {_leaderboard(team):.2f} s")


if __name__ == "__main__":
    main()
