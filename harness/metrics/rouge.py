"""ROUGE (Google's rouge-score): per-example F-measure, corpus score = mean over examples.

The corpus number is the mean of per-example F1, which is what people compare when they quote
rouge-score (and HF evaluate's `rouge`). With several references an example takes, for each
type, the reference with the best F-measure (`RougeScorer.score_multi`).

rougeLsum treats newlines as the only sentence boundaries (rouge-score's behaviour without
`split_summaries`, which would need nltk's punkt data): put one sentence per line in both the
prediction and the reference, otherwise rougeLsum equals rougeL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from harness.errors import HarnessError
from harness.metrics.base import MeanMetric

_TYPE = re.compile(r"rouge([1-9]|L|Lsum)$")


@dataclass(frozen=True)
class RougeOptions:
    types: tuple[str, ...] = ("rouge1", "rouge2", "rougeL", "rougeLsum")
    use_stemmer: bool = True

    def check(self, metric: str) -> None:
        bad = [t for t in self.types if not _TYPE.match(t)]
        if bad or not self.types:
            raise HarnessError(
                f"metric '{metric}': option 'types' has {bad or 'nothing'}; use rouge1..rouge9, rougeL or rougeLsum"
            )
        if len(set(self.types)) != len(self.types):
            raise HarnessError(f"metric '{metric}': option 'types' repeats a type: {list(self.types)}")


class Rouge(MeanMetric):
    """rouge-score F-measures; stats are one F column per type plus a count column."""

    name = "rouge"
    kind = "text"
    Options = RougeOptions

    def setup(self) -> None:
        from rouge_score import rouge_scorer

        self._scorer = rouge_scorer.RougeScorer(list(self.options.types), use_stemmer=self.options.use_stemmer)

    @property
    def score_names(self) -> list[str]:
        return list(self.options.types)

    @property
    def signature(self) -> str | None:
        from importlib.metadata import version

        o = self.options
        return f"types:{','.join(o.types)}|stemmer:{'yes' if o.use_stemmer else 'no'}|" + (
            f"lsum_split:newline|version:rouge-score-{version('rouge-score')}"
        )

    def example_scores(self, predictions, references, labels):
        out: dict[str, list[float]] = {t: [] for t in self.options.types}
        for pred, refs in zip(predictions, references, strict=True):
            scores = self._scorer.score_multi(refs, pred)
            for t in self.options.types:
                out[t].append(scores[t].fmeasure)
        return out
