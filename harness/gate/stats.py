"""One-sided paired tests for the gate: is the candidate worse than the baseline by more than `max_drop`?

With d = max_drop >= 0 and the difference D = candidate - baseline (sign-flipped for a score where
lower is better), every test asks H0: D >= -d against H1: D < -d, one-sided, and returns a p-value:

* mcnemar (0/1 scores): from the discordant pairs, `worse` (baseline right, candidate wrong) and
  `better`. d = 0: the exact conditional binomial P(X >= worse), X ~ Bin(worse + better, 1/2).
  d > 0: the Wald z-test of the paired difference of proportions against -d.
* bootstrap: the paired bootstrap (`harness.metrics.resampled_scores` on both systems' stats side
  by side, so every resample takes the same examples for both); p = (#{D* >= -d} + 1) / (B + 1),
  i.e. the test that rejects when the one-sided upper (1 - alpha) percentile bound of D is below -d.
* randomization: approximate randomisation (swap the two systems' outputs per example with
  probability 1/2); p = (#{D_swap <= D - (-d)} + 1) / (R + 1). Exact for d = 0, a shift
  approximation for d > 0.

The interval reported with each comparison is the paired bootstrap percentile interval at
1 - 2 alpha, so its upper end is the one-sided bound the bootstrap test uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special
from scipy import stats as sps

from harness.errors import HarnessError
from harness.metrics import Metric, resampled_scores

_BLOCK = 4_000_000
_TOL = 1e-12


@dataclass(frozen=True)
class Comparison:
    """Candidate against baseline on one score; `difference` is candidate - baseline (not sign-flipped)."""

    baseline: float
    candidate: float
    difference: float
    low: float
    high: float
    p_value: float
    n: int


def mcnemar_one_sided(worse, better, n, max_drop: float = 0.0):
    """p of 'candidate worse by more than max_drop' from discordant counts; vectorised over arrays."""
    worse, better = np.asarray(worse, dtype=np.float64), np.asarray(better, dtype=np.float64)
    if max_drop == 0:
        return sps.binom.sf(worse - 1, worse + better, 0.5)
    diff = (better - worse) / n
    var = ((worse + better) / n - diff**2) / n
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (diff + max_drop) / np.sqrt(var)
    degenerate = np.where(diff + max_drop >= 0, 1.0, 0.0)
    return np.where(var > 0, special.ndtr(z), degenerate)


class _Difference:
    """Both systems' stats side by side as one matrix, scored as candidate - baseline: one bootstrap draw
    then resamples the same examples for both (paired by construction) at the cost of one."""

    def __init__(self, metric: Metric, score: str, width: int):
        self.metric, self.score, self.width = metric, score, width

    def scores_from_sums(self, sums: np.ndarray) -> dict[str, np.ndarray]:
        base = self.metric.scores_from_sums(sums[..., :self.width])[self.score]
        cand = self.metric.scores_from_sums(sums[..., self.width:])[self.score]
        return {"difference": cand - base}


def bootstrap_differences(metric: Metric, score: str, a: np.ndarray, c: np.ndarray, resamples: int,
                          seed: int) -> np.ndarray:
    """Candidate minus baseline score on each paired bootstrap resample (the same examples for both)."""
    paired = _Difference(metric, score, a.shape[1])
    diffs = resampled_scores(paired, np.hstack([a, c]), resamples, seed)["difference"]  # type: ignore[arg-type]
    return diffs[np.isfinite(diffs)]


def randomization_differences(metric: Metric, score: str, a: np.ndarray, c: np.ndarray, resamples: int,
                              seed: int) -> np.ndarray:
    """Candidate minus baseline score after swapping their outputs on a random half of the examples."""
    rng = np.random.default_rng(seed)
    n = a.shape[0]
    rows = max(1, _BLOCK // max(n, 1))
    out = []
    for start in range(0, resamples, rows):
        swap = rng.integers(2, size=(min(rows, resamples - start), n)).astype(np.float64)
        keep = 1.0 - swap
        score_a = metric.scores_from_sums(keep @ a + swap @ c)[score]
        score_c = metric.scores_from_sums(swap @ a + keep @ c)[score]
        out.append(score_c - score_a)
    diffs = np.concatenate(out)
    return diffs[np.isfinite(diffs)]


def binary_values(metric: Metric, score: str, stats: np.ndarray) -> np.ndarray:
    values = metric.example_values(stats)[score]
    if score != metric.binary_score or not np.all((values == 0) | (values == 1)):
        raise HarnessError(
            f"metric '{metric.name}' score '{score}': McNemar needs a per-example 0/1 score (accuracy, "
            "exact_match); set test: bootstrap or randomization in the rule"
        )
    return values


def compare(metric: Metric, score: str, a: np.ndarray, c: np.ndarray, test: str, max_drop: float,
            alpha: float, higher_is_better: bool, resamples: int, seed: int) -> Comparison:
    """Run the one-sided test `test` on aligned stats (baseline a, candidate c) for one score."""
    sign = 1.0 if higher_is_better else -1.0
    value_a, value_c = metric.corpus(a)[score], metric.corpus(c)[score]
    observed = sign * (value_c - value_a)
    diffs = bootstrap_differences(metric, score, a, c, resamples, seed)
    if test == "mcnemar":
        va, vc = binary_values(metric, score, a), binary_values(metric, score, c)
        if sign < 0:
            va, vc = 1.0 - va, 1.0 - vc
        worse, better = np.sum((va == 1) & (vc == 0)), np.sum((va == 0) & (vc == 1))
        p = float(mcnemar_one_sided(worse, better, a.shape[0], max_drop))
    elif test == "randomization":
        swapped = sign * randomization_differences(metric, score, a, c, resamples, seed)
        p = float((np.sum(swapped <= observed + max_drop + _TOL) + 1) / (swapped.size + 1))
    else:
        p = float((np.sum(sign * diffs >= -max_drop - _TOL) + 1) / (diffs.size + 1))
    low, high = np.quantile(diffs, [alpha, 1 - alpha]) if diffs.size else (np.nan, np.nan)
    return Comparison(value_a, value_c, value_c - value_a, float(low), float(high), min(1.0, p), a.shape[0])


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (compare each with its rule's alpha)."""
    p = np.asarray(p_values, dtype=np.float64)
    if p.size == 0:
        return []
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((p.size - np.arange(p.size)) * p[order]))
    out = np.empty_like(p)
    out[order] = adjusted
    return [float(x) for x in out]
