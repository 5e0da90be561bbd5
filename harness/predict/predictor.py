"""Turning (model, suite) into per-example predictions.

Four predictors:
- choices: a causal LM scores each label/choice continuation by its summed log-likelihood;
- generate: a causal LM decodes greedily, batched, with stop sequences and an optional regex extractor;
- encoder: an encoder classifies with its trained head (LoRA variant) or, as it comes, by embedding
  similarity between the input and each label/choice (zero-shot);
- seq2seq: an encoder-decoder generates greedily, and scores each label/choice by its decoder
  log-likelihood given the encoder input (harness.predict.seq2seq).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from harness.kinds import ModelKind
from harness.predict.decoding_stats import DecodingStats
from harness.predict.extraction import extract, extraction_matches
from harness.predict.stopping import cut_at_stop
from harness.records import Prediction
from harness.suites import Example, Suite

DRAFT_TOKENS = 8  # the most drafted tokens a speculative decoding step verifies
Progress = Callable[[int, int], None]  # (examples done, total), called after each batch


@dataclass
class Predictor:
    """A model ready to predict: the base or the base with an adapter."""

    model: Any
    tokenizer: Any
    kind: ModelKind
    device: str
    head: bool = False  # encoder with a trained classification / multiple-choice head


def use_chat_template(suite: Suite, tokenizer: Any) -> bool:
    mode = suite.config.chat_template
    has = bool(getattr(tokenizer, "chat_template", None))
    return has if mode == "auto" else mode == "on"


def build_prompt(suite: Suite, tokenizer: Any, example: Example) -> str:
    return prompt_builder(suite, tokenizer)(example.prompt)


def prompt_builder(suite: Suite, tokenizer: Any) -> Callable[[str], str]:
    """The prompt the model sees for an example's text: the text, or the text in the chat template."""
    if not use_chat_template(suite, tokenizer):
        return lambda text: text

    def chat(text: str) -> str:
        messages = [{"role": "user", "content": text.rstrip()}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    return chat


def predict(predictor: Predictor, suite: Suite, examples: list[Example], batch_size: int,
            max_memory_gb: float | None = None, stats: DecodingStats | None = None,
            speculate: bool = True, progress: Progress | None = None) -> list[Prediction]:
    """Per-example predictions, in batches of at most `batch_size` rows that fit the memory budget;
    `progress(examples done, total)` is called after each batch. Prompts are first fitted to the model
    (harness.predict.truncation): cut where the suite's `truncate` says (counted in `stats.truncated`), an
    error prediction where a prompt does not fit the model's context. While predicting, the model attends
    through harness.predict.attention (same logits, no copied heads), and its linear layers run through
    oneDNN on the CPU (harness.predict.linears). Memory freed meanwhile goes back to the system when it
    ends (harness.predict.allocator)."""
    from harness.predict.allocator import release_freed_memory
    from harness.predict.attention import grouped_attention
    from harness.predict.linears import packed_linears
    from harness.predict.truncation import fit_examples, with_fitted

    stats = stats if stats is not None else DecodingStats()
    fitted = fit_examples(predictor, suite, examples, prompt_builder(suite, predictor.tokenizer))
    stats.truncated += sum(1 for f in fitted if f.truncated and not f.error)

    def failed(example: Example, fit: Any) -> Prediction:
        return Prediction(example.id, fit.text, _ref_text(example), "", error=fit.error)

    def run(kept: list[Example], fits: list[Any], done: Progress | None) -> list[Prediction]:
        return _predict_fitted(predictor, suite, kept, [f.text for f in fits], [f.tokens for f in fits],
                               (batch_size, max_memory_gb), stats, speculate, done)

    try:
        with grouped_attention(predictor.model), packed_linears(predictor.model):
            return with_fitted(examples, fitted, failed, run, progress)
    finally:
        release_freed_memory()


def _predict_fitted(predictor: Predictor, suite: Suite, examples: list[Example], prompts: list[str],
                    lengths: list[int], sizes: tuple[int, float | None], stats: DecodingStats, speculate: bool,
                    progress: Progress | None) -> list[Prediction]:
    """Predictions of fitted prompts; `sizes`: (batch size, memory budget in GiB or None)."""
    batch_size, max_memory_gb = sizes
    if predictor.kind == "encoder":
        return _predict_encoder(predictor, suite, examples, prompts, batch_size, progress)
    if predictor.kind == "seq2seq":
        return _predict_seq2seq(predictor, suite, examples, prompts, sizes, stats, progress)
    from harness.predict.greedy import PREFILL_TOKENS
    from harness.predict.memory import budget_bytes, model_shape, rows_per_batch

    budget, shape = budget_bytes(max_memory_gb, predictor.device), model_shape(predictor.model, predictor.device)
    if suite.kind == "generation":
        new = suite.config.generation.max_new_tokens
        chunked = _greedy(predictor.model)  # harness.predict.greedy prefills PREFILL_TOKENS a pass

        def fits(length: int) -> int:
            prefill_rows = max(1, PREFILL_TOKENS // max(1, length)) if chunked else None
            return rows_per_batch(budget, shape, length, new, 1 + DRAFT_TOKENS, batch_size, prefill_rows)

        def run(batch: list[Example], texts: list[str]) -> list[Prediction]:
            return _generate_batch(predictor, suite, batch, texts, stats, speculate)

        if not (speculate and _streams(predictor.model)):
            return _guarded(examples, prompts, fits, run, lengths, stats, progress)
        from harness.predict.stream import stream_generate

        def batch_by_batch(batch: list[Example], texts: list[str], sizes: list[int]) -> list[Prediction]:
            return _guarded(batch, texts, fits, run, sizes, stats)

        def as_stream(batch: list[Example], texts: list[str], in_flight: Callable[[int], int],
                      row_done: Callable[[int], None]) -> list[Prediction]:
            return _generate_stream(predictor, suite, batch, texts, stats, (in_flight, row_done))

        return stream_generate(examples, prompts, lengths, fits, stats, as_stream, batch_by_batch, progress)
    longest_choice = 8  # tokens of a choice whose logits are read; choices are short

    def fits_choices(length: int) -> int:
        return rows_per_batch(budget, shape, length, longest_choice, longest_choice, batch_size)

    return _guarded(examples, prompts, fits_choices, lambda ex, pr: _choices_batch(predictor, suite, ex, pr),
                    lengths, stats, progress)


def _greedy(model: Any) -> bool:
    """Whether generation decodes in the harness's own loops (harness.predict.greedy), not `generate`."""
    from harness.predict import greedy

    return greedy.supports(model)


def _streams(model: Any) -> bool:
    """Whether generation decodes as a stream of rows (harness.predict.stream): greedy with speculation."""
    from harness.predict import speculative

    return _greedy(model) and speculative.supports(model)


def _predict_encoder(predictor: Predictor, suite: Suite, examples: list[Example], prompts: list[str],
                     batch_size: int, progress: Progress | None) -> list[Prediction]:
    """An encoder's predictions (harness.predict.encoder), one batch of `batch_size` examples at a time."""
    from harness.predict.encoder import predict_encoder

    preds: list[Prediction] = []
    for start in range(0, len(examples), batch_size):
        window = slice(start, start + batch_size)
        preds += predict_encoder(predictor, suite, examples[window], batch_size, prompts[window])
        if progress:
            progress(len(preds), len(examples))
    return preds


def _predict_seq2seq(predictor: Predictor, suite: Suite, examples: list[Example], prompts: list[str],
                     sizes: tuple[int, float | None], stats: DecodingStats,
                     progress: Progress | None = None) -> list[Prediction]:
    """An encoder-decoder's predictions (harness.predict.seq2seq), in batches of at most `sizes[0]` examples
    that fit the memory budget `sizes[1]` (harness.predict.memory)."""
    from harness.predict import seq2seq

    tok, device, gen = predictor.tokenizer, predictor.device, suite.config.generation

    def run(batch: list[Example], texts: list[str]) -> list[Prediction]:
        started = time.perf_counter()
        if suite.kind == "generation":
            new = seq2seq.generate_seq2seq(predictor.model, tok, texts, gen.max_new_tokens, gen.stop, device, stats)
            stats.rows, stats.new_tokens = stats.rows + len(new), stats.new_tokens + sum(len(t) for t in new)
            outputs = [cut_at_stop(t, gen.stop) for t in tok.batch_decode(new, skip_special_tokens=True)]
            latency = (time.perf_counter() - started) / len(batch)
            return [_generated(ex, p, t, gen.extract, latency) for ex, p, t in zip(batch, texts, outputs, strict=True)]
        options = [[suite.continuation(c) for c in ex.choices] for ex in batch]
        scores = seq2seq.score_choices(predictor.model, tok, texts, options, device)
        latency = (time.perf_counter() - started) / len(batch)
        return [Prediction(ex.id, p, _ref_text(ex), ex.choices[_best(sc)], _best(sc), sc, latency)
                for ex, p, sc in zip(batch, texts, scores, strict=True)]

    fits = seq2seq.batch_fits(predictor.model, suite, examples, sizes, device)
    return _guarded(examples, prompts, fits, run, _token_lengths(tok, prompts), stats, progress)


def _best(scores: list[float]) -> int:
    return max(range(len(scores)), key=lambda j: scores[j])


def _token_lengths(tokenizer: Any, prompts: list[str]) -> list[int]:
    """Prompt lengths in tokens: batching by them (not by characters) leaves less padding."""
    if not prompts:
        return []
    return [len(ids) for ids in tokenizer(prompts, add_special_tokens=False)["input_ids"]]


def _guarded(examples: list[Example], prompts: list[str], fits: Callable[[int], int],
             run_batch: Callable[[list[Example], list[str]], list[Prediction]],
             lengths: list[int], stats: DecodingStats, progress: Progress | None = None) -> list[Prediction]:
    """Run batches, longest prompts first, each as large as `fits(its longest prompt)` allows; a failing
    batch is retried example by example and failures are recorded, not raised. `progress(done, total)`
    after each batch."""
    order = sorted(range(len(examples)), key=lambda i: -lengths[i])
    out: dict[int, Prediction] = {}
    start = 0
    while start < len(order):
        idx = order[start : start + fits(lengths[order[start]])]
        start += len(idx)
        stats.batch_sizes.append(len(idx))
        try:
            preds = run_batch([examples[i] for i in idx], [prompts[i] for i in idx])
        except (RuntimeError, ValueError, IndexError) as exc:
            preds = [_single_or_error(run_batch, examples[i], prompts[i], exc) for i in idx]
        out.update(zip(idx, preds, strict=True))
        if progress:
            progress(len(out), len(examples))
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


def _generate_batch(predictor: Predictor, suite: Suite, examples: list[Example], prompts: list[str],
                    stats: DecodingStats | None = None, speculate: bool = True):
    gen = suite.config.generation
    started = time.perf_counter()
    texts = generate(predictor.model, predictor.tokenizer, prompts, gen.max_new_tokens, gen.stop,
                     predictor.device, stats, speculate)
    latency = (time.perf_counter() - started) / len(examples)
    return [_generated(ex, p, t, gen.extract, latency) for ex, p, t in zip(examples, prompts, texts, strict=True)]


Flow = tuple[Callable[[int], int], Callable[[int], None]]  # (rows in flight given the longest prompt, row done)


def _generate_stream(predictor: Predictor, suite: Suite, examples: list[Example], prompts: list[str],
                     stats: DecodingStats, flow: Flow) -> list[Prediction]:
    """One chunk decoded as a stream of rows (harness.predict.stream); `flow`: (rows in flight, row-done)."""
    from harness.predict.speculative import speculative_new_tokens

    gen, tokenizer = suite.config.generation, predictor.tokenizer
    started = time.perf_counter()
    enc = _encode_left_padded(tokenizer, prompts, predictor.device)
    decoded = speculative_new_tokens(predictor.model, tokenizer, enc["input_ids"], enc["attention_mask"],
                                     gen.max_new_tokens, gen.stop, draft_tokens=DRAFT_TOKENS,
                                     in_flight=flow[0], row_done=flow[1])
    stats.add(decoded, prompts)
    texts = [cut_at_stop(t, gen.stop) for t in tokenizer.batch_decode(decoded.tokens, skip_special_tokens=True)]
    latency = (time.perf_counter() - started) / len(examples)
    return [_generated(ex, p, t, gen.extract, latency) for ex, p, t in zip(examples, prompts, texts, strict=True)]


def _generated(example: Example, prompt: str, text: str, pattern: str | None, latency: float) -> Prediction:
    """A generation's prediction; with an extractor, the raw text is kept beside the answer, and a miss is marked."""
    if not pattern:
        return Prediction(example.id, prompt, _ref_text(example), text, latency_s=latency)
    matched = extraction_matches(text, pattern)
    return Prediction(example.id, prompt, _ref_text(example), extract(text, pattern), latency_s=latency,
                      raw_output=text, extracted=matched)


@torch.no_grad()
def generate(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int, stop: Sequence[str],
             device: str, stats: DecodingStats | None = None, speculate: bool = True) -> list[str]:
    """Greedy decoding of a batch (left padded), cut at the first stop sequence.

    Rows leave the batch as they finish; with `speculate` (and a full-attention model) prompt-lookup
    drafts are verified several tokens per forward pass (`harness.predict.speculative`), else one token
    a pass (`harness.predict.greedy`). Models whose generation config changes the logits decode
    through `transformers`' `generate` (`generate_plain`). All three give the same text.
    """
    from harness.predict import greedy, speculative

    if not greedy.supports(model):
        return generate_plain(model, tokenizer, prompts, max_new_tokens, stop, device)
    enc = _encode_left_padded(tokenizer, prompts, device)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    if speculate and speculative.supports(model):
        decoded = speculative.speculative_new_tokens(model, tokenizer, ids, mask, max_new_tokens, stop,
                                                     draft_tokens=DRAFT_TOKENS)
    else:
        ties: list[int] = []
        decoded = speculative.Decoded(greedy.greedy_new_tokens(model, tokenizer, ids, mask, max_new_tokens, stop,
                                                               ties), near_tie_rows=ties)
        decoded.forward_passes = max((len(t) for t in decoded.tokens), default=0)
    if stats is not None:
        stats.add(decoded, prompts)
    texts = tokenizer.batch_decode(decoded.tokens, skip_special_tokens=True)
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
