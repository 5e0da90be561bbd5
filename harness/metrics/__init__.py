"""Metrics: per-example sufficient statistics, exact corpus scores, intervals and paired tests.

    m = get_metric("bleu", tokenize="13a")
    stats = m.example_stats(predictions, references)      # (n, k) float64
    m.corpus(stats)                                       # {"bleu": 34.2}
    bootstrap_intervals(m, stats)                         # {"bleu": Interval(...)}

See docs/metrics.md for every metric, its options and the statistics.
"""

from harness.metrics.base import MeanMetric, Metric, NoOptions
from harness.metrics.evaluate_bridge import evaluate_path
from harness.metrics.registry import (
    ENTRY_POINT_GROUP,
    builtin_metrics,
    get_metric,
    list_metrics,
    load_metric_plugin,
    metric_higher_is_better,
    register_metric,
)
from harness.metrics.stats import (
    Interval,
    PairedResult,
    bootstrap_intervals,
    bootstrap_statistic,
    holm,
    paired_test,
    resample_indices,
    resampled_scores,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "Interval",
    "MeanMetric",
    "Metric",
    "NoOptions",
    "PairedResult",
    "bootstrap_intervals",
    "bootstrap_statistic",
    "builtin_metrics",
    "evaluate_path",
    "get_metric",
    "holm",
    "list_metrics",
    "load_metric_plugin",
    "metric_higher_is_better",
    "paired_test",
    "register_metric",
    "resample_indices",
    "resampled_scores",
]
