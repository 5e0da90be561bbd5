"""Data checks: overlap between splits (exact and near-duplicate), label balance, empty, over-long and
duplicated rows (docs/suites.md, "Data checks"). It reads suites; suites never import it.

The package's face: `from harness.datacheck import NAME` gives the names of `harness.datacheck.checks`,
loaded on first use.
"""

from __future__ import annotations

import importlib

FACE = "harness.datacheck.checks"
__all__ = ["CheckReport", "Finding", "check_suites", "load_targets"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module(FACE), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
