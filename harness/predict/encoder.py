"""Encoder predictions: a trained head (LoRA variant) or zero-shot embedding similarity (base)."""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F

from harness.records import Prediction
from harness.suites import Example, Suite


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


@torch.no_grad()
def embed(model: Any, tokenizer: Any, texts: list[str], device: str) -> torch.Tensor:
    """Mean-pooled, L2-normalised sentence embeddings (the sentence-transformers recipe for MiniLM).

    Texts are not cut: an input is fitted to the model (and cut only where the suite's `truncate` says) by
    harness.predict.truncation before it gets here."""
    enc = tokenizer(texts, return_tensors="pt", padding=True).to(device)
    hidden = model(**enc).last_hidden_state
    return F.normalize(mean_pool(hidden.float(), enc["attention_mask"]), dim=-1)


def choice_texts(suite: Suite, example: Example) -> list[str]:
    return [suite.continuation(c).strip() for c in example.choices]


def predict_encoder(predictor: Any, suite: Suite, examples: list[Example], batch_size: int,
                    prompts: list[str] | None = None) -> list[Prediction]:
    """Predictions in batches of `batch_size`; `prompts`: each example's input as fitted to the model
    (harness.predict.truncation), by default the example's own text."""
    prompts = prompts if prompts is not None else [ex.prompt for ex in examples]
    preds: list[Prediction] = []
    for start in range(0, len(examples), batch_size):
        batch, texts = examples[start : start + batch_size], prompts[start : start + batch_size]
        began = time.perf_counter()
        if predictor.head:
            scores = _head_scores(predictor, suite, batch, texts)
        else:
            scores = _similarity_scores(predictor, suite, batch, texts)
        latency = (time.perf_counter() - began) / len(batch)
        for ex, text, sc in zip(batch, texts, scores, strict=True):
            best = max(range(len(sc)), key=lambda j: sc[j])
            ref = ex.reference if isinstance(ex.reference, str) else ex.reference[0]
            preds.append(Prediction(ex.id, text, ref, ex.choices[best], best, sc, latency))
    return preds


def _similarity_scores(predictor: Any, suite: Suite, batch: list[Example], texts: list[str]) -> list[list[float]]:
    inputs = embed(predictor.model, predictor.tokenizer, texts, predictor.device)
    scores = []
    for row, ex in enumerate(batch):
        options = embed(predictor.model, predictor.tokenizer, choice_texts(suite, ex), predictor.device)
        scores.append((options @ inputs[row]).tolist())
    return scores


@torch.no_grad()
def _head_scores(predictor: Any, suite: Suite, batch: list[Example], texts: list[str]) -> list[list[float]]:
    tok, device = predictor.tokenizer, predictor.device
    if suite.kind == "classification":
        enc = tok(texts, return_tensors="pt", padding=True).to(device)
        logits = predictor.model(**enc).logits.float()
        return torch.log_softmax(logits, -1).tolist()
    scores = []
    for ex, text in zip(batch, texts, strict=True):
        enc = multiple_choice_inputs(tok, text, choice_texts(suite, ex), device)
        logits = predictor.model(**enc).logits.float()[0]
        scores.append(torch.log_softmax(logits, -1).tolist())
    return scores


def multiple_choice_inputs(tokenizer: Any, prompt: str, choices: list[str], device: str) -> dict:
    """(1, n_choices, seq) tensors pairing the (fitted) prompt with each choice, for a multiple-choice head."""
    enc = tokenizer([prompt] * len(choices), choices, return_tensors="pt", padding=True)
    return {k: v.unsqueeze(0).to(device) for k, v in enc.items()}
