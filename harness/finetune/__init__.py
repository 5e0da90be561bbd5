"""LoRA fine-tuning: the training loop (lora), causal data, encoder heads.

The package's face: `from harness.finetune import NAME` gives the names of
`harness.finetune.lora`, loaded on first use, so that importing one submodule of the family never
imports the rest of it.
"""

from __future__ import annotations

import importlib

FACE = "harness.finetune.lora"
__all__ = [
    "AUTO_TARGETS",
    "CausalTask",
    "Progress",
    "evaluate_loss",
    "load_adapter",
    "peak_memory_mb",
    "seed_everything",
    "target_modules",
    "train_lora",
]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module(FACE), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
