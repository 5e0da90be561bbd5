"""The gate's statistics hold: false alarms at most alpha under no true difference, and a 5-point
accuracy drop on n=872 (SST-2 dev size) is detected at least 80% of the time. Seeded simulations.

Scenario: baseline accuracy 0.85; the candidate's errors are drawn independently of the baseline's
(the most disagreement two systems of these accuracies can have, so the hardest case for a paired
test). The figures are quoted in docs/gate.md.

* McNemar (the default for accuracy): `mcnemar_one_sided` itself, vectorised over 10,000
  comparisons; the gate calls exactly this function on the discordant counts.
* Paired bootstrap: `gate_stats.compare` (the gate's per-check function) on 1,000 comparisons each,
  with 200 resamples instead of the default 2,000 to keep the test to seconds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.gate.stats import compare, mcnemar_one_sided
from harness.metrics import get_metric

N = 872
ALPHA = 0.05


def mc_limit(rate: float, trials: int) -> float:
    """rate plus three Monte-Carlo standard errors."""
    return rate + 3 * math.sqrt(rate * (1 - rate) / trials)


def correct(rng: np.random.Generator, accuracy: float, trials: int) -> np.ndarray:
    return rng.random((trials, N)) < accuracy


def mcnemar_rejections(base: np.ndarray, cand: np.ndarray, max_drop: float = 0.0) -> np.ndarray:
    worse = np.sum(base & ~cand, axis=1)
    better = np.sum(~base & cand, axis=1)
    return mcnemar_one_sided(worse, better, N, max_drop) < ALPHA


def test_mcnemar_false_alarms_at_most_alpha():
    rng = np.random.default_rng(20240601)
    trials = 10_000
    rate = mcnemar_rejections(correct(rng, 0.85, trials), correct(rng, 0.85, trials)).mean()
    assert rate <= mc_limit(ALPHA, trials)
    assert rate > 0.02  # the test is not trivially silent


@pytest.mark.parametrize("accuracy,max_drop", [(0.85, 0.02), (0.5, 0.01)])
def test_mcnemar_with_an_allowed_drop_false_alarms_at_most_alpha(accuracy, max_drop):
    """At the edge of H0 (a true drop of exactly max_drop) the Wald test fires at most alpha."""
    rng = np.random.default_rng(7)
    trials = 10_000
    base, cand = correct(rng, accuracy, trials), correct(rng, accuracy - max_drop, trials)
    assert mcnemar_rejections(base, cand, max_drop).mean() <= mc_limit(ALPHA, trials)


def test_mcnemar_detects_a_five_point_drop():
    rng = np.random.default_rng(872)
    trials = 10_000
    power = mcnemar_rejections(correct(rng, 0.85, trials), correct(rng, 0.80, trials)).mean()
    assert power >= 0.80


def bootstrap_rejections(base_accuracy: float, cand_accuracy: float, trials: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    metric = get_metric("accuracy")
    ones = np.ones((N, 1))
    rejected = 0
    for trial in range(trials):
        a = np.hstack([(rng.random((N, 1)) < base_accuracy).astype(float), ones])
        c = np.hstack([(rng.random((N, 1)) < cand_accuracy).astype(float), ones])
        result = compare(metric, "accuracy", a, c, "bootstrap", 0.0, ALPHA, True, 200, trial)
        rejected += result.p_value < ALPHA
    return rejected / trials


def test_paired_bootstrap_false_alarms_at_most_alpha():
    trials = 1000
    assert bootstrap_rejections(0.85, 0.85, trials, seed=1) <= mc_limit(ALPHA, trials)


def test_paired_bootstrap_detects_a_five_point_drop():
    assert bootstrap_rejections(0.85, 0.80, 1000, seed=2) >= 0.80
