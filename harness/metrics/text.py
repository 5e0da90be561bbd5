"""Exact match of generated text against one or several accepted answers."""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from harness.metrics.base import MeanMetric

_PUNCTUATION = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def squad_normalize(text: str) -> str:
    """SQuAD v1.1's answer normalisation: lowercase, drop punctuation and articles, squeeze spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


@dataclass(frozen=True)
class ExactMatchOptions:
    normalize: bool = False
    ignore_case: bool = False


class ExactMatch(MeanMetric):
    """1 when the prediction equals any reference after the chosen normalisation, else 0."""

    name = "exact_match"
    kind = "text"
    Options = ExactMatchOptions
    binary_score = "exact_match"

    @property
    def score_names(self) -> list[str]:
        return ["exact_match"]

    def _norm(self, text: str) -> str:
        if self.options.normalize:
            return squad_normalize(text)
        return text.lower() if self.options.ignore_case else text

    def example_scores(self, predictions, references, labels):
        values = []
        for pred, refs in zip(predictions, references, strict=True):
            p = self._norm(pred)
            values.append(float(any(p == self._norm(r) for r in refs)))
        return {"exact_match": values}
