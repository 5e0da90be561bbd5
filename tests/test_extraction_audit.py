"""Extraction you can audit: with `generation.extract`, the raw generation is kept beside the answer, every
miss is counted per item (a warning in the item's reason), and an item fails past max_extract_miss_rate."""

from __future__ import annotations

import tiny_models

from harness.config import EvaluationConfig
from harness.evaluation import evaluate_item
from harness.predict import Predictor
from harness.store import Store
from harness.suites import load_suite

KEY = {"run_id": "r1", "candidate": "tiny", "variant": "base", "suite": "tiny_gen"}


def suite_with(tmp_path, generation: str):
    path = tiny_models.write_suite(tmp_path / "s", "generation")
    text = path.read_text().replace('generation: {max_new_tokens: 6, stop: ["\\n"]}', generation)
    path.write_text(text)
    return load_suite(str(path))


def run_item(causal, suite):
    predictor = Predictor(causal.model, causal.tokenizer, "causal", "cpu")
    return evaluate_item(predictor, suite, EvaluationConfig(bootstrap_resamples=20), 0, dict(KEY))


def test_a_regex_that_never_matches_is_counted_and_the_raw_text_kept(causal, tmp_path):
    suite = suite_with(tmp_path, "generation: {max_new_tokens: 6, extract: 'ANSWER=(\\d+)'}")
    item = run_item(causal, suite)
    n = len(item.predictions)
    assert n > 0 and item.status == "done"
    assert all(p.extracted is False and p.raw_output is not None for p in item.predictions)
    assert item.reason.startswith(f"{n} of {n} generations did not match extract")
    store = Store(tmp_path / "s.duckdb")
    store.write_item(item)
    row = store.query("SELECT n_extract_missed FROM items").iloc[0]
    assert row["n_extract_missed"] == n
    stored = store.query("SELECT output, raw_output, extracted FROM predictions ORDER BY example_id")
    assert list(stored["raw_output"]) == [p.raw_output for p in sorted(item.predictions, key=lambda p: p.example_id)]
    assert not stored["extracted"].any()


def test_past_the_suites_threshold_the_item_fails(causal, tmp_path):
    options = "max_new_tokens: 6, extract: 'ANSWER=(\\d+)', max_extract_miss_rate: 0.5"
    suite = suite_with(tmp_path, "generation: {" + options + "}")
    item = run_item(causal, suite)
    assert item.status == "failed" and "max_extract_miss_rate 0.5" in item.reason


def test_a_regex_that_matches_extracts_and_says_nothing(causal, tmp_path):
    suite = suite_with(tmp_path, "generation: {max_new_tokens: 6, extract: '(.*)'}")
    item = run_item(causal, suite)
    assert item.status == "done" and item.reason is None
    assert all(p.extracted is True and p.output == p.raw_output.strip() for p in item.predictions)


def test_without_an_extractor_nothing_extra_is_kept(causal, tmp_path):
    item = run_item(causal, load_suite(str(tiny_models.write_suite(tmp_path / "plain", "generation"))))
    assert all(p.extracted is None and p.raw_output is None for p in item.predictions)
