"""The bridge to lm-evaluation-harness: tasks on the runner's loaded models (bridge), records.

The package's face: `from harness.lmeval import NAME` gives the names of
`harness.lmeval.bridge`, loaded on first use, so that importing one submodule of the family never
imports the rest of it.
"""

from __future__ import annotations

import importlib

FACE = "harness.lmeval.bridge"
__all__ = [
    "PROBE_TEXT",
    "LmevalTasks",
    "VariantOutcome",
    "adapter_check",
    "check_lmeval",
    "evaluate_tasks",
    "evaluate_variant",
    "include_dir",
    "load_tasks",
    "prepare_tasks",
    "probe_adapter",
    "task_manager",
]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module(FACE), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
