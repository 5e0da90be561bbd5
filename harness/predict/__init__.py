"""Per-example predictions: predictor, choice scoring, greedy generation, stops, encoders.

The package's face: `from harness.predict import NAME` gives the names of
`harness.predict.predictor`, loaded on first use, so that importing one submodule of the family never
imports the rest of it.
"""

from __future__ import annotations

import importlib

FACE = "harness.predict.predictor"
__all__ = [
    "DecodingStats",
    "Predictor",
    "build_prompt",
    "choice_logprobs",
    "cut_at_stop",
    "encode_pair",
    "extract",
    "generate",
    "generate_plain",
    "predict",
    "use_chat_template",
]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module(FACE), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
