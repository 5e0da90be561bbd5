"""Corpus BLEU (sacrebleu) from per-sentence sufficient statistics.

sacrebleu extracts the statistics (its own tokenizers, multi-reference n-gram clipping and
closest reference length); this module only re-implements `BLEU.compute_bleu` in numpy so that
the score of any (resampled) sum of statistics is computed for many sums at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from harness.errors import HarnessError
from harness.metrics.base import Metric, check_predictions, reference_lists

_LOG_ZERO = -9999999999.0  # sacrebleu.utils.my_log(0.0)
_SMOOTH_DEFAULTS = {"none": None, "floor": 0.1, "add-k": 1.0, "exp": None}


def reference_streams(refs: list[list[str]]) -> list[list[str | None]]:
    """sacrebleu's layout: one stream per reference position, None where an example has fewer."""
    width = max((len(r) for r in refs), default=1)
    return [[r[j] if j < len(r) else None for r in refs] for j in range(width)]


@dataclass(frozen=True)
class BleuOptions:
    tokenize: str = "13a"
    lowercase: bool = False
    smooth_method: str = "exp"
    smooth_value: float | None = None
    max_ngram_order: int = 4

    def check(self, metric: str) -> None:
        from sacrebleu.metrics.bleu import BLEU

        if self.tokenize not in BLEU.TOKENIZERS:
            raise HarnessError(
                f"metric '{metric}': unknown tokenize {self.tokenize!r}; sacrebleu knows {', '.join(BLEU.TOKENIZERS)}"
            )
        if self.smooth_method not in _SMOOTH_DEFAULTS:
            raise HarnessError(
                f"metric '{metric}': option 'smooth_method' must be one of "
                f"{', '.join(_SMOOTH_DEFAULTS)}, got {self.smooth_method!r}"
            )
        if self.max_ngram_order < 1:
            raise HarnessError(f"metric '{metric}': option 'max_ngram_order' must be at least 1")


class Bleu(Metric):
    """sacrebleu BLEU on the 0-100 scale. Stats: sys_len, ref_len, matches[1..N], totals[1..N]."""

    name = "bleu"
    kind = "text"
    Options = BleuOptions

    def setup(self) -> None:
        from sacrebleu.metrics.bleu import BLEU

        o = self.options
        try:
            self._sacre = BLEU(
                lowercase=o.lowercase,
                tokenize=o.tokenize,
                smooth_method=o.smooth_method,
                smooth_value=o.smooth_value,
                max_ngram_order=o.max_ngram_order,
            )
        except (ImportError, RuntimeError, OSError) as err:  # missing extras, or a model download
            reason = " ".join(str(err).split())
            raise HarnessError(
                f"metric 'bleu': tokenize {o.tokenize!r} is not usable here ({reason}); install what it "
                "needs or choose another tokenize"
            ) from err
        self._sacre.num_refs = 1

    @property
    def stat_names(self) -> list[str]:
        orders = range(1, self.options.max_ngram_order + 1)
        return ["sys_len", "ref_len", *(f"match_{n}" for n in orders), *(f"total_{n}" for n in orders)]

    @property
    def score_names(self) -> list[str]:
        return ["bleu"]

    @property
    def signature(self) -> str | None:
        """sacrebleu's signature; `nrefs` is that of the last `example_stats` call."""
        return self._sacre.get_signature().format()

    def example_stats(self, predictions, references, labels=None) -> np.ndarray:
        preds = check_predictions(self.name, predictions)
        refs = reference_lists(self.name, preds, references)
        if not preds:
            return np.zeros((0, len(self.stat_names)))
        # sacrebleu's "forgot to detokenize" warning would fire on every call; we compute it once.
        logger = logging.getLogger("sacrebleu")
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            rows = self._sacre._extract_corpus_statistics(preds, reference_streams(refs))
        finally:
            logger.setLevel(level)
        return np.asarray(rows, dtype=np.float64).reshape(len(preds), len(self.stat_names))

    def scores_from_sums(self, sums: np.ndarray) -> dict[str, np.ndarray]:
        return {"bleu": self._bleu(np.asarray(sums, dtype=np.float64), effective_order=False)}

    def example_values(self, stats: np.ndarray) -> dict[str, np.ndarray]:
        """Sentence BLEU as `sacrebleu.sentence_bleu` gives it (effective order on)."""
        return {"bleu": self._bleu(np.asarray(stats, dtype=np.float64), effective_order=True)}

    def _bleu(self, sums: np.ndarray, effective_order: bool) -> np.ndarray:
        o = self.options
        return compute_bleu(
            sums,
            smooth_method=o.smooth_method,
            smooth_value=o.smooth_value,
            effective_order=effective_order,
            max_ngram_order=o.max_ngram_order,
        )


def _brevity_penalty(sys_len: np.ndarray, ref_len: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        short = np.exp(1.0 - ref_len / sys_len)
    return np.where(sys_len < ref_len, np.where(sys_len > 0, short, 0.0), 1.0)


def compute_bleu(
    sums: np.ndarray,
    smooth_method: str = "exp",
    smooth_value: float | None = None,
    effective_order: bool = False,
    max_ngram_order: int = 4,
) -> np.ndarray:
    """Vectorised `sacrebleu.BLEU.compute_bleu` over sums of shape (..., 2 + 2N).

    The loop over n-gram orders keeps sacrebleu's order of operations (and its `break` on the
    first order with no hypothesis n-grams, as a per-element `alive` mask) so results agree to
    floating-point rounding.
    """
    if smooth_value is None:
        smooth_value = _SMOOTH_DEFAULTS[smooth_method]
    big_n = max_ngram_order
    sys_len, ref_len = sums[..., 0], sums[..., 1]
    correct, total = sums[..., 2 : 2 + big_n], sums[..., 2 + big_n : 2 + 2 * big_n]
    bp = _brevity_penalty(sys_len, ref_len)
    shape = sys_len.shape
    alive = np.ones(shape, dtype=bool)
    smooth_mteval = np.ones(shape)
    eff_order = np.full(shape, float(big_n))
    log_sum = np.zeros(shape)
    logs = []
    for n in range(1, big_n + 1):
        c, t = correct[..., n - 1], total[..., n - 1]
        if smooth_method == "add-k" and n > 1:
            c, t = c + smooth_value, t + smooth_value
        alive &= t != 0
        if effective_order:
            eff_order = np.where(alive, float(n), eff_order)
        zero = c == 0
        with np.errstate(divide="ignore", invalid="ignore"):
            precision = 100.0 * c / t
            if smooth_method == "exp":
                smooth_mteval = np.where(alive & zero, smooth_mteval * 2, smooth_mteval)
                precision = np.where(zero, 100.0 / (smooth_mteval * t), precision)
            elif smooth_method == "floor":
                precision = np.where(zero, 100.0 * smooth_value / t, precision)
            else:
                precision = np.where(zero, 0.0, precision)
            precision = np.where(alive, precision, 0.0)
            safe = np.where(precision > 0, precision, 1.0)
            logs.append(np.where(precision > 0, np.log(safe), _LOG_ZERO))
    for n, log_p in enumerate(logs, start=1):
        log_sum = log_sum + np.where(n <= eff_order, log_p, 0.0)
    score = bp * np.exp(log_sum / eff_order)
    return np.where(correct.sum(axis=-1) > 0, score, 0.0)
