"""Log-likelihood of choice continuations with each shared context run once.

The contexts of a batch run in one left-padded forward pass. The last context logits score every
choice's first token; only choices longer than one token need a second pass, which feeds their
remaining tokens on top of the context's key-value cache (repeated per choice) instead of re-reading
the context. The result equals scoring `context + continuation` as one sequence.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F

Pair = tuple[list[int], list[int]]


def _max_context(model: Any) -> int:
    return int(getattr(model.config, "max_position_embeddings", 2048) or 2048)


def _cache_of(output: Any) -> Any:
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def _cache_argument(model: Any) -> str:
    """transformers renamed `past_key_values` to `cache`; use whichever the model's forward takes."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


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
    out = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
    first = F.log_softmax(out.logits[:, -1, :].float(), dim=-1)
    scores = [[first[i, cont[0]].item() if cont else 0.0 for _, cont in choices] for i, choices in enumerate(pairs)]
    long_rows = [(i, j) for i, choices in enumerate(pairs) for j, (_, c) in enumerate(choices) if len(c) > 1]
    if long_rows:
        _add_continuations(model, _cache_of(out), mask, pairs, long_rows, scores, pad_id, device)
    return scores


def _add_continuations(model: Any, cache: Any, ctx_mask: torch.Tensor, pairs: list[list[Pair]],
                       rows: list[tuple[int, int]], scores: list[list[float]], pad_id: int, device: str) -> None:
    """Second pass: tokens 2..m of each long continuation on top of its context's cache."""
    conts = [pairs[i][j][1] for i, j in rows]
    width = max(len(c) for c in conts) - 1
    inputs = torch.full((len(rows), width), pad_id, dtype=torch.long)
    cont_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, cont in enumerate(conts):
        inputs[r, : len(cont) - 1] = torch.tensor(cont[:-1])
        cont_mask[r, : len(cont) - 1] = 1
    select = torch.tensor([i for i, _ in rows], device=device)
    cache.batch_select_indices(select)
    row_ctx_mask = ctx_mask[select]
    ctx_len = row_ctx_mask.sum(-1, keepdim=True)
    positions = ctx_len + torch.arange(width, device=device).unsqueeze(0)
    attention = torch.cat([row_ctx_mask, cont_mask.to(device)], dim=-1)
    out = model(input_ids=inputs.to(device), attention_mask=attention, position_ids=positions,
                use_cache=True, **{_cache_argument(model): cache})
    logprobs = F.log_softmax(out.logits.float(), dim=-1)
    for r, (i, j) in enumerate(rows):
        cont = conts[r]
        targets = torch.tensor(cont[1:], device=device)
        picked = logprobs[r, : len(cont) - 1].gather(-1, targets.unsqueeze(-1)).sum().item()
        scores[i][j] += picked


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
