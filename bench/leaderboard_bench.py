"""How fast is the leaderboard on a big store? Not a test: run `python bench/leaderboard_bench.py`.

Builds a store of 50 runs x 4 candidates (base and LoRA) x 10 suites x 1,000 examples of synthetic
accuracy statistics, written in bulk through Arrow (`report_queries.bulk_insert`), then times
`leaderboard_frame` (with the paired test of every row against a reference row) and an AppTest render of
the leaderboard page. The target is under 2 s each; docs/report.md records the figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.store import Store  # noqa: E402
from harness.store import report_queries as q  # noqa: E402

VARIANTS = ("base", "lora")


def _stats_table(run_id: str, candidate: str, variant: str, suite: str, correct: np.ndarray) -> pa.Table:
    n = len(correct)
    values = np.column_stack([correct, np.ones(n)]).ravel()
    stats = pa.ListArray.from_arrays(pa.array(np.arange(0, 2 * n + 1, 2, dtype=np.int32)), pa.array(values))
    return pa.table({
        "run_id": [run_id] * n, "candidate": [candidate] * n, "variant": [variant] * n, "suite": [suite] * n,
        "example_id": [f"{suite}-{i:05d}" for i in range(n)], "metric": ["accuracy"] * n,
        "options_json": ["{}"] * n, "stat_names": [["accuracy", "count"]] * n, "stats": stats,
    })


def _run_tables(index: int, n_candidates: int, n_suites: int, n_examples: int, rng) -> dict[str, pa.Table]:
    run_id = f"bench-{index:03d}"
    started = datetime(2025, 1, 1) + timedelta(hours=index)
    runs = pa.Table.from_pylist([{"run_id": run_id, "name": "bench", "experiment_path": "bench.yaml",
                                  "config_json": "{}", "config_hash": "bench", "seed": 0, "git_commit": None,
                                  "git_dirty": None, "versions_json": "{}", "command": "bench", "status": "finished",
                                  "started_at": started, "finished_at": started + timedelta(minutes=30)}])
    stats, scores, items = [], [], []
    for c in range(n_candidates):
        for variant in VARIANTS:
            for s in range(n_suites):
                suite, candidate = f"suite{s:02d}", f"cand{c}"
                p = 0.5 + 0.05 * c + (0.05 if variant == "lora" else 0) + 0.01 * s
                correct = (rng.random(n_examples) < p).astype(float)
                stats.append(_stats_table(run_id, candidate, variant, suite, correct))
                value = correct.mean()
                half = 1.96 * np.sqrt(value * (1 - value) / n_examples)
                key = {"run_id": run_id, "candidate": candidate, "variant": variant, "suite": suite}
                scores.append({**key, "metric": "accuracy", "options_json": "{}", "score": "accuracy",
                               "value": value, "low": value - half, "high": value + half, "n": n_examples,
                               "method": "percentile", "confidence": 0.95, "signature": None})
                items.append({**key, "status": "done", "reason": None, "dataset_fingerprint": f"fp-{suite}",
                              "n_examples": n_examples, "n_failed": 0, "wall_s": 1.0, "model_s": 1.0,
                              "finished_at": started})
    return {"runs": runs, "example_stats": pa.concat_tables(stats), "scores": pa.Table.from_pylist(scores),
            "items": pa.Table.from_pylist(items)}


def build(path: Path, n_runs: int, n_candidates: int, n_suites: int, n_examples: int) -> float:
    store = Store(path)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for index in range(n_runs):
        q.bulk_insert(store, _run_tables(index, n_candidates, n_suites, n_examples, rng))
    return time.perf_counter() - started


def _timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        out.append(time.perf_counter() - began)
    return out


def time_leaderboard(path: Path, repeat: int) -> dict[str, list[float]]:
    from streamlit.testing.v1 import AppTest

    from reports.leaderboard import leaderboard_frame, leaderboard_table
    from reports.scores import PRIMARY, system_key

    store = Store(path)
    run_id = q.runs(store)["run_id"].iloc[0]
    reference = system_key(run_id, "cand0", "base")
    data = _timed(lambda: leaderboard_table(leaderboard_frame(store, [run_id], PRIMARY, reference)), repeat)
    no_ref = _timed(lambda: leaderboard_table(leaderboard_frame(store, [run_id], PRIMARY, None)), repeat)
    five = list(q.runs(store)["run_id"].iloc[:5])
    five_runs = _timed(lambda: leaderboard_table(leaderboard_frame(store, five, PRIMARY, reference)), repeat)
    os.environ["HARNESS_DB"] = str(path)

    def render():
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.run()
        assert not at.exception, at.exception
        assert at.dataframe, "the leaderboard showed no table"

    return {"leaderboard_frame + table (reference row, 70 paired tests)": data,
            "leaderboard_frame + table (no reference)": no_ref,
            "leaderboard_frame + table (5 runs, reference row, 390 paired tests)": five_runs,
            "AppTest render of the leaderboard page": _timed(render, repeat)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--candidates", type=int, default=4)
    parser.add_argument("--suites", type=int, default=10)
    parser.add_argument("--examples", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--db", type=Path, default=None, help="reuse or keep the store here")
    args = parser.parse_args()
    path = args.db or Path(tempfile.mkdtemp()) / "bench.duckdb"
    if not path.exists():
        built = build(path, args.runs, args.candidates, args.suites, args.examples)
        rows = args.runs * args.candidates * len(VARIANTS) * args.suites * args.examples
        print(f"built {path}: {rows:,} example_stats rows in {built:.1f} s ({path.stat().st_size / 1e6:.0f} MB)")
    for name, times in time_leaderboard(path, args.repeat).items():
        print(f"{name}: median {statistics.median(times):.2f} s (runs: {', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    main()
