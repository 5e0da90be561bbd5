"""Corpus chrF / chrF++ (sacrebleu) from per-sentence statistics, scored in numpy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harness.errors import HarnessError
from harness.metrics.base import Metric, check_predictions, reference_lists
from harness.metrics.bleu import reference_streams


@dataclass(frozen=True)
class ChrfOptions:
    char_order: int = 6
    word_order: int = 0
    beta: int = 2
    lowercase: bool = False
    whitespace: bool = False
    eps_smoothing: bool = False

    def check(self, metric: str) -> None:
        if self.char_order < 1 or self.word_order < 0 or self.beta < 0:
            raise HarnessError(
                f"metric '{metric}': char_order must be >= 1, word_order >= 0 and beta >= 0 "
                f"(got {self.char_order}, {self.word_order}, {self.beta})"
            )


class Chrf(Metric):
    """sacrebleu chrF on the 0-100 scale (chrF++ with word_order=2).

    Stats: for every character order then every word order, the triple
    (hypothesis n-grams, reference n-grams, matches); with several references sacrebleu keeps
    the triple of the reference with the best sentence chrF.
    """

    name = "chrf"
    kind = "text"
    Options = ChrfOptions

    def setup(self) -> None:
        from sacrebleu.metrics.chrf import CHRF

        o = self.options
        self._sacre = CHRF(
            char_order=o.char_order,
            word_order=o.word_order,
            beta=o.beta,
            lowercase=o.lowercase,
            whitespace=o.whitespace,
            eps_smoothing=o.eps_smoothing,
        )
        self._sacre.num_refs = 1

    @property
    def stat_names(self) -> list[str]:
        o = self.options
        orders = [f"char{n}" for n in range(1, o.char_order + 1)]
        orders += [f"word{n}" for n in range(1, o.word_order + 1)]
        return [f"{order}_{part}" for order in orders for part in ("hyp", "ref", "match")]

    @property
    def score_names(self) -> list[str]:
        return ["chrf"]

    @property
    def signature(self) -> str | None:
        """sacrebleu's signature; `nrefs` is that of the last `example_stats` call."""
        return self._sacre.get_signature().format()

    def example_stats(self, predictions, references, labels=None) -> np.ndarray:
        preds = check_predictions(self.name, predictions)
        refs = reference_lists(self.name, preds, references)
        if not preds:
            return np.zeros((0, len(self.stat_names)))
        rows = self._sacre._extract_corpus_statistics(preds, reference_streams(refs))
        return np.asarray(rows, dtype=np.float64).reshape(len(preds), len(self.stat_names))

    def scores_from_sums(self, sums: np.ndarray) -> dict[str, np.ndarray]:
        o = self.options
        return {"chrf": compute_chrf(np.asarray(sums, dtype=np.float64), o.beta, o.eps_smoothing)}


def compute_chrf(sums: np.ndarray, beta: float, eps_smoothing: bool) -> np.ndarray:
    """Vectorised `sacrebleu.CHRF._compute_f_score` over sums of shape (..., 3 * orders)."""
    eps = 1e-16
    factor = beta**2
    order = sums.shape[-1] // 3
    shape = sums.shape[:-1]
    score = np.zeros(shape)
    avg_prec, avg_rec = np.zeros(shape), np.zeros(shape)
    effective = np.zeros(shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(order):
            n_hyp, n_ref, n_match = sums[..., 3 * i], sums[..., 3 * i + 1], sums[..., 3 * i + 2]
            prec = np.where(n_hyp > 0, n_match / n_hyp, eps)
            rec = np.where(n_ref > 0, n_match / n_ref, eps)
            denom = factor * prec + rec
            score = score + np.where(denom > 0, (1 + factor) * prec * rec / denom, eps)
            both = (n_hyp > 0) & (n_ref > 0)
            avg_prec = np.where(both, avg_prec + prec, avg_prec)
            avg_rec = np.where(both, avg_rec + rec, avg_rec)
            effective = effective + both
        if eps_smoothing:
            return 100 * score / order
        avg_prec = np.where(effective == 0, 0.0, avg_prec / effective)
        avg_rec = np.where(effective == 0, 0.0, avg_rec / effective)
        f = (1 + factor) * avg_prec * avg_rec
        f = f / ((factor * avg_prec) + avg_rec)
        return np.where(avg_prec + avg_rec != 0, 100 * f, 0.0)
