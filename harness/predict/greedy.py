"""Greedy decoding that drops a row from the batch as soon as it has finished.

`transformers`' `generate` keeps every row of a batch in every decoding step until the last row
stops. Summaries, answers and translations end at very different lengths, so most rows of a batch
idle through many steps, each costing as much as a live one. This loop removes a row (and its
key-value cache) the step it ends (end-of-sequence token, stop string or max_new_tokens), so a step
costs what is still generating.

The prompts of a batch are prefilled in groups of similar length, so a long prompt does not pad
every other row of its batch to its length; the groups' caches are then left-padded into one
batch for decoding (masked positions, as in `generate`'s own left padding).

It follows `generate`'s greedy decoding token for token: the same left-padded prefill with position
ids from the attention mask, argmax of the float32 logits of the last position, end-of-sequence ids
from the model's generation config, and stop sequences that count once some text precedes them
(harness.predict.stopping, the same criterion `generate_plain` passes to `generate`). Where the model's
generation config would change the logits (repetition penalty, forced or suppressed tokens, ...),
`supports` says no and the caller uses `generate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from harness.predict.choices import cache_argument, cache_of, last_logits_only, length_groups, plain_layers

# generation-config fields that add a logits processor to greedy decoding, with their neutral values
_NEUTRAL: dict[str, tuple] = {
    "repetition_penalty": (None, 1.0), "encoder_repetition_penalty": (None, 1.0), "no_repeat_ngram_size": (None, 0),
    "encoder_no_repeat_ngram_size": (None, 0), "bad_words_ids": (None,), "min_length": (None, 0),
    "min_new_tokens": (None, 0), "forced_bos_token_id": (None,), "forced_eos_token_id": (None,),
    "exponential_decay_length_penalty": (None,), "suppress_tokens": (None,), "begin_suppress_tokens": (None,),
    "sequence_bias": (None,), "guidance_scale": (None, 1.0), "watermarking_config": (None,),
    "remove_invalid_values": (None, False), "num_beams": (None, 1), "num_return_sequences": (None, 1),
}


TIE_MARGIN = {torch.float32: 1e-3, torch.float64: 1e-6}  # logits gap under which an argmax may flip
HALF_TIE_MARGIN = 0.1  # float16 / bfloat16


def tie_margin(dtype: torch.dtype) -> float:
    """The logit gap under which the model's dtype may flip an argmax between two kernel shapes."""
    return TIE_MARGIN.get(dtype, HALF_TIE_MARGIN)


def near_tie(logits: torch.Tensor, margin: float) -> torch.Tensor:
    """Per row (of the last dimension's logits): are the top two within `margin`?"""
    top = torch.topk(logits.float(), 2, dim=-1).values
    return (top[..., 0] - top[..., 1]) < margin


def supports(model: Any) -> bool:
    """True where this loop decodes exactly as `generate(do_sample=False)` would."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "is_encoder_decoder", False):
        return False
    gen = getattr(model, "generation_config", None)
    if gen is None:
        return True
    return all(getattr(gen, name, None) in neutral for name, neutral in _NEUTRAL.items())


def eos_ids(model: Any) -> torch.Tensor:
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = [] if eos is None else [eos] if isinstance(eos, int) else list(eos)
    return torch.tensor(ids, dtype=torch.long)


@torch.no_grad()
def greedy_new_tokens(model: Any, tokenizer: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      max_new_tokens: int, stop: Sequence[str], near_ties: list[int] | None = None) -> list[list[int]]:
    """The tokens greedy decoding appends to each (left-padded) row, up to and including the one that ends it.

    With `near_ties`, the rows (once each) whose emitted token had its top two logits within the tie margin
    of the model's dtype are appended to it."""
    from harness.predict.stopping import rows_to_stop
    eos = eos_ids(model).to(input_ids.device)
    from harness.predict.prefix import shared_prefix

    real = [input_ids[r][attention_mask[r].bool()].tolist() for r in range(input_ids.shape[0])]
    prefix = shared_prefix(model, real, input_ids.device) if input_ids.shape[0] > 1 else None
    rows, logits, cache, mask = prefill(model, input_ids, attention_mask, prefix)  # rows: original row of each
    cache_arg = cache_argument(model)
    new: list[list[int]] = [[] for _ in rows]
    last = mask.sum(-1, keepdim=True) - 1
    margin = tie_margin(next(model.parameters()).dtype)
    for step in range(max_new_tokens):
        token = logits.float().argmax(-1)
        if near_ties is not None:
            near_ties += [r for r, tie in zip(rows, near_tie(logits, margin).tolist(), strict=True)
                          if tie and r not in near_ties]
        for live, row in enumerate(rows):
            new[row].append(int(token[live]))
        if step == max_new_tokens - 1:
            break
        done = torch.isin(token, eos)
        if stop:
            done |= rows_to_stop(tokenizer, new, rows, stop).to(done.device)
        if bool(done.all()):
            break
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=-1)
        last = last + 1
        if bool(done.any()):
            keep = (~done).nonzero().flatten()
            cache.batch_select_indices(keep)
            mask, last, token = mask[keep], last[keep], token[keep]
            rows = [rows[k] for k in keep.tolist()]
        out = model(input_ids=token[:, None], attention_mask=mask, position_ids=last, use_cache=True,
                    **{cache_arg: cache})
        logits, cache = out.logits[:, -1], cache_of(out)
    return new


def prefill(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
            prefix: Any = None) -> tuple[list[int], torch.Tensor, Any, torch.Tensor]:
    """Prefill in groups of similar prompt length; returns the row order, last logits, one cache and its mask.

    The cache is the groups' caches left-padded to the batch width and stacked in that row order; the
    mask (rows in that order) says which of its slots hold tokens. With a `prefix`
    (harness.predict.prefix) that starts every row, the rows' own tokens are prefilled after it. A
    cache other than plain per-layer key/value tensors gets one padded prefill, as in `generate`.
    """
    from harness.predict.prefix import covers

    lengths = attention_mask.sum(-1).tolist()
    if prefix is not None and not covers(prefix, [input_ids[r, -n:].tolist() for r, n in enumerate(lengths)]):
        prefix = None
    groups = [chunk for group in length_groups(lengths) for chunk in prefill_chunks(group, lengths)]
    parts = []
    for group in groups if len(groups) > 1 or prefix is not None else []:  # else one pass, as `generate`
        width = max(lengths[i] for i in group)
        parts.append(_prefill_rows(model, input_ids[group][:, -width:], attention_mask[group][:, -width:], prefix))
        if not plain_layers(parts[0][1]):
            break
    if not parts or len(parts) < len(groups):
        return list(range(len(lengths))), *_prefill_rows(model, input_ids, attention_mask, None)
    width = input_ids.shape[1]
    merged = parts[0][1]
    for number, layer in enumerate(merged.layers):
        layer.keys = torch.cat([_pad_left(c.layers[number].keys, width) for _, c, _ in parts])
        layer.values = torch.cat([_pad_left(c.layers[number].values, width) for _, c, _ in parts])
        for _, c, _ in parts[1:]:  # let each group's copy go as soon as it is merged: the cache is held once
            c.layers[number].keys = c.layers[number].values = None
    mask = torch.cat([torch.cat([m.new_zeros((m.shape[0], width - m.shape[1])), m], dim=-1) for _, _, m in parts])
    return [i for g in groups for i in g], torch.cat([logits for logits, _, _ in parts]), merged, mask


PREFILL_TOKENS = 4096  # the most prompt tokens (rows x width) one prefill pass runs: its activations are bounded


def prefill_chunks(group: list[int], lengths: list[int]) -> list[list[int]]:
    """A length group cut into chunks of at most PREFILL_TOKENS padded tokens (at least one row each)."""
    rows = max(1, PREFILL_TOKENS // max(1, max(lengths[i] for i in group)))
    return [group[start:start + rows] for start in range(0, len(group), rows)]


def _prefill_rows(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  prefix: Any) -> tuple[torch.Tensor, Any, torch.Tensor]:
    from harness.predict.allocator import large_blocks_mapped

    with large_blocks_mapped():  # its passing states are freed among its lasting keys and values
        return _prefill_pass(model, input_ids, attention_mask, prefix)


def _prefill_pass(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  prefix: Any) -> tuple[torch.Tensor, Any, torch.Tensor]:
    if prefix is not None:
        from harness.predict.prefix import prefill_after

        return prefill_after(model, prefix, input_ids, attention_mask)
    positions = (attention_mask.long().cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions, use_cache=True,
                **last_logits_only(model))
    return out.logits[:, -1], cache_of(out), attention_mask


def _pad_left(states: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - states.shape[-2]
    if missing == 0:
        return states
    return torch.cat([states.new_zeros((*states.shape[:-2], missing, states.shape[-1])), states], dim=-2)
