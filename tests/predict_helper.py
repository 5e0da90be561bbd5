"""The tiny causal model's generations on a generation suite, through `harness.predict.predict`, for tests
that compare a prediction path switched on and off, and a padded batch of prompts. Test modules import them
as `from predict_helper import generations, padded_batch` (tests/conftest.py puts this folder on sys.path)."""

from __future__ import annotations

from typing import Any

from harness.predict import Predictor, predict


def padded_batch(loaded: Any) -> dict:
    """Three prompts of different lengths, left-padded into one batch for the tiny model."""
    loaded.tokenizer.padding_side = "left"
    return loaded.tokenizer(["the cat sat on the mat", "a b", "hello there"], return_tensors="pt", padding=True)


def generations(loaded: Any, suite: Any, n: int = 6, batch_size: int = 4) -> list[str]:
    """The outputs of the first `n` test examples of `suite`, `batch_size` rows at a time."""
    predictor = Predictor(loaded.model, loaded.tokenizer, "causal", "cpu")
    return [p.output for p in predict(predictor, suite, suite.examples("test", n), batch_size)]
