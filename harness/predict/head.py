"""The output head (the vocabulary projection) on the CPU through oneDNN, while predicting.

In a decoding pass the head multiplies a few rows (one per sequence in flight) by the whole
vocabulary matrix: for SmolLM2 16 x 576 by 576 x 49,152. MKL, behind `torch.nn.functional.linear`,
is slow at so few rows; oneDNN's `mkldnn_linear` on a copy of the weight in its own format measured
1.7-2.2x faster here for 1 to 48 rows (7.4 against 4.3 ms for one row, 23.4 against 12.2 ms for 16),
and is no slower for many. Its sums run in another order, so a logit can differ from MKL's in the
last bits (about 5e-6 on SmolLM2's logits): an argmax changes only where the top two logits are
that close, and every emitted token whose top two are within the tie margin (1e-3 in float32) is
already counted as a near tie (harness.predict.greedy). The copy holds the head's weight once more
(113 MB for SmolLM2) while predictions run, and goes afterwards.

`packed_head(model)` swaps the head's `forward` for the block's duration and puts the class's back
afterwards, also on an error. It only touches a plain `torch.nn.Linear` head in float32 on the CPU
whose `forward` nobody else has replaced (accelerate's hooks, a peft wrapper), and only calls made
without gradients go through oneDNN; any other call runs the head as before.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from harness.predict.choices import unwrapped


@contextmanager
def packed_head(model: Any) -> Iterator[bool]:
    """Within the block, the output head runs through oneDNN where it applies; yields whether it does."""
    head = _plain_head(model)
    if head is None:
        yield False
        return
    weight = head.weight.detach().to_mkldnn()
    bias = head.bias.detach().to_mkldnn() if head.bias is not None else None
    dense = head.forward

    def forward(hidden: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() or hidden.device.type != "cpu" or hidden.dtype != torch.float32:
            return dense(hidden)
        return torch._C._nn.mkldnn_linear(hidden.contiguous().to_mkldnn(), weight, bias).to_dense()

    head.forward = forward
    try:
        yield True
    finally:
        del head.forward


def _plain_head(model: Any) -> torch.nn.Linear | None:
    getter = getattr(unwrapped(model), "get_output_embeddings", None)
    head = getter() if callable(getter) else None
    if type(head) is not torch.nn.Linear or "forward" in vars(head) or not torch.backends.mkldnn.is_available():
        return None
    if head.weight.dtype != torch.float32 or head.weight.device.type != "cpu":
        return None
    return head
