"""Predictions: choice log-likelihoods, generation, encoder predictors, per-example failures."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

import harness.predict.predictor as predict_module
from harness.config import LoraConfig
from harness.finetune.encoder import EncoderTask
from harness.predict import Predictor, cut_at_stop, encode_pair, extract, generate, predict, use_chat_template
from harness.predict.choices import score_naive, score_with_shared_context
from harness.predict.encoder import embed

CONTEXTS = [
    "Question: What is the opposite of 'happy'?\nAnswer:",
    "Review: fine\nAnswer:",
    "Translate English to German.\nEnglish: The woman waits in the garden.\nGerman: Die Frau",
]
CHOICES = [" A", " the", " weak", " positive", " sad and late"]


def flat(rows: list[list[float]]) -> list[float]:
    return [x for row in rows for x in row]


def causal_predictor(loaded) -> Predictor:
    return Predictor(loaded.model, loaded.tokenizer, loaded.kind, loaded.device)


def test_encode_pair_moves_trailing_space_to_continuation(causal):
    tok = causal.tokenizer
    ctx, cont = encode_pair(tok, "Answer: ", "sad")
    assert ctx == tok("Answer:", add_special_tokens=False)["input_ids"]
    assert ctx + cont == tok("Answer: sad", add_special_tokens=False)["input_ids"]
    assert tok.decode(cont) == " sad"
    # no trailing space: the continuation is what the whole string adds after the context's tokens
    ctx2, cont2 = encode_pair(tok, "Answer:", " sad")
    assert (ctx2, cont2) == (ctx, cont)


def test_shared_context_scoring_equals_naive(causal):
    tok = causal.tokenizer
    pairs = [[encode_pair(tok, context, choice) for choice in CHOICES] for context in CONTEXTS]
    lengths = {len(cont) for row in pairs for _, cont in row}
    assert 1 in lengths and max(lengths) > 2, "the batch mixes single- and multi-token choices"
    assert len({len(row[0][0]) for row in pairs}) == len(CONTEXTS), "contexts of different lengths"
    fast = score_with_shared_context(causal.model, pairs, tok.pad_token_id, "cpu")
    slow = score_naive(causal.model, pairs, "cpu")
    assert flat(fast) == pytest.approx(flat(slow), abs=1e-4)
    assert all(s < 0 for row in fast for s in row)


def test_shared_context_with_varied_choice_counts(causal):
    tok = causal.tokenizer
    pairs = [[encode_pair(tok, CONTEXTS[0], c) for c in CHOICES[:2]],
             [encode_pair(tok, CONTEXTS[2], c) for c in CHOICES[2:]]]
    fast = score_with_shared_context(causal.model, pairs, tok.pad_token_id, "cpu")
    assert [len(r) for r in fast] == [2, 3]
    assert flat(fast) == pytest.approx(flat(score_naive(causal.model, pairs, "cpu")), abs=1e-4)


def test_choice_predictions_pick_the_best_scored_choice(causal, make_suite):
    suite = make_suite("multiple_choice")
    examples = suite.examples()
    preds = predict(causal_predictor(causal), suite, examples, batch_size=3)
    assert [p.example_id for p in preds] == [ex.id for ex in examples]
    for ex, p in zip(examples, preds, strict=True):
        pairs = [[encode_pair(causal.tokenizer, ex.prompt, suite.continuation(c)) for c in ex.choices]]
        expected = score_naive(causal.model, pairs, "cpu")[0]
        assert p.choice_scores == pytest.approx(expected, abs=1e-4)
        assert p.choice_index == max(range(len(expected)), key=expected.__getitem__)
        assert p.output == ex.choices[p.choice_index] and p.reference == ex.reference and p.error is None


def test_generation_is_deterministic_and_batched_equals_unbatched(causal):
    prompts = ["English: The child plays at home.\nGerman:", "Review: bad\nAnswer:",
               "Summarise the conversation in one sentence.\n\nAnna: Hi\nBen: Hello\n\nSummary:"]
    batched = generate(causal.model, causal.tokenizer, prompts, 8, [], "cpu")
    assert batched == generate(causal.model, causal.tokenizer, prompts, 8, [], "cpu")
    single = [generate(causal.model, causal.tokenizer, [p], 8, [], "cpu")[0] for p in prompts]
    assert batched == single
    assert all(batched)


def test_generation_stops_at_stop_sequence(causal):
    prompt = ["Question: What is two plus three?\nAnswer:"]
    full = generate(causal.model, causal.tokenizer, prompt, 12, [], "cpu")[0]
    assert len(full) >= 6, f"the tiny model should produce some text, got {full!r}"
    stop = full[len(full) // 2 : len(full) // 2 + 3]
    cut = generate(causal.model, causal.tokenizer, prompt, 12, [stop], "cpu")[0]
    assert cut == full[: full.find(stop)].strip()
    assert stop not in cut and len(cut) < len(full)


def test_cut_at_stop():
    assert cut_at_stop("  Die Frau.\nEnglish: x", ["\n"]) == "Die Frau."
    assert cut_at_stop("a b\n\nc", ["\n\n", "b"]) == "a"
    assert cut_at_stop(" plain ", []) == "plain"


def test_regex_extraction():
    assert extract("The answer is 42.", r"answer is (\d+)") == "42"
    assert extract("x 42 y", r"\d+") == "42"
    assert extract("no digits here", r"(\d+)") == "no digits here"
    assert extract("keep", None) == "keep"


def test_generation_predictions_use_extract(causal, make_suite, monkeypatch):
    suite = make_suite("generation", extra="")
    suite.config.generation.extract = r"^(\S+)"
    examples = suite.examples()
    preds = predict(causal_predictor(causal), suite, examples, batch_size=2)
    raw = generate(causal.model, causal.tokenizer, [ex.prompt for ex in examples], 6, ["\n"], "cpu")
    assert [p.output for p in preds] == [extract(t, r"^(\S+)") for t in raw]
    assert all(p.choice_index is None and p.error is None for p in preds)


def test_use_chat_template_modes(make_suite):
    suite = make_suite("classification")
    with_template = SimpleNamespace(chat_template="{{ messages }}")
    without = SimpleNamespace(chat_template=None)
    assert suite.config.chat_template == "off" and not use_chat_template(suite, with_template)
    suite.config.chat_template = "auto"
    assert use_chat_template(suite, with_template) and not use_chat_template(suite, without)
    suite.config.chat_template = "on"
    assert use_chat_template(suite, without)


@pytest.mark.parametrize("kind", ["classification", "multiple_choice"])
def test_encoder_similarity_predictor(encoder, make_suite, kind):
    suite = make_suite(kind)
    examples = suite.examples()
    predictor = Predictor(encoder.model, encoder.tokenizer, "encoder", "cpu")
    preds = predict(predictor, suite, examples, batch_size=3)
    for ex, p in zip(examples, preds, strict=True):
        assert 0 <= p.choice_index < len(ex.choices) and p.output == ex.choices[p.choice_index]
        assert len(p.choice_scores) == len(ex.choices)
    first = examples[0]
    query = embed(encoder.model, encoder.tokenizer, [first.prompt], "cpu")[0]
    options = embed(encoder.model, encoder.tokenizer, [c.strip() for c in first.choices], "cpu")
    assert preds[0].choice_scores == pytest.approx((options @ query).tolist(), abs=1e-5)


@pytest.mark.parametrize("kind", ["classification", "multiple_choice"])
def test_encoder_head_predictor(encoder, make_suite, kind):
    suite = make_suite(kind)
    task = EncoderTask(encoder, suite, LoraConfig())
    torch.manual_seed(0)
    predictor = task.predictor(task.head_model().eval())
    examples = suite.examples()
    preds = predict(predictor, suite, examples, batch_size=2)
    for ex, p in zip(examples, preds, strict=True):
        assert 0 <= p.choice_index < len(ex.choices) and p.output == ex.choices[p.choice_index]
        assert sum(torch.tensor(p.choice_scores).exp().tolist()) == pytest.approx(1.0, abs=1e-4)  # log-softmax


@pytest.mark.parametrize("kind", ["multiple_choice", "generation"])
def test_a_failing_example_is_recorded_not_raised(causal, make_suite, monkeypatch, kind):
    suite = make_suite(kind)
    examples = suite.examples()
    predictor = causal_predictor(causal)
    clean = predict(predictor, suite, examples, batch_size=4)
    bad = examples[1].id
    name = "_generate_batch" if kind == "generation" else "_choices_batch"
    original = getattr(predict_module, name)

    def flaky(pred, s, batch, prompts, *rest):
        if any(ex.id == bad for ex in batch):
            raise RuntimeError(f"boom on {bad}")
        return original(pred, s, batch, prompts, *rest)

    monkeypatch.setattr(predict_module, name, flaky)
    if kind == "generation":  # the stream of rows fails as a whole, then runs batch by batch
        original_stream = predict_module._generate_stream

        def flaky_stream(pred, s, batch, *rest):
            if any(ex.id == bad for ex in batch):
                raise RuntimeError(f"boom on {bad}")
            return original_stream(pred, s, batch, *rest)

        monkeypatch.setattr(predict_module, "_generate_stream", flaky_stream)
    preds = predict(predictor, suite, examples, batch_size=4)
    assert [p.example_id for p in preds] == [ex.id for ex in examples]
    failed = [p for p in preds if p.error]
    assert [p.example_id for p in failed] == [bad]
    assert failed[0].error == f"RuntimeError: boom on {bad}" and failed[0].output == ""
    for p, c in zip(preds, clean, strict=True):
        if p.example_id != bad:
            assert p.output == c.output  # the others were retried one by one and still predicted


@pytest.mark.slow
def test_shared_context_scoring_equals_naive_on_smollm2():
    from harness import models

    try:
        models.resolve("pack:smollm2-135m-instruct")
    except Exception as exc:  # noqa: BLE001 - any reason the pack is absent
        pytest.skip(f"pack:smollm2-135m-instruct is not installed here ({exc})")
    loaded = models.load("pack:smollm2-135m-instruct", device="cpu")
    tok = loaded.tokenizer
    pairs = [[encode_pair(tok, context, choice) for choice in CHOICES] for context in CONTEXTS]
    fast = score_with_shared_context(loaded.model, pairs, tok.pad_token_id, "cpu")
    assert flat(fast) == pytest.approx(flat(score_naive(loaded.model, pairs, "cpu")), abs=2e-3)


def test_a_stop_sequence_counts_only_after_some_text():
    """A model that opens with a newline must not be cut to nothing by stop: ["\\n"]."""
    from harness.predict.stopping import should_stop

    assert not should_stop("\n", ["\n"])
    assert not should_stop("  \n", ["\n"])
    assert not should_stop(" Anna moves", ["\n"])
    assert should_stop("\nAnna moves the meeting.\n", ["\n"])
    assert should_stop("Der Hund ist klein.\nEnglish", ["\n", "English:"])
