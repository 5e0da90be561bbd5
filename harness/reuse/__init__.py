"""Reuse by content: an item's result (or an adapter) computed once is copied into every later run whose
inputs are the same (docs/reuse.md).

The package's face: `from harness.reuse import NAME` gives the names of `harness.reuse.plan`, loaded on
first use.
"""

from __future__ import annotations

from harness.plugins import lazy_face

FACE = "harness.reuse.plan"
__all__ = ["Decision", "ReusePlan", "apply", "decide"]


__getattr__ = lazy_face(__name__, FACE, __all__)
