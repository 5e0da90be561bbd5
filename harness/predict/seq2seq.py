"""Encoder-decoder models (T5, BART): greedy generation and choice log-likelihoods.

The prompt is the encoder's input. Generation is `transformers`' `generate` with greedy decoding
(`do_sample=False, num_beams=1`), stopped per row once a stop sequence follows some text
(`harness.predict.stopping`) and cut there afterwards by the caller, as on the causal path.

A label or choice is scored by the decoder: the summed log-probability of its tokens (its text
stripped, then the end-of-sequence token, so that a choice that is a prefix of another does not
win by being short), given the encoder input. The encoder runs once per example; its states are
shared by every choice of that example in one decoder pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from transformers import LogitsProcessorList

from harness.predict.greedy import eos_ids, tie_margin

IGNORE = -100


def encode_inputs(tokenizer: Any, prompts: Sequence[str], device: str) -> Any:
    """Right-padded encoder inputs (the padding side a learned-position encoder such as BART's expects)."""
    tokenizer.padding_side = "right"
    return tokenizer(list(prompts), return_tensors="pt", padding=True).to(device)


def target_ids(tokenizer: Any, text: str) -> list[int]:
    """The decoder's target tokens for `text`: its stripped text's tokens, then end-of-sequence."""
    ids = tokenizer(text.strip(), add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    return ids + [eos] if eos is not None else ids


def batch_fits(model: Any, suite: Any, examples: list, sizes: tuple[int, float | None],
               device: str) -> Callable[[int], int]:
    """Rows per batch by the longest encoder input, within the memory budget (harness.predict.memory): the
    decoder's self- and cross-attention caches, the encoder's activations, the logits that are read (one
    position a step in generation; every label token of every choice in scoring)."""
    from harness.predict.memory import budget_bytes, model_shape, rows_per_batch

    batch_size, max_memory_gb = sizes
    budget, shape = budget_bytes(max_memory_gb, device), model_shape(model, device)
    if suite.kind == "generation":
        new, positions = suite.config.generation.max_new_tokens, 1
    else:
        new = 8  # tokens of a label or choice; they are short
        positions = new * max((len(ex.choices) for ex in examples), default=1)
    return lambda length: rows_per_batch(budget, shape, length, new, positions, batch_size)


@torch.no_grad()
def generate_seq2seq(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int,
                     stop: Sequence[str], device: str, stats: Any = None) -> list[list[int]]:
    """The new decoder tokens of greedy decoding per prompt (the decoder start token left out, and the
    padding after a row's end-of-sequence). With `stats`, rows whose emitted token had a near tie (top two
    logits within the tie margin of the model's dtype) are added to `stats.near_tie_rows`/`near_tie_inputs`."""
    enc = encode_inputs(tokenizer, prompts, device)
    kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": False, "num_beams": 1}
    if tokenizer.pad_token_id is not None:
        kwargs["pad_token_id"] = tokenizer.pad_token_id
    if stop:
        from transformers import StoppingCriteriaList

        from harness.predict.stopping import StopAfterText

        kwargs["stopping_criteria"] = StoppingCriteriaList([StopAfterText(tokenizer, stop, 1)])
    eos = set(eos_ids(model).tolist())
    ended = eos | ({tokenizer.pad_token_id} - {None})  # generate pads a finished row
    ties = NearTies(ended, next(model.parameters()).dtype)
    out = model.generate(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                         logits_processor=LogitsProcessorList([ties]), **kwargs)
    rows = [_until_end(row.tolist(), ended, eos) for row in out[:, 1:]]
    if stats is not None:
        stats.near_tie_rows += len(ties.rows)
        stats.near_tie_inputs += [prompts[r] for r in sorted(ties.rows)]
    return rows


class NearTies:
    """A logits processor that changes nothing and notes the live rows whose top two logits are within
    the tie margin (where another batch shape may flip the greedy token)."""

    def __init__(self, ended: set[int], dtype: torch.dtype):
        self.ended, self.margin = torch.tensor(sorted(ended), dtype=torch.long), tie_margin(dtype)
        self.rows: set[int] = set()

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        top = torch.topk(scores.float(), 2, dim=-1).values
        live = ~torch.isin(input_ids[:, 1:], self.ended.to(input_ids.device)).any(-1)
        self.rows.update(torch.nonzero(live & ((top[:, 0] - top[:, 1]) < self.margin)).flatten().tolist())
        return scores


def _until_end(tokens: list[int], ended: set[int], eos: set[int]) -> list[int]:
    """A row's tokens up to its first end-of-sequence token (kept) or padding (left out)."""
    for at, token in enumerate(tokens):
        if token in ended:
            return tokens[: at + 1] if token in eos else tokens[:at]
    return tokens


def pad_targets(targets: list[list[int]], device: str) -> torch.Tensor:
    """Labels (rows right-padded with IGNORE), from which the model builds its decoder inputs."""
    width = max((len(t) for t in targets), default=1)
    labels = torch.full((len(targets), max(width, 1)), IGNORE, dtype=torch.long)
    for row, ids in enumerate(targets):
        labels[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return labels.to(device)


@torch.no_grad()
def score_choices(model: Any, tokenizer: Any, prompts: Sequence[str], choices: list[list[str]],
                  device: str) -> list[list[float]]:
    """scores[i][j]: the decoder's summed log-probability of choice j of example i given prompt i."""
    enc = encode_inputs(tokenizer, prompts, device)
    encoder = model.get_encoder()
    hidden = encoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
    owner = torch.tensor([i for i, options in enumerate(choices) for _ in options], device=device)
    labels = pad_targets([target_ids(tokenizer, c) for options in choices for c in options], device)
    out = model(encoder_outputs=(hidden[owner],), attention_mask=enc["attention_mask"][owner], labels=labels)
    flat = sequence_logprobs(out.logits, labels)
    scores, at = [], 0
    for options in choices:
        scores.append(flat[at : at + len(options)])
        at += len(options)
    return scores


def sequence_logprobs(logits: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """Per row, the summed log-probability of its labels (IGNORE positions left out)."""
    logprobs = F.log_softmax(logits.float(), dim=-1)
    mask = labels != IGNORE
    picked = logprobs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return torch.where(mask, picked, torch.zeros_like(picked)).sum(-1).tolist()
