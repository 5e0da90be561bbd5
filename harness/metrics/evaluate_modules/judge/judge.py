"""`evaluate` module for the harness metric 'judge' (see docs/judges.md): pass the examples' prompts as `inputs`,
and the judge's options (model, rubric, reference) as keyword arguments."""

import evaluate

from harness.metrics.evaluate_bridge import module_compute, module_info

_NAME = "judge"


class HarnessJudge(evaluate.Metric):
    """Scores from harness.metrics.get_metric("judge", **options); identical numbers to the harness."""

    def _info(self):
        return module_info(_NAME, self.__doc__ or "")

    def _compute(self, predictions, references, **options):
        return module_compute(_NAME, predictions, references, **options)
