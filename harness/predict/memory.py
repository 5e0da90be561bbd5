"""Batch sizes from a memory budget: how many rows of a given length fit beside the model's weights.

A batch's memory is the weights (paid once) plus, per row: the key-value cache of its prompt and
new tokens, the activations of one layer over the prompt (hidden states, the MLP's intermediate
states, and attention scores where an attention kernel materialises them), and the logits of the
positions that are read (one in a prefill, the drafts of a speculative step, the continuation of a
scored choice). Generation prefills at most PREFILL_TOKENS prompt tokens a pass (harness.predict.greedy),
so there only that many rows' activations count at once (`prefill_rows`). `rows_per_batch` is a pure
function of those sizes; the predictor asks it for every batch, its longest row first, so short inputs
keep the configured batch size and long ones get fewer rows (`evaluation.max_memory_gb`, by default
`DEFAULT_SHARE` of the machine's memory). The budget is the process's: what it already holds when
prediction starts (resident memory on a CPU, with the weights, the libraries and any other model such
as an encoder's head model; allocated memory on CUDA) is taken off it before batches are sized.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_SHARE = 0.5  # of the machine's memory (CPU) or of the accelerator's (CUDA), when no budget is set
HOLE_SLACK = 1.5  # speculative decoding keeps up to a third of its cache as masked slots before compacting
GIB = 1024**3


@dataclass(frozen=True)
class ModelShape:
    """The sizes of a decoder that memory scales with."""

    layers: int
    hidden: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    dtype_bytes: int
    weight_bytes: int
    held_bytes: int = 0  # what the process already holds (weights, libraries, other models), where known


def model_shape(model: Any, device: str | None = None) -> ModelShape:
    """The model's sizes; with `device`, also what the process holds there now (`held_bytes`)."""
    config = model.config
    config = getattr(config, "text_config", None) or config
    hidden = int(getattr(config, "hidden_size", 768))
    heads = int(getattr(config, "num_attention_heads", 12))
    params = list(model.parameters())
    dtype_bytes = params[0].element_size() if params else 4
    return ModelShape(
        layers=int(getattr(config, "num_hidden_layers", 12)), hidden=hidden,
        intermediate=int(getattr(config, "intermediate_size", None) or getattr(config, "d_ff", None)  # T5
                         or getattr(config, "encoder_ffn_dim", None) or 4 * hidden), heads=heads,  # BART
        kv_heads=int(getattr(config, "num_key_value_heads", None) or heads),
        head_dim=int(getattr(config, "head_dim", None) or hidden // heads),
        vocab=int(getattr(config, "vocab_size", 32000)), dtype_bytes=dtype_bytes,
        weight_bytes=sum(p.numel() * p.element_size() for p in params),
        held_bytes=held_bytes(device) if device else 0)


def held_bytes(device: str) -> int:
    """Memory the process holds on `device` now: allocated CUDA memory, else its resident memory (RAM)."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.memory_allocated(torch.device(device)))
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):  # not Linux: count the weights only
        return 0
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def activation_bytes(shape: ModelShape, prompt_tokens: int) -> int:
    """Peak bytes one row's prefill adds while it runs: one layer's activations and attention scores."""
    activations = prompt_tokens * (4 * shape.hidden + 3 * shape.intermediate) * shape.dtype_bytes
    return activations + shape.heads * prompt_tokens * prompt_tokens * 4


def row_bytes(shape: ModelShape, prompt_tokens: int, new_tokens: int, logit_positions: int) -> int:
    """Peak bytes one row adds to a batch: its cache, one layer's activations, its logits (float32)."""
    cache = 2 * shape.layers * shape.kv_heads * shape.head_dim * int((prompt_tokens + new_tokens) * HOLE_SLACK)
    logits = 3 * shape.vocab * logit_positions * 4  # the logits, their float32 copy, a log-softmax
    return cache * shape.dtype_bytes + activation_bytes(shape, prompt_tokens) + logits


def rows_per_batch(budget_bytes: int, shape: ModelShape, prompt_tokens: int, new_tokens: int,
                   logit_positions: int, requested: int, prefill_rows: int | None = None) -> int:
    """The most rows (at most `requested`, at least 1) of this length that fit the budget beside what the
    process holds (the weights at least). With `prefill_rows` (prompts prefilled that many rows a pass,
    harness.predict.greedy.prefill_chunks) only that many rows' activations are held at once."""
    free = budget_bytes - max(shape.weight_bytes, shape.held_bytes)
    per_row = max(1, row_bytes(shape, prompt_tokens, new_tokens, logit_positions))
    fit = free // per_row
    if prefill_rows is not None and fit > prefill_rows:
        kept = max(1, per_row - activation_bytes(shape, prompt_tokens))  # what a row holds after its prefill
        fit = (free - prefill_rows * (per_row - kept)) // kept
    return int(max(1, min(requested, fit)))


def machine_bytes(device: str) -> int:
    """The memory of the device a model runs on: the accelerator's for CUDA, else the machine's RAM."""
    if device.startswith("cuda"):
        import torch

        return int(torch.cuda.get_device_properties(torch.device(device)).total_memory)
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def budget_bytes(max_memory_gb: float | None, device: str) -> int:
    """The budget in bytes: `max_memory_gb` where set, else DEFAULT_SHARE of the device's memory."""
    if max_memory_gb is not None:
        return int(max_memory_gb * GIB)
    return int(DEFAULT_SHARE * machine_bytes(device))
