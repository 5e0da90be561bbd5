"""Turning (model, suite) into per-example predictions.

Three predictors:
- choices: a causal LM scores each label/choice continuation by its summed log-likelihood;
- generate: a causal LM decodes greedily, batched, with stop sequences and an optional regex extractor;
- encoder: an encoder classifies with its trained head (LoRA variant) or, as it comes, by embedding
  similarity between the input and each label/choice (zero-shot).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from harness.records import Prediction
from harness.suites import Example, Suite


@dataclass
class Predictor:
    """A model ready to predict: the base or the base with an adapter."""

    model: Any
    tokenizer: Any
    kind: str
    device: str
    head: bool = False  # encoder with a trained classification / multiple-choice head


def use_chat_template(suite: Suite, tokenizer: Any) -> bool:
    mode = suite.config.chat_template
    has = bool(getattr(tokenizer, "chat_template", None))
    return has if mode == "auto" else mode == "on"


def build_prompt(suite: Suite, tokenizer: Any, example: Example) -> str:
    if not use_chat_template(suite, tokenizer):
        return example.prompt
    messages = [{"role": "user", "content": example.prompt.rstrip()}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def predict(predictor: Predictor, suite: Suite, examples: list[Example], batch_size: int) -> list[Prediction]:
    if predictor.kind == "encoder":
        from harness.predict.encoder import predict_encoder

        return predict_encoder(predictor, suite, examples, batch_size)
    prompts = [build_prompt(suite, predictor.tokenizer, ex) for ex in examples]
    if suite.kind == "generation":
        return _guarded(examples, prompts, batch_size, lambda ex, pr: _generate_batch(predictor, suite, ex, pr))
    return _guarded(examples, prompts, batch_size, lambda ex, pr: _choices_batch(predictor, suite, ex, pr),
                    _token_lengths(predictor.tokenizer, prompts))


def _token_lengths(tokenizer: Any, prompts: list[str]) -> list[int]:
    """Prompt lengths in tokens: batching by them (not by characters) leaves less padding."""
    if not prompts:
        return []
    return [len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]]


def _guarded(examples: list[Example], prompts: list[str], batch_size: int,
             run_batch: Callable[[list[Example], list[str]], list[Prediction]],
             lengths: list[int] | None = None) -> list[Prediction]:
    """Run batches, longest prompts first (by `lengths`, else characters); a failing batch is retried
    example by example and failures are recorded, not raised."""
    size = lengths if lengths is not None else [len(p) for p in prompts]
    order = sorted(range(len(examples)), key=lambda i: -size[i])
    out: dict[int, Prediction] = {}
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        try:
            preds = run_batch([examples[i] for i in idx], [prompts[i] for i in idx])
        except (RuntimeError, ValueError, IndexError) as exc:
            preds = [_single_or_error(run_batch, examples[i], prompts[i], exc) for i in idx]
        out.update(zip(idx, preds, strict=True))
    return [out[i] for i in range(len(examples))]


def _single_or_error(run_batch, example: Example, prompt: str, first: Exception) -> Prediction:
    try:
        return run_batch([example], [prompt])[0]
    except (RuntimeError, ValueError, IndexError) as exc:
        return Prediction(example.id, prompt, _ref_text(example), "", error=f"{type(exc).__name__}: {exc}"[:500])


def _ref_text(example: Example) -> str:
    ref = example.reference
    return ref if isinstance(ref, str) else "\n".join(ref)


# ---------------------------------------------------------------------------------------------------
# log-likelihood of choices


def encode_pair(tokenizer: Any, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Token ids of context and continuation, split the way lm-evaluation-harness splits them.

    Trailing spaces of the context move to the continuation; the continuation's tokens are what the
    whole string adds after the context's tokens.
    """
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tokenizer(context + continuation, add_special_tokens=False)["input_ids"]
    ctx = tokenizer(context, add_special_tokens=False)["input_ids"]
    return ctx, whole[len(ctx):]


def _choices_batch(predictor: Predictor, suite: Suite, examples: list[Example], prompts: list[str]):
    started = time.perf_counter()
    pairs = [[encode_pair(predictor.tokenizer, p, suite.continuation(c)) for c in ex.choices]
             for ex, p in zip(examples, prompts, strict=True)]
    scores = choice_logprobs(predictor.model, pairs, predictor.tokenizer.pad_token_id, predictor.device)
    latency = (time.perf_counter() - started) / len(examples)
    preds = []
    for ex, prompt, sc in zip(examples, prompts, scores, strict=True):
        best = max(range(len(sc)), key=lambda j: sc[j])
        preds.append(Prediction(ex.id, prompt, _ref_text(ex), ex.choices[best], best, sc, latency))
    return preds


@torch.no_grad()
def choice_logprobs(model: Any, pairs: list[list[tuple[list[int], list[int]]]], pad_id: int,
                    device: str) -> list[list[float]]:
    """Summed log-probabilities of each continuation given its context.

    Each context runs once. Its key-value cache is reused for every choice, so multi-token choices
    cost one short forward each instead of re-reading the context (the cost that dominates
    multiple-choice evaluation). Contexts are batched together with left padding.
    """
    from harness.predict.choices import score_with_shared_context

    return score_with_shared_context(model, pairs, pad_id, device)


# ---------------------------------------------------------------------------------------------------
# generation


def _generate_batch(predictor: Predictor, suite: Suite, examples: list[Example], prompts: list[str]):
    gen = suite.config.generation
    started = time.perf_counter()
    texts = generate(predictor.model, predictor.tokenizer, prompts, gen.max_new_tokens, gen.stop,
                     predictor.device)
    latency = (time.perf_counter() - started) / len(examples)
    return [Prediction(ex.id, p, _ref_text(ex), extract(t, gen.extract), latency_s=latency)
            for ex, p, t in zip(examples, prompts, texts, strict=True)]


@torch.no_grad()
def generate(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int, stop: Sequence[str],
             device: str) -> list[str]:
    """Greedy decoding of a batch (left padded), cut at the first stop sequence.

    Rows leave the batch as they finish (`harness.predict.greedy`); models whose generation config changes
    the logits decode through `transformers`' `generate` (`generate_plain`), which gives the same text.
    """
    from harness.predict.greedy import greedy_new_tokens, supports

    if not supports(model):
        return generate_plain(model, tokenizer, prompts, max_new_tokens, stop, device)
    enc = _encode_left_padded(tokenizer, prompts, device)
    new = greedy_new_tokens(model, tokenizer, enc["input_ids"], enc["attention_mask"], max_new_tokens, stop)
    texts = tokenizer.batch_decode(new, skip_special_tokens=True)
    return [cut_at_stop(t, stop) for t in texts]


@torch.no_grad()
def generate_plain(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int, stop: Sequence[str],
                   device: str) -> list[str]:
    """Greedy decoding with `transformers`' `generate`: every row stays in the batch until the last one ends."""
    enc = _encode_left_padded(tokenizer, prompts, device)
    kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": False,
                              "pad_token_id": tokenizer.pad_token_id}
    if stop:
        from transformers import StoppingCriteriaList

        from harness.predict.stopping import StopAfterText

        width = enc["input_ids"].shape[1]
        kwargs["stopping_criteria"] = StoppingCriteriaList([StopAfterText(tokenizer, stop, width)])
    out = model.generate(**enc, **kwargs)
    new = out[:, enc["input_ids"].shape[1]:]
    texts = tokenizer.batch_decode(new, skip_special_tokens=True)
    return [cut_at_stop(t, stop) for t in texts]


def _encode_left_padded(tokenizer: Any, prompts: Sequence[str], device: str) -> Any:
    tokenizer.padding_side = "left"
    return tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=False).to(device)


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """The text up to the first stop sequence, ignoring leading whitespace (a model often starts with one)."""
    text = text.lstrip()
    cut = len(text)
    for s in stop:
        pos = text.find(s)
        if pos != -1:
            cut = min(cut, pos)
    return text[:cut].strip()


def extract(text: str, pattern: str | None) -> str:
    """The answer inside a generation: group 1 of the regex (or the whole match); the text if no match."""
    if not pattern:
        return text
    match = re.search(pattern, text, flags=re.DOTALL)
    if not match:
        return text
    return (match.group(1) if match.groups() else match.group(0)).strip()
