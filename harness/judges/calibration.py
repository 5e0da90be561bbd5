"""Calibration of a judge against the human reviewers of the same rubric.

Grades are compared as numbers (a Likert point; pass 1 / fail 0; pairwise A 1 / tie 0.5 / B 0).
The human consensus of an item is the median of its reviewers' grades for a Likert rubric (the
lower middle grade when an even count splits) and the majority otherwise (an item whose majority is
tied has no consensus and is left out). Reported against the consensus and against each reviewer:
raw agreement, the base rate (the agreement of always answering the humans' commonest grade),
Cohen's kappa, weighted kappa (quadratic and linear), Krippendorff's alpha (ordinal) and
Spearman/Kendall, each with a percentile bootstrap interval over items. The ceiling is the same set
for the humans themselves: each reviewer against the consensus of the *other* reviewers, pooled.
The agreement functions are harness.review.stats's; this module only shapes the grades for them.

A record is keyed by the judge model's fingerprint, the prompt template's hash and the rubric's hash
(CalibrationKey); it is stale as soon as any of the three differs from the judge being used.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from harness.judges.prompt import option_value, rubric_hash, template_hash
from harness.records.rubric import Rubric
from harness.review import stats
from harness.review.stats import Estimate

STATISTICS = ("raw_agreement", "base_rate", "cohen_kappa", "weighted_kappa", "weighted_kappa_linear",
              "krippendorff_alpha", "spearman", "kendall")


@dataclass(frozen=True)
class CalibrationKey:
    judge_fingerprint: str
    prompt_hash: str
    rubric_hash: str

    @classmethod
    def of(cls, judge_fingerprint: str, rubric: Rubric, use_reference: bool = False) -> CalibrationKey:
        return cls(judge_fingerprint, template_hash(rubric, use_reference), rubric_hash(rubric))

    def stale_reasons(self, current: CalibrationKey) -> list[str]:
        """What changed since the calibration: empty when it still holds."""
        names = {"judge_fingerprint": "the judge model", "prompt_hash": "the judge prompt",
                 "rubric_hash": "the rubric"}
        return [f"{label} changed" for name, label in names.items() if getattr(self, name) != getattr(current, name)]


@dataclass
class CalibrationRecord:
    key: CalibrationKey
    rubric: str
    n_items: int
    vs_consensus: dict[str, Estimate]
    ceiling: dict[str, Estimate]
    vs_reviewers: dict[str, dict[str, Estimate]]
    labels: list[str]
    confusion: list[list[int]]  # rows: human consensus, columns: judge, both in `labels` order
    failed: int = 0  # items the judge could not grade
    no_consensus: int = 0
    meta: dict = field(default_factory=dict)

    def is_stale(self, current: CalibrationKey) -> bool:
        return bool(self.key.stale_reasons(current))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> CalibrationRecord:
        """The record from to_json's text, or from the store's strict JSON where NaN is written null."""
        data = json.loads(text)
        data["key"] = CalibrationKey(**data["key"])
        for part in ("vs_consensus", "ceiling"):
            data[part] = {k: _estimate(v) for k, v in data[part].items()}
        data["vs_reviewers"] = {r: {k: _estimate(v) for k, v in d.items()} for r, d in data["vs_reviewers"].items()}
        return cls(**data)


def _estimate(fields: dict) -> Estimate:
    return Estimate(**{k: (float("nan") if v is None and k != "n" else v) for k, v in fields.items()})


# the statistics on two equally long vectors of numeric grades -----------------------------------------------
def agreement_statistics(judge: np.ndarray, human: np.ndarray) -> dict[str, float]:
    """Every statistic of STATISTICS for paired numeric grades (NaN where undefined, e.g. one grade only)."""
    judge, human = np.asarray(judge, dtype=float), np.asarray(human, dtype=float)
    values, counts = np.unique(human, return_counts=True)
    with np.errstate(all="ignore"):
        out = {"raw_agreement": float(np.mean(judge == human)), "base_rate": float(counts.max() / len(human)),
               "cohen_kappa": stats.cohen_kappa(judge, human),
               "weighted_kappa": stats.cohen_kappa(judge, human, "quadratic"),
               "weighted_kappa_linear": stats.cohen_kappa(judge, human, "linear"),
               "krippendorff_alpha": _alpha(judge, human)}
    corr = stats.correlations(human, judge)
    out.update(spearman=corr["spearman_rho"], kendall=corr["kendall_tau"])
    return out


def _alpha(judge: np.ndarray, human: np.ndarray) -> float:
    if len(np.unique(np.concatenate([judge, human]))) < 2:
        return float("nan")
    return stats.krippendorff_alpha(np.vstack([judge, human]), level="ordinal")


def with_intervals(judge: np.ndarray, human: np.ndarray, units: np.ndarray | None = None,
                   n_resamples: int = 1000, seed: int = 0) -> dict[str, Estimate]:
    """agreement_statistics with percentile bootstrap intervals, resampling `units` (default: each pair)."""
    judge, human = np.asarray(judge, dtype=float), np.asarray(human, dtype=float)
    units = np.arange(len(judge)) if units is None else np.asarray(units)
    groups = [np.flatnonzero(units == u) for u in np.unique(units)]
    if not groups:
        return {name: Estimate(float("nan"), float("nan"), float("nan"), 0) for name in STATISTICS}

    def statistic(indices: np.ndarray) -> np.ndarray:
        rows = np.concatenate([groups[i] for i in indices])
        values = agreement_statistics(judge[rows], human[rows])
        return np.array([values[name] for name in STATISTICS])

    with warnings.catch_warnings():  # a statistic undefined on every resample (one grade only) stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        value, low, high = stats.bootstrap(len(groups), statistic, n_resamples, seed)
    return {name: Estimate(float(value[i]), float(low[i]), float(high[i]), len(groups))
            for i, name in enumerate(STATISTICS)}


# consensus and the record ----------------------------------------------------------------------------------------
def consensus(kind: str, grades: list[float]) -> float | None:
    """Median (Likert, lower middle) or majority (else); None when a majority is tied or there is no grade."""
    if not grades:
        return None
    if kind == "likert":
        ordered = sorted(grades)
        return ordered[(len(ordered) - 1) // 2]
    top = Counter(grades).most_common()
    return top[0][0] if len(top) == 1 or top[0][1] > top[1][1] else None


def calibrate(key: CalibrationKey, rubric: Rubric, judge: Mapping[str, str | None],
              humans: Mapping[str, Mapping[str, str]], n_resamples: int = 1000, seed: int = 0) -> CalibrationRecord:
    """judge: item -> the judge's option (None: failed); humans: item -> reviewer -> option."""
    value = {o: option_value(o) for o in rubric.choices()}
    items = sorted(set(judge) & set(humans))
    failed = sum(1 for i in items if judge[i] is None)
    graded = [i for i in items if judge[i] is not None]
    cons = {i: consensus(rubric.kind, [value[g] for g in humans[i].values()]) for i in graded}
    agreed = [i for i in graded if cons[i] is not None]
    j = np.array([value[judge[i]] for i in agreed])
    h = np.array([cons[i] for i in agreed])
    record = CalibrationRecord(
        key, rubric.name, len(agreed), with_intervals(j, h, None, n_resamples, seed),
        _ceiling(rubric, {i: humans[i] for i in graded}, value, n_resamples, seed),
        _per_reviewer(rubric, judge, humans, graded, value, n_resamples, seed),
        list(rubric.choices()), _confusion(rubric, j, h), failed, len(graded) - len(agreed))
    return record


def _per_reviewer(rubric, judge, humans, graded, value, n_resamples, seed) -> dict[str, dict[str, Estimate]]:
    reviewers = sorted({r for i in graded for r in humans[i]})
    out = {}
    for reviewer in reviewers:
        mine = [i for i in graded if reviewer in humans[i]]
        j = np.array([value[judge[i]] for i in mine])
        h = np.array([value[humans[i][reviewer]] for i in mine])
        out[reviewer] = with_intervals(j, h, None, n_resamples, seed)
    return out


def _ceiling(rubric: Rubric, humans: Mapping[str, Mapping[str, str]], value: dict[str, float],
             n_resamples: int, seed: int) -> dict[str, Estimate]:
    """Each reviewer against the consensus of the others, pooled over reviewers; items resampled whole."""
    rows: list[tuple[float, float, int]] = []
    for unit, item in enumerate(sorted(humans)):
        grades = humans[item]
        for reviewer, grade in grades.items():
            others = consensus(rubric.kind, [value[g] for r, g in grades.items() if r != reviewer])
            if others is not None:
                rows.append((value[grade], others, unit))
    array = np.array(rows, dtype=float).reshape(-1, 3)
    return with_intervals(array[:, 0], array[:, 1], array[:, 2], n_resamples, seed)


def _confusion(rubric: Rubric, judge: np.ndarray, human: np.ndarray) -> list[list[int]]:
    codes = [option_value(o) for o in rubric.choices()]
    return [[int(np.sum((human == hc) & (judge == jc))) for jc in codes] for hc in codes]
