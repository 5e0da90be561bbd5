"""A prompt prefix every row shares (the chat template's system turn, the suite's instruction) prefilled once.

Prompts built from one template start with the same tokens: with SmolLM2's chat template and a
one-line instruction, 35 of a SAMSum prompt's 208 tokens on average. Prefilling is compute-bound, so
running those tokens once instead of once per row saves that share of the prefill. The prefix's keys
and values are computed for one row and copied into every row's cache; each row then prefills only
its own tokens after the prefix, at positions counted from the prefix's end, so the model computes
what it would have computed for the whole prompt (up to floating-point noise of the different
shapes, which near-tie counting covers). Duplicates of the prefix left in a shorter row's window are
masked out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

MIN_TOKENS = 8  # a shorter shared prefix is not worth its own forward pass


@dataclass
class Prefix:
    """The shared tokens and their per-layer keys and values (one row each)."""

    tokens: list[int]
    keys: list[torch.Tensor]
    values: list[torch.Tensor]

    def __len__(self) -> int:
        return len(self.tokens)


def common_length(rows: list[list[int]]) -> int:
    """How many leading tokens all rows share, leaving every row at least one token of its own."""
    if not rows:
        return 0
    limit = min(len(r) for r in rows) - 1
    first, n = rows[0], 0
    while n < limit and all(r[n] == first[n] for r in rows):
        n += 1
    return n


@torch.no_grad()
def shared_prefix(model: Any, rows: list[list[int]], device: Any) -> Prefix | None:
    """The prefix the rows share, prefilled once; None when it is shorter than MIN_TOKENS or the model's cache
    is not plain full-attention layers."""
    from harness.predict.choices import cache_of, last_logits_only, plain_layers

    n = common_length(rows)
    if n < MIN_TOKENS:
        return None
    tokens = rows[0][:n]
    ids = torch.tensor([tokens], device=device)
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True, **last_logits_only(model))
    cache = cache_of(out)
    if not plain_layers(cache):
        return None
    return Prefix(tokens, [layer.keys for layer in cache.layers], [layer.values for layer in cache.layers])


def covers(prefix: Prefix | None, rows: list[list[int]]) -> bool:
    """Whether every row starts with the prefix and has a token after it."""
    n = len(prefix) if prefix is not None else 0
    return prefix is not None and all(len(r) > n and r[:n] == prefix.tokens for r in rows)


def prefill_after(model: Any, prefix: Prefix, input_ids: torch.Tensor,
                  attention_mask: torch.Tensor) -> tuple[torch.Tensor, Any, torch.Tensor]:
    """Prefill left-padded rows that all start with `prefix`: (last logits, cache, the cache's attention mask).

    The cache holds the prefix, then each row's own tokens right-aligned in a window as wide as the
    longest row's own part (its slots before them masked)."""
    from transformers.cache_utils import DynamicCache

    from harness.predict.choices import cache_argument, cache_of, last_logits_only

    n, rows = len(prefix), input_ids.shape[0]
    counted = attention_mask.long().cumsum(-1)
    own = attention_mask.bool() & (counted > n)  # a row's tokens after the prefix
    window = int(attention_mask.sum(-1).max()) - n
    positions = (counted - 1).clamp(min=0)[:, -window:]
    mask = torch.cat([attention_mask.new_ones((rows, n)), own[:, -window:].to(attention_mask.dtype)], dim=-1)
    cache = DynamicCache()
    for number, (keys, values) in enumerate(zip(prefix.keys, prefix.values, strict=True)):
        cache.update(keys.expand(rows, -1, -1, -1).contiguous(), values.expand(rows, -1, -1, -1).contiguous(), number)
    out = model(input_ids=input_ids[:, -window:], attention_mask=mask, position_ids=positions, use_cache=True,
                **{cache_argument(model): cache}, **last_logits_only(model))
    return out.logits[:, -1], cache_of(out), mask
