"""Per-example predictions: predictor, choice scoring, greedy generation, stops, encoders.

The package's face: `from harness.predict import NAME` gives the names of
`harness.predict.predictor`, loaded on first use, so that importing one submodule of the family never
imports the rest of it.
"""

from __future__ import annotations

from harness.plugins import lazy_face

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


__getattr__ = lazy_face(__name__, FACE, __all__)
