"""The bridge to lm-evaluation-harness: tasks on the runner's loaded models (bridge), records.

The package's face: `from harness.lmeval import NAME` gives the names of
`harness.lmeval.bridge`, loaded on first use, so that importing one submodule of the family never
imports the rest of it.
"""

from __future__ import annotations

from harness.plugins import lazy_face

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


__getattr__ = lazy_face(__name__, FACE, __all__)
