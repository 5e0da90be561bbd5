"""Encoder fine-tuning: LoRA adapters plus a trained classification or multiple-choice head."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from harness.config import LoraConfig
from harness.models import LoadedModel
from harness.predict import Predictor
from harness.predict.encoder import choice_texts
from harness.suites import Suite


@dataclass
class EncoderRow:
    texts: list[str]  # the prompt (classification) or one prompt per choice (multiple choice)
    pairs: list[str] | None
    label: int


class EncoderTask:
    def __init__(self, base: LoadedModel, suite: Suite, lora: LoraConfig):
        self.base, self.suite, self.lora = base, suite, lora

    def head_model(self) -> Any:
        """The encoder with a fresh classification (or multiple-choice) head, no adapter yet."""
        from transformers import AutoModelForMultipleChoice, AutoModelForSequenceClassification

        location = self.base.ref.location
        if self.suite.kind == "classification":
            model = AutoModelForSequenceClassification.from_pretrained(
                location, num_labels=len(self.suite.config.labels or []), dtype=self.base.dtype)
        else:
            model = AutoModelForMultipleChoice.from_pretrained(location, dtype=self.base.dtype)
        return model.to(self.base.device)

    def adapted(self, targets: list[str] | None) -> AbstractContextManager[Any]:
        """A fresh adapter on a model of its own (the encoder loaded again, with the task head the base lacks)
        for the `with` block; the base is not touched."""
        from peft import LoraConfig as PeftLora
        from peft import TaskType, get_peft_model

        model = self.head_model()
        task_type = TaskType.SEQ_CLS if self.suite.kind == "classification" else None
        inner = getattr(model, model.base_model_prefix, None)
        heads = [n for n in ("classifier", "pooler", "score") if hasattr(model, n) or hasattr(inner, n)]
        config = PeftLora(task_type=task_type, r=self.lora.rank, lora_alpha=self.lora.alpha,
                          lora_dropout=self.lora.dropout, target_modules=targets, modules_to_save=heads)
        return nullcontext(get_peft_model(model, config))

    def rows(self, split: str, limit: int | None) -> list[EncoderRow]:
        if not self.suite.has_split(split):
            return []
        rows = []
        for ex in self.suite.examples(split, limit):
            if self.suite.kind == "classification":
                rows.append(EncoderRow([ex.prompt], None, int(ex.answer or 0)))
            else:
                choices = choice_texts(self.suite, ex)
                rows.append(EncoderRow([ex.prompt] * len(choices), choices, int(ex.answer or 0)))
        return rows

    def length(self, row: EncoderRow) -> int:
        return sum(len(t) for t in row.texts) + sum(len(p) for p in row.pairs or [])

    def collate(self, rows: list[EncoderRow]) -> dict:
        tok, n = self.base.tokenizer, self.lora.max_length
        labels = torch.tensor([r.label for r in rows], device=self.base.device)
        if self.suite.kind == "classification":
            enc = tok([r.texts[0] for r in rows], return_tensors="pt", padding=True, truncation=True, max_length=n)
            return {**{k: v.to(self.base.device) for k, v in enc.items()}, "labels": labels}
        width = max(len(r.texts) for r in rows)
        if any(len(r.texts) != width for r in rows):
            rows = [r for r in rows if len(r.texts) == width]  # a multiple-choice batch needs equal choice counts
            labels = torch.tensor([r.label for r in rows], device=self.base.device)
        firsts = [t for r in rows for t in r.texts]
        seconds = [p for r in rows for p in (r.pairs or [])]
        enc = tok(firsts, seconds, return_tensors="pt", padding=True, truncation=True, max_length=n)
        shaped = {k: v.view(len(rows), width, -1).to(self.base.device) for k, v in enc.items()}
        return {**shaped, "labels": labels}

    def loss(self, model: Any, batch: dict) -> Any:
        return model(**batch).loss

    def target_count(self, batch: dict) -> int:
        return int(batch["labels"].numel())

    def predictor(self, model: Any) -> Predictor:
        return Predictor(model, self.base.tokenizer, "encoder", self.base.device, head=True)
