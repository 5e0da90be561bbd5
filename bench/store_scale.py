"""5. The store at scale: 1,000,000 per-example rows written through the store's bulk (Arrow) path
against row-by-row inserts, and the report's leaderboard over them.

A synthetic run of 5 candidates x 2 variants x 2 suites = 20 work items of 50,000 examples each:
1,000,000 prediction rows and 1,000,000 per-example statistic rows. The bulk side writes every item
with `Store.write_item` (one short transaction per item, Arrow tables). The row-by-row side inserts
the prediction and statistic rows of the first 20,000 examples one INSERT at a time in a single
transaction (the best case for row-by-row); its time is extrapolated to 1,000,000 rows. Both
databases must then hold the same rows for those examples. The leaderboard is
`reports.leaderboard.leaderboard_frame` on the run, as the report's page asks for it: once plain and
once with paired markers against a reference row (which reads all per-example statistics).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import Row, child_main, median, offline, paired_ratio

RUN = "bench-store"
CANDIDATES = [f"model-{i}" for i in range(5)]
VARIANTS = ["base", "lora"]
SUITES = ["suite-a", "suite-b"]
TARGET = 10.0
COLUMNS = ["run_id", "candidate", "variant", "suite", "example_id", "input", "reference", "output", "choice_index",
           "choice_scores", "latency_s", "error"]


def build_items(per_item: int, seed: int = 0) -> list[Any]:
    """20 work items of `per_item` examples: predictions, accuracy statistics and scores."""
    from harness.evaluation import scores_with_intervals
    from harness.metrics import get_metric
    from harness.records import ItemResult, MetricStats, Prediction

    rng = np.random.default_rng(seed)
    metric = get_metric("accuracy")
    refs = [str(x) for x in rng.integers(0, 2, per_item)]
    items = []
    for number, (candidate, variant, suite) in enumerate(
            (c, v, s) for c in CANDIDATES for v in VARIANTS for s in SUITES):
        correct = rng.random(per_item) < 0.6 + 0.02 * number
        outs = [r if ok else str(1 - int(r)) for r, ok in zip(refs, correct, strict=True)]
        preds = [Prediction(f"ex-{i}", f"Review {i}: the product works.\nAnswer:", refs[i], outs[i], int(outs[i]),
                            [-0.5, -1.5], 0.01) for i in range(per_item)]
        stats = MetricStats("accuracy", "{}", list(metric.stat_names),
                            np.asarray(metric.example_stats(outs, refs, labels=["0", "1"])))
        item = ItemResult(RUN, candidate, variant, suite, "done", dataset_fingerprint=f"fp-{suite}",
                          predictions=preds, stats=[stats], wall_s=1.0, model_s=1.0)
        item.scores = scores_with_intervals([(metric, stats)], _evaluation(), seed)
        items.append(item)
    return items


def _evaluation() -> Any:
    from harness.config import EvaluationConfig

    return EvaluationConfig(bootstrap_resamples=200)


def bulk_write(path: Path, items: list[Any]) -> None:
    from harness.store import Store

    store = Store(path)
    for item in items:
        store.write_item(item)


def row_by_row(path: Path, item: Any, n: int) -> None:
    """The plain way: one INSERT per prediction row and per statistics row, one transaction."""
    from harness.store import Store

    key = [item.run_id, item.candidate, item.variant, item.suite]
    stats = item.stats[0]

    def write(con: Any) -> None:
        for p in item.predictions[:n]:
            con.execute(f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                        [*key, p.example_id, p.input, p.reference, p.output, p.choice_index, p.choice_scores,
                         p.latency_s, p.error])
        for p, row in zip(item.predictions[:n], stats.stats[:n], strict=True):
            con.execute("INSERT INTO example_stats (run_id, candidate, variant, suite, example_id, metric, "
                        "options_json, stat_names, stats) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [*key, p.example_id, stats.metric, stats.options_json, stats.stat_names,
                         [float(x) for x in row]])

    Store(path).transaction(write)


def same_rows(bulk: Path, rows: Path, item: Any, n: int) -> bool:
    """The first n examples of the first item read back the same from both databases."""
    from harness.store import Store

    ids = [p.example_id for p in item.predictions[:n]]
    where = "WHERE candidate = ? AND variant = ? AND suite = ? AND example_id IN (SELECT unnest(?))"
    params = [item.candidate, item.variant, item.suite, ids]
    for table, order in (("predictions", "example_id"), ("example_stats", "example_id")):
        a = Store(bulk).query(f"SELECT * FROM {table} {where} ORDER BY {order}", params)
        b = Store(rows).query(f"SELECT * FROM {table} {where} ORDER BY {order}", params)
        if len(a) != n or not a.astype(str).equals(b.astype(str)):
            return False
    return True


def leaderboard(path: Path, reference: str | None) -> int:
    from harness.store import Store
    from reports.leaderboard import leaderboard_frame

    return len(leaderboard_frame(Store(path), [RUN], reference=reference))


def run(quick: bool) -> list[Row]:
    offline()
    per_item = 5_000 if quick else 50_000
    slice_n = 2_000 if quick else 20_000
    reps = 2 if quick else 3
    items = build_items(per_item)
    total = per_item * len(items)
    bulk_s, rows_s, plain_s, marked_s, same = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        for rep in range(reps):
            bulk, rows = Path(tmp) / f"bulk-{rep}.duckdb", Path(tmp) / f"rows-{rep}.duckdb"
            for side in (("bulk", "rows") if rep % 2 == 0 else ("rows", "bulk")):
                started = time.perf_counter()
                bulk_write(bulk, items) if side == "bulk" else row_by_row(rows, items[0], slice_n)
                (bulk_s if side == "bulk" else rows_s).append(time.perf_counter() - started)
            same.append(same_rows(bulk, rows, items[0], slice_n))
            for timings, reference in ((plain_s, None), (marked_s, f"{RUN}/{CANDIDATES[0]}/base")):
                started = time.perf_counter()
                leaderboard(bulk, reference)
                timings.append(time.perf_counter() - started)
    extrapolated = [t * total / slice_n for t in rows_s]
    ratio = paired_ratio(extrapolated, bulk_s)
    per_row_us = 1e6 * median(rows_s) / slice_n
    return [
        Row("store", f"write {total:,} prediction + {total:,} statistics rows", f"{median(bulk_s):.1f} s (bulk)",
            f"{median(extrapolated):.0f} s (row by row, extrapolated from {slice_n:,} rows: "
            f"{per_row_us:.0f} us/row)", ratio, f">= {TARGET:.0f}x", ratio.median >= TARGET and all(same),
            f"same rows read back: {'yes' if all(same) else 'NO'}",
            raw={"bulk_s": bulk_s, "rows_s": rows_s, "slice": slice_n, "total": total}),
        Row("store", f"leaderboard over {total:,} rows", f"{median(plain_s):.2f} s plain; {median(marked_s):.2f} s "
            "with paired markers", "-", None, "record the median", None, f"{len(items)} work items",
            raw={"plain_s": plain_s, "marked_s": marked_s}),
    ]


if __name__ == "__main__":
    child_main(run, __doc__)
