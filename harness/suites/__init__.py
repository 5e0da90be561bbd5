"""Suites: the suite file (suite), its data (data), where references lead (sources) and the built-in suites
(builtin/).

The package's face: `from harness.suites import NAME` gives the names of
`harness.suites.suite`, loaded on first use, so that importing one submodule of the family never
imports the rest of it.
"""

from __future__ import annotations

from harness.plugins import lazy_face

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


__getattr__ = lazy_face(__name__, FACE, __all__)
