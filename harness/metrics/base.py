"""The `Metric` contract every metric family implements, and the helpers they share.

A metric turns (predictions, references) into a matrix of per-example *sufficient statistics*
(one row per example, one column per `stat_names` entry). Corpus scores are a function of the
column sums only, so a bootstrap resample is a weighted sum of rows and every resampled score is
exact: `scores_from_sums(counts @ stats)` is what the metric would give on the resampled corpus.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from harness.errors import HarnessError


@dataclasses.dataclass(frozen=True)
class NoOptions:
    """Options of a metric that takes none."""


# Score names that are lower-is-better by convention, for a metric that does not say, and for scores
# that no registered metric produces (training loss, latency, lm-eval's perplexities).
LOWER_IS_BETTER = frozenset({"ter", "loss", "latency_s", "perplexity", "word_perplexity"})


def conventional_higher_is_better(score: str) -> bool:
    """The direction of a score name when no metric says: higher is better unless in LOWER_IS_BETTER."""
    return score not in LOWER_IS_BETTER


_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def _coerce(metric: str, key: str, value: Any, hint: Any) -> Any:
    """Convert `value` to the option's declared type; strings from a CLI or YAML are accepted."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(metric, key, value, args[0])
    bad = HarnessError(f"metric '{metric}': option '{key}' must be {_type_name(hint)}, got {value!r}")
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise bad
    if hint is int or hint is float:
        if isinstance(value, bool):
            raise bad
        try:
            number = float(value) if hint is float else int(value)
        except (TypeError, ValueError):
            raise bad from None
        if hint is int and isinstance(value, float) and value != number:
            raise bad
        return number
    if hint is str:
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)  # a label such as pos_label=1
        if not isinstance(value, str):
            raise bad
        return value
    if origin is tuple:
        items = [v.strip() for v in value.split(",")] if isinstance(value, str) else value
        if not isinstance(items, Sequence) or not all(isinstance(v, str) for v in items):
            raise bad
        return tuple(i for i in items if i)
    return value


def _type_name(hint: Any) -> str:
    if typing.get_origin(hint) is tuple:
        return "a list of strings"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


def parse_options(metric: str, options_cls: type, given: dict[str, Any]) -> Any:
    """Build the metric's options dataclass; an unknown option names itself and the valid ones."""
    fields = {f.name: f for f in dataclasses.fields(options_cls)}
    hints = typing.get_type_hints(options_cls)
    for key in given:
        if key not in fields:
            valid = ", ".join(fields) or "none"
            raise HarnessError(f"metric '{metric}': unknown option '{key}' (valid options: {valid})")
    values = {key: _coerce(metric, key, value, hints[key]) for key, value in given.items()}
    options = options_cls(**values)
    check = getattr(options, "check", None)
    if callable(check):
        check(metric)
    return options


class Metric(ABC):
    """One metric family. Subclasses set `name`, `kind`, `Options` and implement the abstract parts.

    `binary_score` names a score whose per-example value is 0/1 (accuracy-like); the McNemar
    test applies only to such metrics. `lower_is_better` names the scores where a smaller value is
    better (an error rate, a loss): the leaderboard ranks them that way and the gate tests them so
    unless a rule says otherwise (`higher_is_better`, which a metric may also override).
    """

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "text"
    Options: ClassVar[type] = NoOptions
    binary_score: ClassVar[str | None] = None
    lower_is_better: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, **options: Any) -> None:
        self.options = parse_options(self.name or type(self).__name__, self.Options, options)
        self.setup()

    def setup(self) -> None:  # noqa: B027 (an optional hook, not abstract)
        """Hook run after options are parsed (build tokenizers, scorers)."""

    @property
    @abstractmethod
    def stat_names(self) -> list[str]:
        """Columns of the stats matrix."""

    @property
    @abstractmethod
    def score_names(self) -> list[str]:
        """Keys of `scores_from_sums`, `corpus` and `example_values`."""

    @property
    def signature(self) -> str | None:
        """A string that pins how the score was computed (sacrebleu's signature for BLEU/chrF)."""
        return None

    @abstractmethod
    def example_stats(
        self,
        predictions: Sequence[str],
        references: Sequence[str] | Sequence[Sequence[str]],
        labels: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Per-example sufficient statistics, float64 of shape (n, len(stat_names))."""

    @abstractmethod
    def scores_from_sums(self, sums: np.ndarray) -> dict[str, np.ndarray]:
        """Scores from summed stats of shape (..., k); each value has shape (...)."""

    def corpus(self, stats: np.ndarray) -> dict[str, float]:
        """Corpus scores: the scores of the column sums."""
        stats = as_stats(stats)
        return {k: float(v) for k, v in self.scores_from_sums(stats.sum(axis=0)).items()}

    def example_values(self, stats: np.ndarray) -> dict[str, np.ndarray]:
        """A per-example value for display: by default the score of each row on its own."""
        return self.scores_from_sums(as_stats(stats))

    def higher_is_better(self, score: str) -> bool:
        """The score's direction: False for the names in `lower_is_better` and, when a metric declares
        none, for the conventional lower-is-better names (ter, loss, perplexity, latency_s)."""
        if self.lower_is_better:
            return score not in self.lower_is_better
        return conventional_higher_is_better(score)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.options})"


class MeanMetric(Metric):
    """A metric whose corpus score is the mean of a per-example score.

    Stats are the per-example scores plus a `count` column of ones, so the mean of a resample is
    (sum of scores) / (sum of counts). Subclasses implement `example_scores` and `score_names`.
    """

    @property
    def stat_names(self) -> list[str]:
        return [*self.score_names, "count"]

    @abstractmethod
    def example_scores(
        self, predictions: list[str], references: list[list[str]], labels: list[str] | None
    ) -> dict[str, Sequence[float]]:
        """One score per example for every score name."""

    def prepare(
        self, predictions: Sequence[str], references: Any, labels: Sequence[str] | None
    ) -> tuple[list[str], list[list[str]], list[str] | None]:
        """Validate the inputs; label-kind subclasses override this."""
        preds = check_predictions(self.name, predictions)
        return preds, reference_lists(self.name, preds, references), None

    def example_stats(self, predictions, references, labels=None) -> np.ndarray:
        preds, refs, label_list = self.prepare(predictions, references, labels)
        scores = self.example_scores(preds, refs, label_list)
        stats = np.ones((len(preds), len(self.score_names) + 1), dtype=np.float64)
        for column, score in enumerate(self.score_names):
            stats[:, column] = np.asarray(scores[score], dtype=np.float64)
        return stats

    def scores_from_sums(self, sums: np.ndarray) -> dict[str, np.ndarray]:
        sums = np.asarray(sums, dtype=np.float64)
        count = sums[..., -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            return {s: sums[..., i] / count for i, s in enumerate(self.score_names)}


def as_stats(stats: Any) -> np.ndarray:
    """A 2-D float64 stats matrix."""
    array = np.asarray(stats, dtype=np.float64)
    if array.ndim != 2:
        raise HarnessError(f"stats must be a 2-D matrix (examples x statistics), got shape {array.shape}")
    return array


def check_predictions(metric: str, predictions: Sequence[Any]) -> list[str]:
    """Predictions as a list of strings; None is refused (a failed example must be recorded as '')."""
    if isinstance(predictions, str):
        raise HarnessError(f"metric '{metric}': predictions must be a list of strings, not one string")
    out = []
    for i, p in enumerate(predictions):
        if p is None:
            raise HarnessError(f"metric '{metric}': prediction {i} is missing (None); use '' for no output")
        out.append(p if isinstance(p, str) else str(p))
    return out


def reference_lists(metric: str, predictions: list[str], references: Any) -> list[list[str]]:
    """One list of reference strings per example (a plain string means one reference)."""
    if isinstance(references, str) or len(references) != len(predictions):
        got = "one string" if isinstance(references, str) else f"{len(references)} references"
        raise HarnessError(
            f"metric '{metric}': {len(predictions)} predictions but {got}; give one reference "
            "(or a list of references) per prediction"
        )
    out = []
    for i, ref in enumerate(references):
        refs = [ref] if isinstance(ref, str) else list(ref) if isinstance(ref, Sequence) else None
        if not refs or not all(isinstance(r, str) for r in refs):
            raise HarnessError(
                f"metric '{metric}': reference {i} must be a string or a non-empty list of strings, got {ref!r}"
            )
        out.append(refs)
    return out
