"""Typed records below the store: results of runs (results) and of human review (review).

The package's face: `from harness.records import NAME` gives the names of
`harness.records.results`, loaded on first use, so that importing one submodule of the family never
imports the rest of it.
"""

from __future__ import annotations

import importlib

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


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module(FACE), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
