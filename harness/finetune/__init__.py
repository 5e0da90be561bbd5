"""LoRA fine-tuning: the training loop (lora), causal data, encoder heads, adapters on the base in place (inplace).

The package's face: `from harness.finetune import NAME` gives the names of
`harness.finetune.lora`, loaded on first use, so that importing one submodule of the family never
imports the rest of it.
"""

from __future__ import annotations

from harness.plugins import lazy_face

FACE = "harness.finetune.lora"
__all__ = [
    "AUTO_TARGETS",
    "CausalTask",
    "Progress",
    "adapter_applied",
    "adapter_intact",
    "evaluate_loss",
    "peak_memory_mb",
    "seed_everything",
    "target_modules",
    "train_lora",
]


__getattr__ = lazy_face(__name__, FACE, __all__)
