"""Log-likelihood of choice continuations with each shared context run once.

The contexts of a batch run in one left-padded forward pass. The last context logits score every
choice's first token (the context pass computes the LM head at that position only); only choices
longer than one token need a second pass, which feeds their remaining tokens on top of the context's
key-value cache (selected per choice) instead of re-reading the context, in groups of similar
length. The result equals scoring `context + continuation` as one sequence.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

import torch
import torch.nn.functional as F

Pair = tuple[list[int], list[int]]


def _max_context(model: Any) -> int:
    return int(getattr(model.config, "max_position_embeddings", 2048) or 2048)


def cache_of(output: Any) -> Any:
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def unwrapped(model: Any) -> Any:
    """The transformers model under a peft wrapper (the model itself when there is none)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def cache_argument(model: Any) -> str:
    """transformers renamed `past_key_values` to `cache`; use whichever the model's forward takes."""
    base = unwrapped(model)
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def last_logits_only(model: Any) -> dict:
    """Ask for the last position's logits only, where the model's forward can.

    The context pass reads nothing but the last position's logits; the LM head over every other
    position is wasted work (about a fifth of a small model's forward, whose vocabulary is large).
    """
    parameters = inspect.signature(unwrapped(model).forward).parameters
    for name in ("logits_to_keep", "num_logits_to_keep"):
        if name in parameters:
            return {name: 1}
    return {}


def _left_pad(seqs: list[list[int]], pad_id: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        if seq:
            ids[row, width - len(seq):] = torch.tensor(seq)
            mask[row, width - len(seq):] = 1
    return ids.to(device), mask.to(device)


@torch.no_grad()
def score_with_shared_context(model: Any, pairs: list[list[Pair]], pad_id: int, device: str) -> list[list[float]]:
    """pairs[i][j] = (context ids, continuation ids) of choice j of example i (contexts equal per i)."""
    limit = _max_context(model)
    longest_cont = max((len(c) for choices in pairs for _, c in choices), default=1)
    contexts = [choices[0][0][-(limit - longest_cont):] or [pad_id] for choices in pairs]
    ids, mask = _left_pad(contexts, pad_id, device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **last_logits_only(model))
    first = F.log_softmax(out.logits[:, -1, :].float(), dim=-1)
    scores = [[first[i, cont[0]].item() if cont else 0.0 for _, cont in choices] for i, choices in enumerate(pairs)]
    long_rows = [(i, j) for i, choices in enumerate(pairs) for j, (_, c) in enumerate(choices) if len(c) > 1]
    if long_rows:
        _add_continuations(model, cache_of(out), mask, pairs, long_rows, scores, pad_id, device)
    return scores


def _add_continuations(model: Any, cache: Any, ctx_mask: torch.Tensor, pairs: list[list[Pair]],
                       rows: list[tuple[int, int]], scores: list[list[float]], pad_id: int, device: str) -> None:
    """Second pass: tokens 2..m of each long continuation on top of its context's cache.

    Continuations of similar length run together, each group on its own row selection of the
    context cache: padding every continuation to the longest one of the batch would make most of
    this pass padding (a one-word choice next to a sentence-long one).
    """
    groups = length_groups([len(pairs[i][j][1]) - 1 for i, j in rows])
    for number, group in enumerate(groups):
        members = [rows[g] for g in group]
        select = torch.tensor([i for i, _ in members], device=device)
        part = cache if number == len(groups) - 1 else _copy_layers(cache)
        part.batch_select_indices(select)
        conts = [pairs[i][j][1] for i, j in members]
        for (i, j), value in zip(members, _continuation_logprobs(model, part, ctx_mask[select], conts, pad_id,
                                                                  device), strict=True):
            scores[i][j] += value


def plain_layers(cache: Any) -> bool:
    """A cache of full-attention layers holding (batch, heads, time, dim) keys and values."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer and layer.keys is not None and layer.keys.dim() == 4
                                for layer in layers)


def length_groups(lengths: list[int], overhead: int = 32) -> list[list[int]]:
    """Indices of `lengths`, longest first, cut into groups that are cheapest to run one forward each.

    A group costs its padded size (rows x its longest length) plus `overhead`, the fixed cost of one
    forward pass in token equivalents (reading every weight once: about 30 tokens' worth for a
    135M model on a CPU). Contiguous runs of the sorted lengths are optimal for that cost; dynamic
    programming over the cut points finds the best runs in O(n^2).
    """
    order = sorted(range(len(lengths)), key=lambda r: -lengths[r])
    best, cut = [0] + [None] * len(order), [0] * (len(order) + 1)
    for end in range(1, len(order) + 1):
        for start in range(end):
            cost = best[start] + (end - start) * lengths[order[start]] + overhead
            if best[end] is None or cost < best[end]:
                best[end], cut[end] = cost, start
    groups, end = [], len(order)
    while end > 0:
        groups.append(order[cut[end]:end])
        end = cut[end]
    return groups[::-1]


def _copy_layers(cache: Any) -> Any:
    """A cache whose row selection leaves `cache` whole: per-layer objects copied, tensors shared."""
    layers = getattr(cache, "layers", None)
    if layers is None:
        return copy.deepcopy(cache)
    part = copy.copy(cache)
    part.layers = [copy.copy(layer) for layer in layers]
    return part


def _continuation_logprobs(model: Any, cache: Any, row_ctx_mask: torch.Tensor, conts: list[list[int]], pad_id: int,
                           device: str) -> list[float]:
    """Summed log-probabilities of tokens 2..m of each continuation, its context already in `cache`."""
    width = max(len(c) for c in conts) - 1
    inputs = torch.full((len(conts), width), pad_id, dtype=torch.long)
    cont_mask = torch.zeros((len(conts), width), dtype=torch.long)
    for r, cont in enumerate(conts):
        inputs[r, : len(cont) - 1] = torch.tensor(cont[:-1])
        cont_mask[r, : len(cont) - 1] = 1
    ctx_len = row_ctx_mask.sum(-1, keepdim=True)
    positions = ctx_len + torch.arange(width, device=device).unsqueeze(0)
    attention = torch.cat([row_ctx_mask, cont_mask.to(device)], dim=-1)
    out = model(input_ids=inputs.to(device), attention_mask=attention, position_ids=positions,
                use_cache=True, **{cache_argument(model): cache})
    logprobs = F.log_softmax(out.logits.float(), dim=-1)
    values = []
    for r, cont in enumerate(conts):
        targets = torch.tensor(cont[1:], device=device)
        values.append(logprobs[r, : len(cont) - 1].gather(-1, targets.unsqueeze(-1)).sum().item())
    return values


@torch.no_grad()
def score_naive(model: Any, pairs: list[list[Pair]], device: str) -> list[list[float]]:
    """Reference implementation: each context + continuation as its own sequence (used by tests)."""
    scores = []
    for choices in pairs:
        row = []
        for ctx, cont in choices:
            ids = torch.tensor([ctx + cont], device=device)
            logprobs = F.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
            start = len(ctx)
            row.append(sum(logprobs[start - 1 + k, tok].item() for k, tok in enumerate(cont)))
        scores.append(row)
    return scores
