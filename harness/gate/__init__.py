"""The regression gate: rules, verdict, report, results files, and the check both CLI paths call.

The package's face: `from harness.gate import NAME` gives the names of
`harness.gate.decision`, loaded on first use, so that importing one submodule of the family never
imports the rest of it.
"""

from __future__ import annotations

import importlib

FACE = "harness.gate.decision"
__all__ = [
    "EXIT_CODES",
    "Check",
    "GateResult",
    "verdict",
]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module(FACE), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
