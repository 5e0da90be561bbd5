"""The `judge` metric of generation suites: `{name: judge, model: REF, rubric: likert|pass_fail|pairwise|PATH,
reference: true|false}`.

A metric sees predictions and references; a judge also reads the input, so evaluation passes the
examples' prompts as `inputs` to a metric of kind "judge" (harness/evaluation.py). Per-example
statistics keep the corpus score exact under the bootstrap like every other metric: the columns are
sums whose ratios are the scores, and an item the judge could not grade adds to `count` only, so
`failure_rate` reports it and it never becomes a grade.

- likert / pass_fail: `grade` (the probability-weighted grade, G-Eval; for an endpoint the chosen
  grade), `top` (the most likely option's grade), `failure_rate`. pass_fail grades are P(pass).
- pairwise: the output against the suite's reference, both orders: `win_rate` (wins plus half of the
  ties and inconsistent pairs), `position_consistency`, `failure_rate`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from harness.errors import HarnessError
from harness.judges.local import expected_grade
from harness.judges.pairwise import judge_pairs
from harness.judges.prompt import JudgeItem, build_prompt, option_value
from harness.judges.verdict import Judge, Verdict
from harness.metrics.base import Metric, check_predictions, reference_lists
from harness.records.rubric import Rubric


@dataclasses.dataclass(frozen=True)
class JudgeOptions:
    model: str = ""
    rubric: str = "likert"
    reference: bool = False
    device: str = "auto"
    timeout: float = 60.0
    retries: int = 2
    concurrency: int = 4
    batch_size: int = 8

    def check(self, metric: str) -> None:
        if not self.model:
            raise HarnessError(f"metric '{metric}': option 'model' is required (a model reference or "
                               "openai:http://HOST:PORT/v1#MODEL)")
        if self.retries < 0 or self.concurrency < 1 or self.timeout <= 0 or self.batch_size < 1:
            raise HarnessError(f"metric '{metric}': timeout must be > 0, retries >= 0, concurrency and "
                               "batch_size >= 1")


class JudgeMetric(Metric):
    name = "judge"
    kind = "judge"
    Options = JudgeOptions

    def setup(self) -> None:
        from harness.review.rubrics import load_rubric

        self.rubric: Rubric = load_rubric(self.options.rubric)
        self._judge: Judge | None = None
        self.last_verdicts: list[Verdict] = []  # for bias checks and judge-uncertain sampling

    @property
    def judge(self) -> Judge:
        if self._judge is None:
            from harness.judges.loading import load_judge

            o = self.options
            self._judge = load_judge(o.model, o.device, o.timeout, o.retries, o.concurrency, o.batch_size)
        return self._judge

    def higher_is_better(self, score: str) -> bool:
        return score != "failure_rate"

    @property
    def pairwise(self) -> bool:
        return self.rubric.kind == "pairwise"

    @property
    def stat_names(self) -> list[str]:
        return ["win", "tie", "consistent", "ok", "count"] if self.pairwise else ["grade", "top", "ok", "count"]

    @property
    def score_names(self) -> list[str]:
        return ["win_rate", "position_consistency", "failure_rate"] if self.pairwise else [
            "grade", "top", "failure_rate"]

    @property
    def signature(self) -> str:
        from harness.judges.prompt import rubric_hash, template_hash

        return (f"judge:{self.options.model}|rubric:{self.rubric.name}@{rubric_hash(self.rubric)}"
                f"|prompt:{template_hash(self.rubric, self.options.reference)}")

    def example_stats(self, predictions: Sequence[str], references, labels=None,
                      inputs: Sequence[str] | None = None) -> np.ndarray:
        preds = check_predictions(self.name, predictions)
        refs = [r[0] for r in reference_lists(self.name, preds, references)]
        if inputs is None or len(inputs) != len(preds):
            raise HarnessError(f"metric '{self.name}': the judge reads each example's input; this caller gave "
                               "none (only suites evaluated by the harness can use the judge metric)")
        if self.pairwise:
            return self._pairwise_stats(list(inputs), preds, refs)
        items = [JudgeItem(i, p, r) for i, p, r in zip(inputs, preds, refs, strict=True)]
        prompts = [build_prompt(self.rubric, item, self.options.reference) for item in items]
        self.last_verdicts = self.judge.judge(prompts, self.rubric.choices())
        return np.array([[expected_grade(v) or 0.0, option_value(v.label) if v.ok else 0.0, float(v.ok), 1.0]
                         for v in self.last_verdicts], dtype=np.float64).reshape(-1, 4)

    def _pairwise_stats(self, inputs: list[str], preds: list[str], refs: list[str]) -> np.ndarray:
        items = [JudgeItem(i, p, r, output_b=r) for i, p, r in zip(inputs, preds, refs, strict=True)]
        results = judge_pairs(self.judge, self.rubric, items, self.options.reference)
        self.last_verdicts = [v for r in results for v in (r.forward, r.swapped)]
        rows = [[r.outcome == "first", r.outcome in ("tie", "inconsistent"), r.outcome in ("first", "second", "tie"),
                 r.outcome != "failed", 1.0] for r in results]
        return np.array(rows, dtype=np.float64).reshape(-1, 5)

    def scores_from_sums(self, sums: np.ndarray) -> dict[str, np.ndarray]:
        sums = np.asarray(sums, dtype=np.float64)
        ok, count = sums[..., -2], sums[..., -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            failure = 1.0 - ok / count
            if self.pairwise:
                return {"win_rate": (sums[..., 0] + 0.5 * sums[..., 1]) / ok,
                        "position_consistency": sums[..., 2] / ok, "failure_rate": failure}
            return {"grade": sums[..., 0] / ok, "top": sums[..., 1] / ok, "failure_rate": failure}
