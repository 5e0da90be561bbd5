"""13. The team store (DuckLake on PostgreSQL) against the DuckDB file: bulk writes, grade latency, leaderboard.

`python -m bench.store_team [--quick] [--per-item N] [--json FILE]`, or `python -m bench --only store_team`
(needs duckdb 1.5.5 with `harness[team]` and the PostgreSQL binaries; it starts its own PostgreSQL 15 on
loopback through tests/pg_server.py, with fsync off as the tests run it, and stops it).

1. The run of bench/store_scale.py (20 work items; 50,000 examples each: 1,000,000 prediction rows and
   1,000,000 statistics rows) written with `Store.write_item` to a file and to a team store: seconds, and
   file/team (target: the team store no worse than 3x the file, i.e. file/team >= 0.33x).
2. 30 reviewer threads of one process grading one queue of 40 items (overlap 30) at once through
   `review.submit`, each submitting its next grade as soon as the last returned, on both: every grade's
   commit latency, median and p95 (target p95 under 250 ms), and the grades stored (must be 1,200).
3. `reports.leaderboard.leaderboard_frame` on the run, plain, on both.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench import Row, paired_ratio
from bench.store_scale import RUN, build_items

REVIEWERS, ITEMS = 30, 40
WRITE_TARGET, P95_TARGET_S = 3.0, 0.25


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
    start = threading.Barrier(REVIEWERS)

    def grade(name: str) -> None:
        start.wait()
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


def _ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 10 else f"{value:.0f} ms"


def _note(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run(quick: bool, per_item: int | None = None) -> list[Row]:
    per_item = per_item or (5_000 if quick else 50_000)
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
            return _measure(per_item, items, Path(tmp) / "bench.duckdb", team)
    finally:
        from harness.store import team as team_module

        team_module.close_all()
        server._run("pg_ctl", "-D", str(server.folder / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(server.folder, ignore_errors=True)


def _measure(per_item: int, items: list, file: Path, team: str) -> list[Row]:
    total = per_item * len(items)
    file_s, team_s = _write(file, items), _write(team, items)
    ratio = paired_ratio([file_s], [team_s])
    _note(f"write {total:,} + {total:,} rows: file {file_s:.1f} s, team {team_s:.1f} s, team/file "
          f"{team_s / file_s:.2f}x")
    rows = [Row("store_team", f"write {total:,} prediction + {total:,} statistics rows (20 items)",
                f"{team_s:.1f} s (team store)", f"{file_s:.1f} s (DuckDB file)", ratio,
                f">= {1 / WRITE_TARGET:.2f}x (team no worse than {WRITE_TARGET:.0f}x)",
                team_s <= WRITE_TARGET * file_s, f"team/file {team_s / file_s:.2f}x",
                raw={"file_s": file_s, "team_s": team_s, "total": total})]
    for name, target in (("file", file), ("team", team)):
        latencies, stored = _grades(target)
        median_ms, p95_ms = 1000 * statistics.median(latencies), 1000 * _p95(latencies)
        shown = f"median {_ms(median_ms)}, p95 {_ms(p95_ms)}, max {_ms(1000 * max(latencies))}"
        _note(f"grades on the {name}: {stored} stored, {shown}")
        rows.append(Row("store_team", f"grade commit, {REVIEWERS} reviewer threads x {ITEMS} items at once "
                        f"({name})", shown, "-", None, f"p95 < {1000 * P95_TARGET_S:.0f} ms",
                        p95_ms < 1000 * P95_TARGET_S and stored == 1200, f"{stored} grades stored (1,200 expected)",
                        raw={"median_s": median_ms / 1000, "p95_s": p95_ms / 1000, "max_s": max(latencies),
                             "n": len(latencies), "stored": stored}))
    file_lb, team_lb = _leaderboard(file), _leaderboard(team)
    _note(f"leaderboard: file {file_lb:.2f} s, team {team_lb:.2f} s")
    rows.append(Row("store_team", f"leaderboard over {total:,} rows (plain)", f"{team_lb:.2f} s (team store)",
                    f"{file_lb:.2f} s (DuckDB file)", paired_ratio([file_lb], [team_lb]), "record the median",
                    None, "-", raw={"file_s": file_lb, "team_s": team_lb}))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 examples per item (100,000 rows)")
    parser.add_argument("--per-item", type=int, help="examples per work item (default 50,000)")
    parser.add_argument("--json", type=Path, help="write the rows here (default: print them)")
    args = parser.parse_args()
    text = json.dumps([row.as_dict() for row in run(args.quick, args.per_item)], indent=1)
    if args.json:
        args.json.write_text(text, encoding="utf-8")
    else:
        print(text)


if __name__ == "__main__":
    main()
