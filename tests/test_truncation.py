"""Long inputs (issue 16): cut only where the suite's `truncate` says, counted; else a per-example error.

Causal, encoder and encoder-decoder predictors fit each prompt to the model's context
(harness/predict/truncation.py); the count lands in ItemResult.n_truncated and the store; the docs'
example validates; a bad `truncate` is a one-line error naming the field.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from tiny_models import build_tokenizer

from harness.config import SuiteConfig, TruncateOptions
from harness.predict import DecodingStats, Predictor, predict
from harness.predict.truncation import context_length, fit_prompt

ROOT = Path(__file__).resolve().parents[1]
TEXT = ("The woman waits in the garden while the children play near the old house, and the dog sleeps "
        "under the table until the evening comes.")


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


def n_tokens(tok, text: str, special: bool = False) -> int:
    return len(tok(text, add_special_tokens=special)["input_ids"])


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("limit", [1, 5, 12, 23])
def test_a_cut_prompt_fits_and_keeps_its_side(tok, side, limit):
    full = n_tokens(tok, TEXT)
    assert full > limit
    fitted = fit_prompt(tok, TEXT, lambda t: t, TruncateOptions(max_input_tokens=limit, side=side), None)
    assert fitted.truncated and fitted.error is None
    assert fitted.tokens == n_tokens(tok, fitted.text) <= limit
    assert fitted.tokens >= limit - 1  # no more than one token lost to re-tokenising at the cut
    assert (TEXT.endswith(fitted.text) if side == "left" else TEXT.startswith(fitted.text))


def test_a_short_prompt_is_left_alone(tok):
    fitted = fit_prompt(tok, TEXT, lambda t: t, TruncateOptions(max_input_tokens=10_000), None)
    assert (fitted.text, fitted.truncated, fitted.error) == (TEXT, False, None)


def test_the_template_around_the_content_stays(tok):
    def build(text: str) -> str:
        return f"<s>[user] {text} [assistant]"

    fitted = fit_prompt(tok, TEXT, build, TruncateOptions(max_input_tokens=20, side="left"), None)
    assert fitted.text.startswith("<s>[user] ") and fitted.text.endswith(" [assistant]")
    assert fitted.tokens <= 20 and fitted.truncated
    too_small = fit_prompt(tok, TEXT, build, TruncateOptions(max_input_tokens=3), None)
    assert "without its content" in too_small.error


def test_over_the_context_without_truncate_is_an_error_that_names_it(tok):
    full = n_tokens(tok, TEXT)
    fitted = fit_prompt(tok, TEXT, lambda t: t, None, context=full + 5, reserve=6)
    assert fitted.error and "truncate" in fitted.error and f"{full} tokens + 6" in fitted.error
    assert fit_prompt(tok, TEXT, lambda t: t, None, context=full + 6, reserve=6).error is None
    lowered = fit_prompt(tok, TEXT, lambda t: t, TruncateOptions(max_input_tokens=full - 1), context=full, reserve=6)
    assert "lower truncate.max_input_tokens to at most" in lowered.error


def test_context_length_takes_the_smallest_known_limit(causal, encoder):
    assert context_length(causal.model, causal.tokenizer) == causal.model.config.max_position_embeddings
    assert context_length(object(), build_tokenizer()) is None  # no config, no tokenizer limit


def prompt_lengths(tok, examples, special: bool = False) -> list[int]:
    return [n_tokens(tok, ex.prompt, special) for ex in examples]


def test_causal_generation_errors_or_cuts(causal, make_suite, monkeypatch):
    plain = make_suite("generation", "plain")
    lengths = prompt_lengths(causal.tokenizer, plain.examples())
    longest, new = max(lengths), plain.config.generation.max_new_tokens
    monkeypatch.setattr(causal.model.config, "max_position_embeddings", longest + new - 1)
    predictor = Predictor(causal.model, causal.tokenizer, "causal", "cpu")
    stats = DecodingStats()
    preds = predict(predictor, plain, plain.examples(), 4, stats=stats)
    failed = [p for p in preds if p.error]
    assert len(failed) == lengths.count(longest) and stats.truncated == 0
    assert all("truncate" in p.error and "context" in p.error for p in failed)
    assert all(p.error is None and p.output for p, n in zip(preds, lengths, strict=True) if n < longest)

    limit = sorted(lengths)[1]
    cut = make_suite("generation", "cut", f"truncate: {{max_input_tokens: {limit}, side: left}}\n")
    stats = DecodingStats()
    preds = predict(predictor, cut, cut.examples(), 4, stats=stats)
    assert all(p.error is None for p in preds)
    assert stats.truncated == sum(n > limit for n in lengths) > 0
    assert all(n_tokens(causal.tokenizer, p.input) <= limit for p in preds)
    assert all(ex.prompt.endswith(p.input) for ex, p in zip(cut.examples(), preds, strict=True))


def test_causal_choices_reserve_their_longest_choice(causal, make_suite, monkeypatch):
    suite = make_suite("multiple_choice")
    lengths = prompt_lengths(causal.tokenizer, suite.examples())
    monkeypatch.setattr(causal.model.config, "max_position_embeddings", max(lengths))  # no room for a choice
    preds = predict(Predictor(causal.model, causal.tokenizer, "causal", "cpu"), suite, suite.examples(), 4)
    assert any(p.error and "to read or write after it" in p.error for p in preds)


def test_encoder_inputs_error_or_cut(encoder, make_suite, monkeypatch):
    plain = make_suite("classification", "enc_plain")
    lengths = prompt_lengths(encoder.tokenizer, plain.examples(), special=True)
    monkeypatch.setattr(encoder.tokenizer, "model_max_length", max(lengths) - 1)
    predictor = Predictor(encoder.model, encoder.tokenizer, "encoder", "cpu")
    preds = predict(predictor, plain, plain.examples(), 4)
    assert [bool(p.error) for p in preds] == [n == max(lengths) for n in lengths]
    limit = min(lengths)
    cut = make_suite("classification", "enc_cut", f"truncate: {{max_input_tokens: {limit}, side: right}}\n")
    stats = DecodingStats()
    preds = predict(predictor, cut, cut.examples(), 4, stats=stats)
    assert all(p.error is None for p in preds) and stats.truncated == sum(n > limit for n in lengths)
    assert all(n_tokens(encoder.tokenizer, p.input, special=True) <= limit for p in preds)


@pytest.fixture(scope="module")
def t5(tmp_path_factory):
    from test_seq2seq import save_t5

    from harness import models

    return models.load(str(save_t5(tmp_path_factory.mktemp("t5") / "t5")), device="cpu")


def test_seq2seq_inputs_error_or_cut_and_batches_fit_the_budget(t5, make_suite, monkeypatch):
    plain = make_suite("generation", "s2s_plain")
    lengths = prompt_lengths(t5.tokenizer, plain.examples(), special=True)
    monkeypatch.setattr(t5.tokenizer, "model_max_length", max(lengths) - 1)
    predictor = Predictor(t5.model, t5.tokenizer, "seq2seq", "cpu")
    preds = predict(predictor, plain, plain.examples(), 4)
    assert [bool(p.error) for p in preds] == [n == max(lengths) for n in lengths]
    limit = min(lengths)
    cut = make_suite("generation", "s2s_cut", f"truncate: {{max_input_tokens: {limit}}}\n")
    roomy, tight = DecodingStats(), DecodingStats()
    wide = predict(predictor, cut, cut.examples(), 4, max_memory_gb=64, stats=roomy)
    weights_gb = sum(p.numel() * p.element_size() for p in t5.model.parameters()) / 1024**3
    narrow = predict(predictor, cut, cut.examples(), 4, max_memory_gb=weights_gb + 1e-6, stats=tight)
    assert roomy.truncated == sum(n > limit for n in lengths) > 0 and all(p.error is None for p in wide)
    assert max(roomy.batch_sizes) == 4 and set(tight.batch_sizes) == {1}
    assert [p.output for p in narrow] == [p.output for p in wide]


def test_the_count_lands_in_the_item_and_the_store(causal, make_suite):
    from harness.config import EvaluationConfig
    from harness.evaluation import evaluate_item
    from harness.store import Store

    suite = make_suite("generation", "counted", "truncate: {max_input_tokens: 4}\n")
    predictor = Predictor(causal.model, causal.tokenizer, "causal", "cpu")
    key = {"run_id": "r1", "candidate": "tiny", "variant": "base", "suite": suite.name}
    item = evaluate_item(predictor, suite, EvaluationConfig(bootstrap_resamples=10), 0, key)
    n = sum(n_tokens(causal.tokenizer, ex.prompt) > 4 for ex in suite.examples())
    assert item.n_truncated == n > 0
    store = Store()
    store.write_item(item)
    assert int(store.query("SELECT n_truncated FROM items").iloc[0]["n_truncated"]) == n


@pytest.mark.parametrize(("value", "message"), [
    ("512", "truncate: got 512; give a mapping"),
    ("{max_input_tokens: 0}", "truncate.max_input_tokens: Input should be greater than or equal to 1"),
    ("{max_input_tokens: 64, side: middle}", "truncate.side: Input should be 'left' or 'right'"),
    ("{max_input_tokens: 64, sides: left}", "truncate.sides: unknown key; did you mean 'side'?"),
    ("{side: left}", "truncate.max_input_tokens: required field is missing"),
])
def test_a_bad_truncate_is_one_line_naming_the_field(tmp_path, value, message):
    from harness.errors import HarnessError
    from harness.suites import load_suite

    (tmp_path / "test.jsonl").write_text('{"a": "x", "reference": "y"}\n', encoding="utf-8")
    path = tmp_path / "s.yaml"
    path.write_text(f'name: s\nkind: generation\ndata: {{test: test.jsonl}}\ntemplate: "{{{{ a }}}}"\n'
                    f"metrics: [chrf]\ntruncate: {value}\n", encoding="utf-8")
    with pytest.raises(HarnessError) as err:
        load_suite(str(path))
    assert "\n" not in str(err.value) and str(err.value).startswith(f"{path}:6: ") and message in str(err.value)


def test_the_docs_example_validates_and_truncates():
    text = (ROOT / "docs" / "suites.md").read_text(encoding="utf-8")
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)]
    suites = [SuiteConfig.model_validate(b) for b in blocks if isinstance(b, dict) and "truncate" in b]
    assert suites and all(s.truncate is not None for s in suites)
    assert suites[0].truncate.side == "left" and suites[0].truncate.max_input_tokens >= 1


def test_an_unset_truncate_leaves_the_suite_fingerprint_alone(make_suite):
    import hashlib
    import json

    from harness.suites.suite import SPLITS

    plain = make_suite("generation", "fp")
    before = hashlib.sha256(plain.config.model_dump_json(exclude={"description", "checks", "truncate"}).encode())
    for split in SPLITS:  # the fingerprint as computed before the field existed
        for row in plain.rows.get(split, []):
            before.update(json.dumps(row, sort_keys=True, default=str).encode())
    assert plain.fingerprint == before.hexdigest()[:16]
    cut = make_suite("generation", "fp", "truncate: {max_input_tokens: 64}\n")
    assert plain.fingerprint != cut.fingerprint
