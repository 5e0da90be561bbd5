"""Bias checks: does the judge's grade follow the output's length, and is the judge one of the candidates?"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from harness.review.stats import correlations


def length_correlation(grades: Sequence[float | None], outputs: Sequence[str]) -> dict[str, float]:
    """Spearman and Kendall correlation of grade with output length in words (failed items left out)."""
    pairs = [(g, len(o.split())) for g, o in zip(grades, outputs, strict=True) if g is not None]
    return correlations([float(n) for _, n in pairs], [float(g) for g, _ in pairs])


def self_preference(judge_fingerprint: str, candidates: Mapping[str, str]) -> list[str]:
    """Candidates (name -> model fingerprint) that are the judge's own model: its grades of them are suspect."""
    return sorted(name for name, fp in candidates.items() if fp == judge_fingerprint)
