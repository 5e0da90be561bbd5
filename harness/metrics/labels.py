"""Classification metrics: accuracy and precision / recall / F1 with scikit-learn's averages.

Labels are compared as strings (an int label such as SST-2's 0/1 becomes "0"/"1").
F1 stats are per-example confusion contributions, one column per label and kind:
`tp[l]`, `fp[l]`, `fn[l]` (a one-hot row) plus `correct`. Summing rows gives the confusion
counts of any resample, and the scores follow scikit-learn's `precision_recall_fscore_support`
with `zero_division=0`:

* binary: the scores of `pos_label` (its stats are the four columns tp, fp, fn, correct);
* micro: from the tp / fp / fn totals over the label set;
* macro: unweighted mean over the labels *present* in the (resampled) references or
  predictions, i.e. scikit-learn with `labels=None` when every prediction is in the label set;
* weighted: mean weighted by support (tp + fn).

A prediction outside the label set is wrong: it adds `fn` to the true label and no `fp`,
as scikit-learn does when given `labels=`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.errors import HarnessError
from harness.metrics.base import MeanMetric, Metric, check_predictions

AVERAGES = ("binary", "macro", "micro", "weighted")


def label_list(metric: str, labels: Sequence[Any] | None, required: bool) -> list[str] | None:
    """The label set as unique strings, in the order given."""
    if labels is None:
        if required:
            raise HarnessError(f"metric '{metric}': needs the label set; pass labels=[...] (every possible label)")
        return None
    if isinstance(labels, str):
        raise HarnessError(f"metric '{metric}': labels must be a list of labels, not one string")
    out = list(dict.fromkeys(str(x) for x in labels))
    if not out:
        raise HarnessError(f"metric '{metric}': the label set is empty; pass labels=[...]")
    return out


def single_references(metric: str, predictions: list[str], references: Any) -> list[str]:
    """One reference label per example."""
    if isinstance(references, str) or len(references) != len(predictions):
        got = "one string" if isinstance(references, str) else f"{len(references)} references"
        raise HarnessError(f"metric '{metric}': {len(predictions)} predictions but {got}")
    out = []
    for i, ref in enumerate(references):
        if ref is None or (isinstance(ref, Sequence) and not isinstance(ref, str)):
            raise HarnessError(
                f"metric '{metric}': reference {i} must be one label, got {ref!r} "
                "(for several accepted answers use exact_match)"
            )
        out.append(str(ref))
    return out


def check_in_labels(metric: str, references: list[str], labels: list[str]) -> None:
    known = set(labels)
    for i, ref in enumerate(references):
        if ref not in known:
            raise HarnessError(
                f"metric '{metric}': reference {i} is {ref!r}, which is not in the label set {labels}; add it to labels"
            )


class Accuracy(MeanMetric):
    """Share of predictions equal to the reference label."""

    name = "accuracy"
    kind = "label"
    binary_score = "accuracy"

    @property
    def score_names(self) -> list[str]:
        return ["accuracy"]

    def prepare(self, predictions, references, labels):
        preds = [p.strip() for p in check_predictions(self.name, predictions)]
        refs = single_references(self.name, preds, references)
        known = label_list(self.name, labels, required=False)
        if known is not None:
            check_in_labels(self.name, refs, known)
        return preds, [[r] for r in refs], known

    def example_scores(self, predictions, references, labels):
        return {"accuracy": [float(p == r[0]) for p, r in zip(predictions, references, strict=True)]}


@dataclass(frozen=True)
class PRFOptions:
    average: str = "macro"
    pos_label: str | None = None

    def check(self, metric: str) -> None:
        if self.average not in AVERAGES:
            raise HarnessError(
                f"metric '{metric}': option 'average' must be one of {', '.join(AVERAGES)}, got {self.average!r}"
            )
        if self.pos_label is not None and self.average != "binary":
            raise HarnessError(f"metric '{metric}': option 'pos_label' needs average='binary'")


class PRF(Metric):
    """Precision, recall and F1 together (`prf`); `f1`, `precision`, `recall` keep one of them."""

    name = "prf"
    kind = "label"
    Options = PRFOptions
    parts: tuple[str, ...] = ("precision", "recall", "f1")

    def setup(self) -> None:
        self._labels: list[str] | None = None

    @property
    def score_names(self) -> list[str]:
        return [f"{part}_{self.options.average}" for part in self.parts]

    @property
    def stat_names(self) -> list[str]:
        if self._labels is None:
            raise HarnessError(f"metric '{self.name}': stat_names depend on the labels; call example_stats")
        if self.options.average == "binary":
            return [f"tp[{self._pos}]", f"fp[{self._pos}]", f"fn[{self._pos}]", "correct"]
        return [f"{kind}[{lab}]" for kind in ("tp", "fp", "fn") for lab in self._labels] + ["correct"]

    def _set_labels(self, labels: list[str]) -> None:
        if self.options.average == "binary":
            if len(labels) > 2:
                raise HarnessError(
                    f"metric '{self.name}': average='binary' needs at most 2 labels, got {len(labels)}; "
                    "use average='macro', 'micro' or 'weighted'"
                )
            pos = self.options.pos_label
            if pos is None and "1" not in labels:
                raise HarnessError(f"metric '{self.name}': average='binary' needs pos_label (one of {labels})")
            self._pos = "1" if pos is None else pos
            if self._pos not in labels:
                raise HarnessError(f"metric '{self.name}': pos_label {self._pos!r} is not in labels {labels}")
        self._labels = labels

    def example_stats(self, predictions, references, labels=None) -> np.ndarray:
        preds = [p.strip() for p in check_predictions(self.name, predictions)]
        refs = single_references(self.name, preds, references)
        known = label_list(self.name, labels, required=True)
        check_in_labels(self.name, refs, known)
        self._set_labels(known)
        if self.options.average == "binary":
            p = np.array([x == self._pos for x in preds], dtype=np.float64)
            r = np.array([x == self._pos for x in refs], dtype=np.float64)
            correct = np.array([x == y for x, y in zip(preds, refs, strict=True)], dtype=np.float64)
            return np.column_stack([p * r, p * (1 - r), (1 - p) * r, correct])
        return _one_hot_confusion(preds, refs, known)

    def scores_from_sums(self, sums: np.ndarray) -> dict[str, np.ndarray]:
        sums = np.asarray(sums, dtype=np.float64)
        n_labels = (sums.shape[-1] - 1) // 3
        tp, fp, fn = (sums[..., i * n_labels : (i + 1) * n_labels] for i in range(3))
        scores = prf_from_counts(tp, fp, fn, self.options.average)
        return {name: scores[part] for name, part in zip(self.score_names, self.parts, strict=True)}

    def example_values(self, stats: np.ndarray) -> dict[str, np.ndarray]:
        """Per-example correctness (0/1): F1 of one example means little."""
        correct = np.asarray(stats, dtype=np.float64)[:, -1]
        return {name: correct for name in self.score_names}


def _one_hot_confusion(preds: list[str], refs: list[str], labels: list[str]) -> np.ndarray:
    index = {lab: i for i, lab in enumerate(labels)}
    n, n_labels = len(preds), len(labels)
    stats = np.zeros((n, 3 * n_labels + 1), dtype=np.float64)
    for row, (p, r) in enumerate(zip(preds, refs, strict=True)):
        if p == r:
            stats[row, index[r]] = 1.0
            stats[row, -1] = 1.0
            continue
        if p in index:
            stats[row, n_labels + index[p]] = 1.0
        stats[row, 2 * n_labels + index[r]] = 1.0
    return stats


def _divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (scikit-learn's zero_division=0)."""
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den != 0)
    return out


def prf_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, average: str) -> dict[str, np.ndarray]:
    """Averaged precision / recall / F1 from per-label counts of shape (..., L)."""
    if average == "micro":
        tp, fp, fn = (x.sum(axis=-1, keepdims=True) for x in (tp, fp, fn))
    precision = _divide(tp, tp + fp)
    recall = _divide(tp, tp + fn)
    f1 = _divide(2 * tp, 2 * tp + fp + fn)
    parts = {"precision": precision, "recall": recall, "f1": f1}
    if average in ("micro", "binary"):
        return {k: v[..., 0] for k, v in parts.items()}
    if average == "macro":
        present = (tp + fp + fn) > 0
        n_present = present.sum(axis=-1)
        return {k: _divide(np.where(present, v, 0.0).sum(axis=-1), n_present) for k, v in parts.items()}
    support = tp + fn
    total = support.sum(axis=-1)
    return {k: _divide((v * support).sum(axis=-1), total) for k, v in parts.items()}


class F1(PRF):
    name = "f1"
    parts = ("f1",)


class Precision(PRF):
    name = "precision"
    parts = ("precision",)


class Recall(PRF):
    name = "recall"
    parts = ("recall",)
