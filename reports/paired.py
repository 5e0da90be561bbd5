"""Paired comparisons from the stored per-example statistics (the metrics' paired bootstrap test)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from harness.metrics import Metric
from harness.metrics.stats import PairedResult, paired_from_sums, paired_test, resample_counts
from reports.scores import better, metric_for

KEY = ["run_id", "candidate", "variant", "suite", "metric", "options_json"]
ALPHA = 0.05
CONFIDENCE = 0.95
N_RESAMPLES = 1000
_SHARED_CELLS = 4_000_000  # paired_test draws all its resamples at once up to this many cells
BETTER, WORSE, REFERENCE = "▲", "▼", "ref"

StatsLookup = dict[tuple, tuple[np.ndarray, np.ndarray]]


def stats_lookup(table: pa.Table) -> StatsLookup:
    """(run, candidate, variant, suite, metric, options_json) -> (example ids, stats matrix).

    `table` comes from `report_queries.example_stats`, sorted by the key and then example id.
    """
    if table.num_rows == 0:
        return {}
    keys = table.select(KEY).to_pandas()
    ids = table.column("example_id").to_numpy(zero_copy_only=False).astype(str)
    lists = table.column("stats").combine_chunks()
    values = lists.flatten().to_numpy(zero_copy_only=False)
    offsets = lists.offsets.to_numpy()
    starts = np.flatnonzero((keys != keys.shift()).any(axis=1).to_numpy())
    ends = np.append(starts[1:], len(keys))
    out: StatsLookup = {}
    for start, end in zip(starts, ends, strict=True):
        width = int(offsets[start + 1] - offsets[start])
        matrix = values[offsets[start]:offsets[end]].reshape(end - start, width)
        out[tuple(keys.iloc[start])] = (ids[start:end], matrix)
    return out


def aligned(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]):
    """The two stats matrices on their common examples, in the same order (None when none are shared)."""
    (ids_a, stats_a), (ids_b, stats_b) = a, b
    if np.array_equal(ids_a, ids_b):
        return stats_a, stats_b
    common, ia, ib = np.intersect1d(ids_a, ids_b, return_indices=True)
    if len(common) == 0:
        return None
    return stats_a[ia], stats_b[ib]


class SharedResamples:
    """`paired_test(metric, a, b, test="bootstrap")` for many pairs, drawing the resamples once per n.

    For a given seed, paired_test resamples n examples with the rows of `resample_indices(n, B, seed)`
    (drawn in one block while B x n <= 4M cells), whatever the pair. A leaderboard tests dozens of pairs on
    the same examples, so the (B, n) count matrix is built once and each pair costs two matrix products.
    The counts and the results come from `harness.metrics.stats` (`resample_counts`, `paired_from_sums`,
    as paired_test's do), so they equal paired_test's (tests/test_report_functions.py checks it); larger
    problems fall back to paired_test itself.
    """

    def __init__(self, n_resamples: int = N_RESAMPLES, seed: int = 0, confidence: float = CONFIDENCE):
        self.n_resamples, self.seed, self.confidence = n_resamples, seed, confidence
        self._counts: dict[int, np.ndarray] = {}
        self._sums: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # id(stats) -> (stats, resampled sums)

    def counts(self, n: int) -> np.ndarray:
        if n not in self._counts:
            self._counts[n] = resample_counts(n, self.n_resamples, self.seed)
        return self._counts[n]

    def _shared(self, n: int) -> bool:
        return 1 <= n and n * self.n_resamples <= _SHARED_CELLS

    def prefetch(self, matrices) -> None:
        """Resampled sums of many stats matrices in one product per n (one product costs about as much
        as one matrix: reading the count matrix dominates)."""
        by_n: dict[int, list[np.ndarray]] = {}
        for m in matrices:
            if id(m) not in self._sums and self._shared(m.shape[0]):
                by_n.setdefault(m.shape[0], []).append(m)
        for n, group in by_n.items():
            sums = self.counts(n) @ np.hstack(group)
            widths = np.cumsum([0, *(m.shape[1] for m in group)])
            for m, lo, hi in zip(group, widths[:-1], widths[1:], strict=True):
                self._sums[id(m)] = (m, sums[:, lo:hi])

    def resampled_sums(self, stats: np.ndarray) -> np.ndarray:
        if id(stats) not in self._sums:
            self.prefetch([stats])
        return self._sums[id(stats)][1]

    def test(self, metric: Metric, a: np.ndarray, b: np.ndarray) -> dict[str, PairedResult]:
        n = a.shape[0]
        if a.shape != b.shape or not self._shared(n):
            return paired_test(metric, a, b, n_resamples=self.n_resamples, confidence=self.confidence,
                               seed=self.seed)
        return paired_from_sums(metric, a, b, self.resampled_sums(a), self.resampled_sums(b), self.confidence)


def compare(lookup: StatsLookup, metric: str, options_json: str, a: tuple, b: tuple,
            resamples: SharedResamples | None = None) -> dict[str, PairedResult] | None:
    """Paired test of row b against row a (each (run, candidate, variant, suite)); None without data."""
    stats_a = lookup.get((*a, metric, options_json))
    stats_b = lookup.get((*b, metric, options_json))
    if stats_a is None or stats_b is None:
        return None
    pair = aligned(stats_a, stats_b)
    if pair is None:
        return None
    return (resamples or SharedResamples()).test(metric_for(metric, options_json), pair[0], pair[1])


def significant(result: PairedResult | None, alpha: float = ALPHA) -> bool:
    """p < alpha and the paired interval of the difference excludes 0 (both from the same paired test: with
    few examples the bootstrap p-value alone can call a difference whose interval still touches 0)."""
    if result is None or not np.isfinite(result.p_value) or result.p_value >= alpha:
        return False
    return bool(result.low > 0 or result.high < 0)


def marker(score: str, result: PairedResult | None, alpha: float = ALPHA, metric: str | None = None,
           options_json: str | None = None) -> str:
    """▲ when b is significantly better than a, ▼ when significantly worse, '' otherwise (the direction is the
    metric's, when named; else the score name's)."""
    if not significant(result, alpha) or result.difference == 0:
        return ""
    return BETTER if better(score, result.difference, metric, options_json) else WORSE


def result_columns(result: PairedResult | None) -> dict:
    """The columns a table shows for one paired result."""
    if result is None:
        return {"difference": np.nan, "diff_low": np.nan, "diff_high": np.nan, "p_value": np.nan}
    return {"difference": result.difference, "diff_low": result.low, "diff_high": result.high,
            "p_value": result.p_value}
