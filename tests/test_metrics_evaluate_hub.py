"""`evaluate:<module>` metrics: per-example values of an evaluate module, averaged."""

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.metrics import evaluate_path, get_metric
from harness.metrics.stats import bootstrap_intervals


def test_evaluate_module_by_path_scores_each_example():
    metric = get_metric(f"evaluate:{evaluate_path('exact_match')}", score_key="exact_match")
    stats = metric.example_stats(["a b", "c", "d"], ["a b", "x", "d"])
    assert metric.corpus(stats)["exact_match"] == pytest.approx(2 / 3)
    assert np.array_equal(metric.example_values(stats)["exact_match"], [1.0, 0.0, 1.0])
    interval = bootstrap_intervals(metric, stats, n_resamples=50, seed=0)["exact_match"]
    assert 0.0 <= interval.low <= interval.high <= 1.0


def test_unreachable_evaluate_module_is_one_line_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HarnessError, match="evaluate:no_such_metric_xyz.*built-in"):
        get_metric("evaluate:no_such_metric_xyz")


def test_wrong_score_key_names_the_keys():
    metric = get_metric(f"evaluate:{evaluate_path('exact_match')}", score_key="nope")
    with pytest.raises(HarnessError, match="score_key"):
        metric.example_stats(["a"], ["a"])
