"""Grouped-query attention on the CPU that reads each key/value head in place instead of copying it.

A model with fewer key/value heads than query heads (SmolLM2, Llama 3, Qwen 2.5: grouped-query
attention) goes, in transformers' `sdpa` attention, through `repeat_kv` whenever a mask is given and
more than one position is queried: every layer copies its whole key/value cache once per query head
of a group before attending. That is a prefill with padding, a speculative verification pass and a
choice-scoring pass. On the CPU, torch's attention takes the grouping itself (`enable_gqa=True`) with
a mask, bit for bit the same result as the copy (tests/test_grouped_attention.py) and 3-5x faster
for a few queried positions over a long cache. On CUDA a mask with `enable_gqa` falls back to the
math kernel, so there, and in every other case, transformers' own function runs unchanged.

`grouped_attention(model)` switches a model's attention to this function for the duration of a
`with` block and back afterwards; the model object is never left changed, as a caller may share it.
It only switches models whose modelling code dispatches attention through transformers'
`AttentionInterface` alone (the code never compares the implementation's name to "sdpa"), and the
mask is built by transformers' own `sdpa_mask`, so nothing but the attention call differs.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

from harness.predict.choices import unwrapped

NAME = "harness_grouped_sdpa"


def grouped_sdpa(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                 attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
                 is_causal: bool | None = None, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers' `sdpa_attention_forward`, with the key/value heads read in place where it would copy them."""
    if not _copies_heads(module, query, attention_mask, kwargs):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, is_causal=is_causal, **kwargs)
    out = torch.nn.functional.scaled_dot_product_attention(
        query, key, value, attn_mask=attention_mask, dropout_p=dropout, scale=scaling, is_causal=False,
        enable_gqa=True)
    return out.transpose(1, 2).contiguous(), None


def _copies_heads(module: torch.nn.Module, query: torch.Tensor, attention_mask: torch.Tensor | None,
                  kwargs: dict) -> bool:
    """The case where transformers' function calls `repeat_kv` (a mask, several positions) on the CPU."""
    return (getattr(module, "num_key_value_groups", 1) > 1 and attention_mask is not None
            and query.shape[2] > 1 and query.device.type == "cpu"
            and kwargs.get("position_bias") is None and kwargs.get("softcap") is None
            and not kwargs.get("output_attentions", False))


AttentionInterface.register(NAME, grouped_sdpa)
AttentionMaskInterface.register(NAME, sdpa_mask)


@contextmanager
def grouped_attention(model: Any) -> Iterator[bool]:
    """Within the block, `model` attends with `grouped_sdpa` where it would use `sdpa`; yields whether it does."""
    if not switchable(model):
        yield False
        return
    config = unwrapped(model).config
    config._attn_implementation = NAME
    try:
        yield True
    finally:
        config._attn_implementation = "sdpa"


def switchable(model: Any) -> bool:
    """`sdpa` attention, no sub-configs, and modelling code that knows attention only by its interface."""
    base = unwrapped(model)
    config = getattr(base, "config", None)
    if config is None or getattr(config, "_attn_implementation", None) != "sdpa" or config.sub_configs:
        return False
    return _dispatches_by_interface(type(base).__module__)


@functools.lru_cache(maxsize=64)
def _dispatches_by_interface(module_name: str) -> bool:
    module = sys.modules.get(module_name)
    try:
        source = inspect.getsource(module) if module is not None else ""
    except (OSError, TypeError):
        return False
    return "ALL_ATTENTION_FUNCTIONS" in source and '"sdpa"' not in source and "'sdpa'" not in source
