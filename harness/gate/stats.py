"""One-sided paired tests for the gate: is the candidate worse than the baseline by more than `max_drop`?

With d = max_drop >= 0 and the difference D = candidate - baseline (sign-flipped for a score where
lower is better), every test asks H0: D >= -d against H1: D < -d, one-sided, and returns a p-value:

* mcnemar (0/1 scores): from the discordant pairs, `worse` (baseline right, candidate wrong) and
  `better`. d = 0: the exact conditional binomial P(X >= worse), X ~ Bin(worse + better, 1/2).
  d > 0: the Wald z-test of the paired difference of proportions against -d.
* bootstrap: the paired bootstrap (`harness.metrics.stats.paired_differences`: both systems' stats
  side by side, so every resample takes the same examples for both); p = (#{D* >= -d} + 1) / (B + 1),
  i.e. the test that rejects when the one-sided upper (1 - alpha) percentile bound of D is below -d.
* randomization: approximate randomisation (swap the two systems' outputs per example with
  probability 1/2); p = (#{D_swap <= D - (-d)} + 1) / (R + 1). Exact for d = 0, a shift
  approximation for d > 0.

The interval reported with each comparison is the paired bootstrap percentile interval at
1 - 2 alpha, so its upper end is the one-sided bound the bootstrap test uses.

The resampling, the swaps, McNemar and Holm live in `harness.metrics.stats` (their one home); this
module only turns them into the gate's one-sided decision.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.errors import HarnessError
from harness.metrics import Metric
from harness.metrics.stats import (
    discordant,
    holm,
    mcnemar_one_sided,
    paired_differences,
    randomization_differences,
)

__all__ = ["Comparison", "binary_values", "bootstrap_differences", "compare", "holm", "mcnemar_one_sided",
           "randomization_differences"]

_TOL = 1e-12
bootstrap_differences = paired_differences  # the gate's name for it


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
    diffs = paired_differences(metric, score, a, c, resamples, seed)
    if test == "mcnemar":
        va, vc = binary_values(metric, score, a), binary_values(metric, score, c)
        if sign < 0:
            va, vc = 1.0 - va, 1.0 - vc
        worse, better = discordant(va, vc)
        p = float(mcnemar_one_sided(worse, better, a.shape[0], max_drop))
    elif test == "randomization":
        swapped = sign * randomization_differences(metric, score, a, c, resamples, seed)
        p = float((np.sum(swapped <= observed + max_drop + _TOL) + 1) / (swapped.size + 1))
    else:
        p = float((np.sum(sign * diffs >= -max_drop - _TOL) + 1) / (diffs.size + 1))
    low, high = np.quantile(diffs, [alpha, 1 - alpha]) if diffs.size else (np.nan, np.nan)
    return Comparison(value_a, value_c, value_c - value_a, float(low), float(high), min(1.0, p), a.shape[0])

