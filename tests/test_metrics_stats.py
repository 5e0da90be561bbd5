"""Intervals and paired tests: McNemar against statsmodels, coverage on a simulated mean."""

from __future__ import annotations

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.metrics import MeanMetric, bootstrap_intervals, get_metric, paired_test, resample_indices
from harness.metrics.stats import _bca_bounds, mcnemar_p


class ValueMean(MeanMetric):
    """The mean of numbers written as predictions (a test-only metric, not registered)."""

    name = "value_mean"
    score_names = ["mean"]

    def example_scores(self, predictions, references, labels):
        return {"mean": [float(p) for p in predictions]}


def _accuracy_stats(correct: np.ndarray) -> np.ndarray:
    m = get_metric("accuracy")
    preds = ["y" if c else "n" for c in correct]
    return m.example_stats(preds, ["y"] * len(correct))


def test_mcnemar_matches_statsmodels_on_planted_table():
    from statsmodels.stats.contingency_tables import mcnemar

    # both right 50, only a right 12, only b right 25, both wrong 13
    a = np.array([1] * 50 + [1] * 12 + [0] * 25 + [0] * 13)
    b = np.array([1] * 50 + [0] * 12 + [1] * 25 + [0] * 13)
    expected = mcnemar([[50, 12], [25, 13]], exact=True).pvalue
    assert mcnemar_p(a, b) == (pytest.approx(expected, abs=1e-12), 12, 25)
    result = paired_test(get_metric("accuracy"), _accuracy_stats(a), _accuracy_stats(b), "mcnemar", 500)
    assert list(result) == ["accuracy"]
    r = result["accuracy"]
    assert r.p_value == pytest.approx(expected, abs=1e-12)
    assert r.difference == pytest.approx(0.13) and r.low < 0.13 < r.high
    assert mcnemar_p(a, a)[0] == 1.0


def test_mcnemar_refuses_non_binary_metrics():
    m = get_metric("bleu")
    stats = m.example_stats(["a b c"], ["a b c"])
    with pytest.raises(HarnessError, match="McNemar needs a per-example 0/1 score"):
        paired_test(m, stats, stats, "mcnemar")


@pytest.mark.parametrize("method", ["percentile", "bca"])
def test_intervals_cover_the_true_mean(method):
    """Exponential data (skewed), n=60: a 90% interval should cover the true mean ~90% of the time."""
    m = ValueMean()
    rng = np.random.default_rng(1)
    trials, covered = 300, 0
    for trial in range(trials):
        values = rng.exponential(2.0, size=60)
        stats = m.example_stats([str(float(v)) for v in values], [""] * 60)
        interval = bootstrap_intervals(m, stats, 400, confidence=0.9, seed=trial, method=method)["mean"]
        assert interval.method == method and interval.n == 60
        assert interval.low <= interval.value <= interval.high
        covered += interval.low <= 2.0 <= interval.high
    assert 0.82 <= covered / trials <= 0.97


def test_bca_degenerate_cases():
    m = get_metric("accuracy")
    stats = m.example_stats(["a"] * 20, ["a"] * 20)  # every resample has accuracy 1
    interval = bootstrap_intervals(m, stats, 100, method="bca")["accuracy"]
    assert (interval.low, interval.high) == (1.0, 1.0)
    # every resample above the estimate: z0 is infinite, BCa undefined (the caller falls back)
    assert _bca_bounds(np.array([2.0, 3.0]), 1.0, np.array([1.0, 1.1]), 0.05) is None


def test_randomization_and_bootstrap_agree_on_direction():
    rng = np.random.default_rng(3)
    a = (rng.random(400) < 0.60).astype(int)
    b = a | (rng.random(400) < 0.25)
    m = get_metric("accuracy")
    sa, sb = _accuracy_stats(a), _accuracy_stats(b)
    for test in ("bootstrap", "randomization", "mcnemar"):
        r = paired_test(m, sa, sb, test, 1000, seed=0)["accuracy"]
        assert r.difference == pytest.approx(b.mean() - a.mean())
        assert r.p_value < 0.05, test
        assert r.low > 0
    same = paired_test(m, sa, sa, "randomization", 200)["accuracy"]
    assert same.p_value == 1.0 and same.difference == 0.0


def test_resample_indices_are_seeded_and_shared():
    first = resample_indices(50, 10, seed=4)
    assert first.shape == (10, 50) and np.array_equal(first, resample_indices(50, 10, seed=4))
    assert not np.array_equal(first, resample_indices(50, 10, seed=5))


def test_large_resamples_are_blocked_and_match_small_ones(monkeypatch):
    import harness.metrics.stats as stats_module

    m = get_metric("accuracy")
    stats = _accuracy_stats(np.arange(100) % 3 == 0)
    whole = bootstrap_intervals(m, stats, 300, seed=9)["accuracy"]
    monkeypatch.setattr(stats_module, "_BLOCK", 250)  # blocks of 2 resamples
    assert bootstrap_intervals(m, stats, 300, seed=9)["accuracy"] == whole


def test_argument_errors():
    m = get_metric("accuracy")
    stats = _accuracy_stats(np.array([1, 0, 1]))
    with pytest.raises(HarnessError, match="same examples"):
        paired_test(m, stats, stats[:2])
    with pytest.raises(HarnessError, match="unknown paired test"):
        paired_test(m, stats, stats, "t-test")
    with pytest.raises(HarnessError, match="confidence"):
        bootstrap_intervals(m, stats, confidence=95)
    with pytest.raises(HarnessError, match="interval method"):
        bootstrap_intervals(m, stats, method="basic")
    with pytest.raises(HarnessError, match="no examples"):
        bootstrap_intervals(m, stats[:0])


@pytest.mark.parametrize("n_units, block", [(1, 10**9), (13, 10**9), (13, 26), (40, 7)])
def test_bootstrap_statistic_draws_the_shared_indices_whatever_the_blocks(monkeypatch, n_units, block):
    """The generic bootstrap (review analysis's) resamples with the rows of `resample_indices`, and so with
    the draw it made before it moved here (one `integers(0, n, n)` per resample), in blocks or not."""
    import harness.metrics.stats as stats_module
    from harness.metrics.stats import bootstrap_statistic

    values = np.random.default_rng(2).normal(size=(n_units, 2))
    monkeypatch.setattr(stats_module, "_BLOCK", block)
    seen: list[np.ndarray] = []
    value, low, high = bootstrap_statistic(n_units, lambda i: seen.append(i.copy()) or values[i].mean(axis=0), 60,
                                           seed=8, confidence=0.9)
    rng = np.random.default_rng(8)
    legacy = np.array([values[rng.integers(0, n_units, n_units)].mean(axis=0) for _ in range(60)])
    assert np.array_equal(np.array(seen[1:]), resample_indices(n_units, 60, 8))
    assert np.array_equal(value, values.mean(axis=0))
    tail = (1.0 - 0.9) / 2.0 * 100.0
    assert np.array_equal(low, np.percentile(legacy, tail, axis=0))
    assert np.array_equal(high, np.percentile(legacy, 100.0 - tail, axis=0))


def test_holm_and_mcnemar_one_sided_have_one_home():
    """The gate and review analysis call the routines here rather than keep their own."""
    import harness.gate.stats as gate_stats
    import harness.metrics.stats as home
    import harness.review.stats as review_stats

    assert gate_stats.holm is home.holm and gate_stats.mcnemar_one_sided is home.mcnemar_one_sided
    assert gate_stats.bootstrap_differences is home.paired_differences
    assert gate_stats.randomization_differences is home.randomization_differences
    assert home.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    rate = review_stats.bootstrap(5, lambda i: np.array([np.mean(i)]), 30, seed=1)
    assert [x.tolist() for x in rate] == [x.tolist() for x in home.bootstrap_statistic(5, lambda i: np.array(
        [np.mean(i)]), 30, seed=1)]


def test_no_resampling_code_outside_metrics_stats():
    """No random draws in the gate's, the report's or review's statistics: they call harness.metrics.stats."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for path in ("harness/gate/stats.py", "harness/review/stats.py", "reports/paired.py", "harness/gate/decision.py"):
        text = (root / path).read_text()
        for needle in ("default_rng", ".choice(", ".integers(", "np.bincount", "binom."):
            assert needle not in text, f"{path} draws or tests on its own ({needle}); call harness.metrics.stats"


def test_paired_from_sums_is_paired_test_for_the_same_resamples():
    from harness.metrics.stats import paired_from_sums, resample_counts

    m = get_metric("accuracy")
    a, b = _accuracy_stats(np.arange(30) % 3 == 0), _accuracy_stats(np.arange(30) % 2 == 0)
    counts = resample_counts(30, 200, 6)
    assert paired_from_sums(m, a, b, counts @ a, counts @ b) == paired_test(m, a, b, n_resamples=200, seed=6)
