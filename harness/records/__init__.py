"""Typed records below the store: results of runs (results) and of human review (review).

The package's face: `from harness.records import NAME` gives the names of
`harness.records.results`, loaded on first use, so that importing one submodule of the family never
imports the rest of it.
"""

from __future__ import annotations

from harness.plugins import lazy_face

FACE = "harness.records.results"
__all__ = [
    "CandidateInfo",
    "ItemResult",
    "MetricStats",
    "Prediction",
    "RunRecord",
    "Score",
    "TrainingResult",
]


__getattr__ = lazy_face(__name__, FACE, __all__)
