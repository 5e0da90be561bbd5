"""Encoder-decoder fine-tuning (T5, BART): LoRA on attention, prompt -> completion.

The encoder reads the prompt; the labels are the completion's tokens (the scored continuation of
the answer, or the reference) followed by end-of-sequence, exactly the tokens that
`harness.predict.seq2seq` scores and generates, so training and evaluation agree on the target.
The model builds its decoder inputs from the labels (shifted right), and its own loss is the mean
over label tokens.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch

from harness.config import LoraConfig
from harness.finetune.causal_data import completion_text
from harness.finetune.inplace import adapter_on
from harness.models import LoadedModel
from harness.predict import Predictor, build_prompt
from harness.predict.seq2seq import IGNORE, pad_targets, target_ids
from harness.suites import Suite


@dataclass
class Seq2SeqRow:
    input_ids: list[int]  # the encoder's input: the prompt
    labels: list[int]  # the decoder's target: the completion, then end-of-sequence


class Seq2SeqTask:
    """Supervised fine-tuning of an encoder-decoder on prompt -> completion."""

    def __init__(self, base: LoadedModel, suite: Suite, lora: LoraConfig):
        self.base, self.suite, self.lora = base, suite, lora

    def adapted(self, targets: list[str] | None) -> AbstractContextManager[Any]:
        """A fresh adapter on the base itself for the `with` block, taken off after it."""
        from peft import LoraConfig as PeftLora
        from peft import TaskType, get_peft_model

        config = PeftLora(task_type=TaskType.SEQ_2_SEQ_LM, r=self.lora.rank, lora_alpha=self.lora.alpha,
                          lora_dropout=self.lora.dropout, target_modules=targets)
        return adapter_on(self.base.model, lambda model: get_peft_model(model, config))

    def rows(self, split: str, limit: int | None) -> list[Seq2SeqRow]:
        """prompt -> completion rows; a prompt longer than max_length keeps its end (as on the causal path)."""
        if not self.suite.has_split(split):
            return []
        tok, limit_tokens, rows = self.base.tokenizer, self.lora.max_length, []
        for ex in self.suite.examples(split, limit):
            prompt = build_prompt(self.suite, tok, ex)
            source = tok(prompt)["input_ids"][-limit_tokens:]
            rows.append(Seq2SeqRow(source, target_ids(tok, completion_text(self.suite, ex, prompt))[:limit_tokens]))
        return rows

    def length(self, row: Seq2SeqRow) -> int:
        return len(row.input_ids) + len(row.labels)

    def collate(self, rows: list[Seq2SeqRow]) -> dict:
        width = max(len(r.input_ids) for r in rows)
        ids = torch.full((len(rows), width), self.base.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row.input_ids)] = torch.tensor(row.input_ids, dtype=torch.long)
            mask[i, : len(row.input_ids)] = 1
        device = self.base.device
        return {"input_ids": ids.to(device), "attention_mask": mask.to(device),
                "labels": pad_targets([r.labels for r in rows], device)}

    def target_count(self, batch: dict) -> int:
        return int((batch["labels"] != IGNORE).sum())

    def loss(self, model: Any, batch: dict) -> Any:
        return model(**batch).loss

    def predictor(self, model: Any) -> Predictor:
        return Predictor(model, self.base.tokenizer, "seq2seq", self.base.device)
