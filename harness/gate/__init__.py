"""The regression gate: rules, verdict, report, results files, and the check both CLI paths call.

The package's face: `from harness.gate import NAME` gives the names of
`harness.gate.decision`, loaded on first use, so that importing one submodule of the family never
imports the rest of it.
"""

from __future__ import annotations

from harness.plugins import lazy_face

FACE = "harness.gate.decision"
__all__ = [
    "EXIT_CODES",
    "Check",
    "GateResult",
    "verdict",
]


__getattr__ = lazy_face(__name__, FACE, __all__)
