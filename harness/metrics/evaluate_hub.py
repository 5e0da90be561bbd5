"""`evaluate:<name>` metrics: any Hugging Face `evaluate` module, where a hub (or its cache) is reachable.

The module is computed once per example and the corpus score is the mean of those values, so
intervals and paired tests work as for every other metric. For metrics that are not averages of
per-example values (corpus BLEU, for one) use the built-in metric instead: its corpus score is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.errors import HarnessError
from harness.metrics.base import MeanMetric, conventional_higher_is_better

PREFIX = "evaluate:"


@dataclass(frozen=True)
class EvaluateOptions:
    score_key: str = ""


class EvaluateHubMetric(MeanMetric):
    kind = "text"
    Options = EvaluateOptions

    def __init__(self, module_name: str, **options: Any) -> None:
        self.module_name = module_name
        self.name = f"{PREFIX}{module_name}"  # type: ignore[misc]  # per-instance name
        super().__init__(**options)

    def setup(self) -> None:
        import evaluate

        try:
            self.module = evaluate.load(self.module_name)
        except Exception as exc:  # noqa: BLE001 - evaluate raises many types for "not reachable"
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise HarnessError(
                f"metric '{self.name}': cannot load the evaluate module ({first}); with no hub, use a built-in metric"
            ) from None

    @property
    def score_names(self) -> list[str]:
        return [self.options.score_key or self.module_name]

    def higher_is_better(self, score: str) -> bool:
        """evaluate modules do not say: a conventional lower-is-better module (ter) or score name is."""
        return conventional_higher_is_better(score) and conventional_higher_is_better(self.module_name)

    def example_scores(self, predictions, references, labels):
        key = self.score_names[0]
        values = []
        for pred, refs in zip(predictions, references, strict=True):
            result = self.module.compute(predictions=[pred], references=[refs if len(refs) > 1 else refs[0]])
            if key not in result:
                raise HarnessError(f"metric '{self.name}': result has no '{key}' (keys: {', '.join(result)}); "
                                   "set the option score_key")
            values.append(float(result[key]))
        return {key: values}


def evaluate_factory(name: str):
    """The factory `get_metric` uses for names starting with `evaluate:`."""
    module_name = name[len(PREFIX):]
    if not module_name:
        raise HarnessError("metric 'evaluate:' needs a module name, e.g. evaluate:meteor")
    return lambda **options: EvaluateHubMetric(module_name, **options)
