"""When a generation stops: at a stop sequence that follows some text.

A model often opens its answer with a newline or a space. With `stop: ["\\n"]` a plain stop-string
check would end such a generation at its first token and keep nothing; here a stop sequence counts
only once the generated text holds something other than whitespace before it. `cut_at_stop`
(below) cuts the text by the same rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


def should_stop(text: str, stop: Sequence[str]) -> bool:
    """True when a stop sequence occurs after the generation's leading whitespace."""
    body = text.lstrip()
    return bool(body) and any(s in body for s in stop)


class StopAfterText:
    """A `transformers` stopping criterion (one flag per row) for `generate`."""

    def __init__(self, tokenizer: Any, stop: Sequence[str], prompt_width: int):
        self.tokenizer, self.stop, self.prompt_width = tokenizer, list(stop), prompt_width

    def __call__(self, input_ids: torch.Tensor, scores: Any = None, **_: Any) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_width:], skip_special_tokens=True)
        return torch.tensor([should_stop(t, self.stop) for t in texts], device=input_ids.device)


def rows_to_stop(tokenizer: Any, new_tokens: list[list[int]], rows: list[int], stop: Sequence[str]) -> torch.Tensor:
    """For the live rows of a decoding loop: which have reached a stop sequence after some text."""
    texts = tokenizer.batch_decode([new_tokens[row] for row in rows], skip_special_tokens=True)
    return torch.tensor([should_stop(t, stop) for t in texts])


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """The text up to the first stop sequence, ignoring leading whitespace (a model often starts with one)."""
    text = text.lstrip()
    cut = len(text)
    for s in stop:
        pos = text.find(s)
        if pos != -1:
            cut = min(cut, pos)
    return text[:cut].strip()
