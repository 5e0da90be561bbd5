"""`evaluate` module for the harness metric 'f1' (see docs/metrics.md for its options)."""

import evaluate

from harness.metrics.evaluate_bridge import module_compute, module_info

_NAME = "f1"


class HarnessF1(evaluate.Metric):
    """Scores from harness.metrics.get_metric("f1", **options); identical numbers to the harness."""

    def _info(self):
        return module_info(_NAME, self.__doc__ or "")

    def _compute(self, predictions, references, **options):
        return module_compute(_NAME, predictions, references, **options)
