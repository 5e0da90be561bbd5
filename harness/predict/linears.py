"""The model's linear layers on the CPU through oneDNN with prepacked weights, while predicting.

A decoding pass multiplies a few rows (one or a few per sequence in flight) by every layer's weight.
MKL, behind `torch.nn.functional.linear`, repacks the weight at every call and is slow at so few
rows; oneDNN on a weight held in its own (prepacked) format is 1.4-2x faster
there and no slower for a prefill's many rows: on SmolLM2, 32 SAMSum dialogues through `predict`
took 29.2 s instead of 39.5 s, with 32/32 outputs the same (bench/RESULTS.md). Its sums run in
another order, so an output can differ from MKL's in the last bits (about 1e-6 relative): an argmax
changes only at a near tie, and every emitted token whose top two logits are that close is counted
as a near tie (harness.predict.greedy).

The packed weight takes the dense one's place rather than adding to it, so memory stays as it was:
`packed_linears(model)` packs each layer's weight, lets the dense tensor go (the parameter keeps its
identity, shape and dtype, and holds a single NaN broadcast to its shape, so a read that should not
happen shows as NaN instead of passing unnoticed) and swaps the layer's `forward`; when the block
ends, also on an error, each weight is unpacked into a fresh dense tensor (the same values, bit for
bit) and the class's `forward` comes back. It packs only what is safe to pack: a plain
`torch.nn.Linear` in float32 on the CPU whose `forward` nobody else has replaced, whose weight no
other parameter shares (tied weights, such as an output head tied to the embeddings), whose parent's
`forward` reads nothing of the weight but its dtype, device or shape, and no peft layer that is
merged or uses a variant (DoRA) that reads the base weight. Calls with gradients inside the block
raise: predictions run without them, and a packed weight has none.

oneDNN keeps what it built for each shape of a call (a primitive, and torch's ideep layer a computation
around it), up to 1,024 of each by default. Prefill passes have a new number of rows almost every time,
and each entry holds 0.2-0.5 MB, so on 100 long documents the caches grew by 0.5 GB. Importing this
module bounds both to CACHE_ENTRIES (`ONEDNN_PRIMITIVE_CACHE_CAPACITY`, `LRU_CACHE_CAPACITY`; a value the
environment already sets is kept): the shapes of decoding passes, which repeat, stay cached.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from harness.predict.allocator import large_blocks_mapped, release_freed_memory
from harness.predict.choices import unwrapped

CACHE_ENTRIES = 128  # per oneDNN cache: about 64 MB at most, where 1,024 held 0.5 GB
for _cache in ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY"):  # read when oneDNN first runs
    os.environ.setdefault(_cache, str(CACHE_ENTRIES))


def onednn_linear(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """`hidden @ weight.T + bias` through oneDNN for a weight in oneDNN's format (a dense bias): torch's own
    prepacked-linear operator, which reads and writes dense tensors (no copy of the rows in or out)."""
    return torch.ops.mkldnn._linear_pointwise(hidden.contiguous(), weight, bias, "none", [], "")


def onednn_available() -> bool:
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


@dataclass
class _Packed:
    layer: torch.nn.Linear
    weight: torch.Tensor  # the weight in oneDNN's format, while the parameter holds a placeholder


@contextmanager
def packed_linears(model: Any) -> Iterator[int]:
    """Within the block, the model's packable linear layers run through oneDNN; yields how many do."""
    packed: list[_Packed] = []
    try:
        with torch.inference_mode(False), torch.no_grad(), large_blocks_mapped():
            for layer in _packable(unwrapped(model)):
                packed.append(_pack(layer))
        release_freed_memory()  # the dense weights just let go
        yield len(packed)
    finally:
        with torch.inference_mode(False), torch.no_grad(), large_blocks_mapped():
            while packed:  # one layer at a time, each packed copy let go once unpacked: no second copy held
                item = packed.pop()
                item.layer.weight.data = item.weight.to_dense()
                del item.layer.forward, item


def _pack(layer: torch.nn.Linear) -> _Packed:
    weight = layer.weight.detach().to_mkldnn()
    bias = layer.bias.detach() if layer.bias is not None else None

    def forward(hidden: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled():
            raise RuntimeError("harness.predict.linears: a layer packed for prediction was called with "
                               "gradients; run it outside `packed_linears`")
        if hidden.device.type != "cpu" or hidden.dtype != torch.float32:
            return torch.nn.functional.linear(hidden, weight.to_dense().to(hidden), bias)
        return onednn_linear(hidden, weight, bias)

    layer.weight.data = torch.full((), float("nan"), dtype=weight.dtype).expand(layer.weight.shape)
    layer.forward = forward
    return _Packed(layer, weight)


def _packable(model: torch.nn.Module) -> list[torch.nn.Linear]:
    if not onednn_available():
        return []
    uses: dict[int, int] = {}
    for _, param in model.named_parameters(remove_duplicate=False):
        uses[param.untyped_storage().data_ptr()] = uses.get(param.untyped_storage().data_ptr(), 0) + 1
    found = []
    for parent in model.modules():
        for name, child in parent.named_children():
            if type(child) is not torch.nn.Linear or "forward" in vars(child):
                continue
            weight = child.weight
            if weight.dtype != torch.float32 or weight.device.type != "cpu" or weight.dim() != 2:
                continue
            if uses.get(weight.untyped_storage().data_ptr(), 0) != 1 or _reads_weight(type(parent), name):
                continue
            if getattr(parent, "merged", False) or getattr(parent, "lora_variant", None):
                continue
            found.append(child)
    return found


@functools.lru_cache(maxsize=512)
def _reads_weight(parent: type, name: str) -> bool:
    """Whether `parent.forward` reads its child `name`'s weight for more than its dtype, device or shape."""
    try:
        source = inspect.getsource(parent.forward)
    except (OSError, TypeError):  # no source to read: assume it does
        return True
    return re.search(rf"\b{re.escape(name)}\.weight\b(?!\.(dtype|device|shape)\b)", source) is not None
