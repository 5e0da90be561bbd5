"""Suites: the suite file (suite), its data (data), where references lead (sources) and the built-in suites
(builtin/).

The package's face: `from harness.suites import NAME` gives the names of
`harness.suites.suite`, loaded on first use, so that importing one submodule of the family never
imports the rest of it.
"""

from __future__ import annotations

import importlib

FACE = "harness.suites.suite"
__all__ = [
    "BUILTIN_DIR",
    "REFUSED",
    "SPLITS",
    "Example",
    "Suite",
    "builtin_names",
    "check_template",
    "find_suite",
    "label_index",
    "label_summary",
    "load_suite",
    "references",
    "register_suite_source",
    "render",
    "render_samples",
    "suite_sources",
    "validate_suite",
]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module(FACE), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
