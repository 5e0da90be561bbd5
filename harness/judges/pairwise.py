"""Pairwise judging in both orders: a win counts only when it survives swapping A and B.

Each pair is judged twice, (first, second) as (A, B) and then as (B, A). The two answers agree when
they name the same output (or both say tie); then that is the outcome. When they disagree the pair is
`inconsistent` and counts as no win for either side (the judge preferred a position, not an output).
Position consistency is the share of pairs, both answers parsed, whose answers agree.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

from harness.judges.prompt import JudgeItem, build_prompt
from harness.judges.verdict import Judge, Verdict
from harness.records.rubric import Rubric

Outcome = Literal["first", "second", "tie", "inconsistent", "failed"]
_FORWARD = {"A": "first", "B": "second", "tie": "tie"}
_SWAPPED = {"A": "second", "B": "first", "tie": "tie"}


@dataclass(frozen=True)
class PairResult:
    outcome: Outcome
    forward: Verdict
    swapped: Verdict


@dataclass(frozen=True)
class PairSummary:
    n: int
    first: int
    second: int
    ties: int
    inconsistent: int
    failed: int
    position_consistency: float
    a_share: float  # how often the judge answered A, over parsed answers: 0.5 means no position lean

    @property
    def first_win_rate(self) -> float:
        """Wins of the first output plus half the ties and inconsistent pairs, over parsed pairs."""
        parsed = self.n - self.failed
        return (self.first + 0.5 * (self.ties + self.inconsistent)) / parsed if parsed else float("nan")


def outcome(forward: Verdict, swapped: Verdict) -> Outcome:
    if not (forward.ok and swapped.ok):
        return "failed"
    a, b = _FORWARD[forward.label], _SWAPPED[swapped.label]
    return a if a == b else "inconsistent"  # type: ignore[return-value]


def judge_pairs(judge: Judge, rubric: Rubric, items: list[JudgeItem], use_reference: bool = False) -> list[PairResult]:
    """Both orders of every pair (item.output is `first`, item.output_b `second`), in one judge call."""
    if rubric.kind != "pairwise":
        raise ValueError(f"rubric '{rubric.name}' is {rubric.kind}, not pairwise")
    swapped = [JudgeItem(i.input, i.output_b or "", i.reference, i.output) for i in items]
    prompts = [build_prompt(rubric, i, use_reference) for i in [*items, *swapped]]
    verdicts = judge.judge(prompts, rubric.choices())
    n = len(items)
    return [PairResult(outcome(f, s), f, s) for f, s in zip(verdicts[:n], verdicts[n:], strict=True)]


def summarise(results: list[PairResult]) -> PairSummary:
    counts = Counter(r.outcome for r in results)
    both = counts["first"] + counts["second"] + counts["tie"] + counts["inconsistent"]
    answers = [v.label for r in results for v in (r.forward, r.swapped) if v.ok]
    return PairSummary(len(results), counts["first"], counts["second"], counts["tie"], counts["inconsistent"],
                       counts["failed"], (both - counts["inconsistent"]) / both if both else float("nan"),
                       answers.count("A") / len(answers) if answers else float("nan"))
