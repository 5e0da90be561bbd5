"""Training rows for LoRA: token ids and labels (loss on completion tokens only), batched by length."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch

from harness.predict import build_prompt, encode_pair
from harness.suites import Example, Suite

IGNORE = -100


@dataclass
class CausalRow:
    input_ids: list[int]
    labels: list[int]


def causal_rows(suite: Suite, tokenizer: Any, examples: list[Example], max_length: int) -> list[CausalRow]:
    """prompt -> completion rows; the prompt is cut from the left when a row is too long."""
    rows = []
    for ex in examples:
        prompt = build_prompt(suite, tokenizer, ex)
        target = completion_text(suite, ex, prompt)
        ctx, comp = encode_pair(tokenizer, prompt, target)
        if suite.kind == "generation" and tokenizer.eos_token_id is not None:
            comp = comp + [tokenizer.eos_token_id]
        comp = comp[:max_length - 1]
        ctx = ctx[-(max_length - len(comp)):] if max_length > len(comp) else []
        rows.append(CausalRow(ctx + comp, [IGNORE] * len(ctx) + comp))
    return rows


def completion_text(suite: Suite, example: Example, prompt: str) -> str:
    """What the model should produce after the prompt: the scored continuation or the reference."""
    if example.answer is not None:
        return suite.continuation(example.choices[example.answer])
    target = example.target
    return target if prompt.endswith((" ", "\n")) else " " + target


def length_batches(lengths: list[int], batch_size: int, seed: int, group_by_length: bool) -> list[list[int]]:
    """Batches of row indices. With grouping, rows of similar length share a batch (less padding);
    batches are then shuffled so training order stays random."""
    order = list(range(len(lengths)))
    rng = random.Random(seed)
    rng.shuffle(order)
    if group_by_length:
        window = batch_size * 32
        grouped = []
        for start in range(0, len(order), window):
            grouped += sorted(order[start : start + window], key=lambda i: lengths[i])
        order = grouped
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def collate_causal(rows: list[CausalRow], pad_id: int) -> dict[str, torch.Tensor]:
    """Left-padded batch: every row's completion ends at the last position, so the loss needs the
    logits of the last few positions only (see `completion_loss`). Positions count real tokens."""
    width = max(len(r.input_ids) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        n = len(row.input_ids)
        ids[i, width - n:] = torch.tensor(row.input_ids)
        labels[i, width - n:] = torch.tensor(row.labels)
        mask[i, width - n:] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return {"input_ids": ids, "labels": labels, "attention_mask": mask, "position_ids": positions}


def completion_width(labels: torch.Tensor) -> int:
    """How many final positions hold completion tokens in a left-padded batch (at least 1)."""
    is_target = (labels != IGNORE).int()
    first = torch.where(is_target.any(-1), is_target.argmax(-1), torch.tensor(labels.shape[1]))
    return max(1, int(labels.shape[1] - first.min()))


def completion_loss(model: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean next-token loss over completion tokens, computing logits only where they are needed.

    Equal to the model's own loss on the whole sequence (prompt labels are ignored there too), but the
    vocabulary projection and softmax run on `completion + 1` positions instead of all of them,
    which is most of the cost for classification and short answers.
    """
    labels = batch["labels"]
    keep = completion_width(labels) + 1
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs, logits_to_keep=keep).logits
    targets = labels[:, labels.shape[1] - keep + 1:]
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE
    )
