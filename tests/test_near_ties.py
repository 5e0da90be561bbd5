"""Near ties (issue 16): rows whose emitted token had its top two logits within the tie margin are counted,
for speculative and plain greedy decoding and for encoder-decoders, land in ItemResult.n_near_ties and the
store, and show under `harness show`'s table."""

from __future__ import annotations

import sys

import pandas as pd
import pytest
import torch

from harness.predict import DecodingStats, Predictor, generate, greedy, seq2seq, speculative

PROMPTS = ["English: The woman waits in the garden.\nGerman:", "Review: fine\nAnswer:",
           "Question: What is the opposite of 'happy'?\nAnswer:", "English: The dog sleeps.\nGerman:"]
MAX_NEW = 8


def smallest_gaps(model, tokenizer, prompts: list[str], new_tokens: list[list[int]]) -> list[float]:
    """Per row, alone and unpadded: the smallest top-two logit gap over the positions that chose its tokens."""
    gaps = []
    for prompt, new in zip(prompts, new_tokens, strict=True):
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        logits = model(input_ids=torch.tensor([ids + new[:-1]])).logits[0, len(ids) - 1:].float()
        top = torch.topk(logits, 2, dim=-1).values
        gaps.append(float((top[:, 0] - top[:, 1]).min()))
    return gaps


def margin_between(gaps: list[float]) -> float:
    """A margin between the two consecutive gaps furthest apart (by ratio), so that the float noise of
    another kernel shape cannot move a row across it, flagging some rows but not all."""
    ordered = sorted(set(gaps))
    assert len(ordered) >= 2
    low, high = max(zip(ordered, ordered[1:], strict=False), key=lambda pair: pair[1] / max(pair[0], 1e-12))
    return (low * high) ** 0.5


def use_margin(monkeypatch, margin: float) -> None:
    for module in (greedy, speculative, seq2seq):
        monkeypatch.setattr(module, "tie_margin", lambda dtype: margin)


@pytest.mark.parametrize("speculate", [True, False])
def test_the_rows_flagged_are_those_with_a_gap_under_the_margin(causal, monkeypatch, speculate):
    tok = causal.tokenizer
    tok.padding_side = "left"  # as generate pads
    enc = tok(PROMPTS, return_tensors="pt", padding=True, add_special_tokens=False)
    with torch.no_grad():
        new = greedy.greedy_new_tokens(causal.model, tok, enc["input_ids"], enc["attention_mask"], MAX_NEW, [])
        gaps = smallest_gaps(causal.model, tok, PROMPTS, new)
    margin = margin_between(gaps)
    use_margin(monkeypatch, margin)
    stats = DecodingStats()
    generate(causal.model, tok, PROMPTS, MAX_NEW, [], "cpu", stats, speculate=speculate)
    expected = [p for p, g in zip(PROMPTS, gaps, strict=True) if g < margin]
    assert 0 < len(expected) < len(PROMPTS)
    assert sorted(stats.near_tie_inputs) == sorted(expected) and stats.near_tie_rows == len(expected)


def test_seq2seq_rows_flagged_by_the_same_rule(monkeypatch, tmp_path):
    from test_seq2seq import save_t5

    from harness import models

    t5 = models.load(str(save_t5(tmp_path / "t5")), device="cpu")
    stats = DecodingStats()
    new = seq2seq.generate_seq2seq(t5.model, t5.tokenizer, PROMPTS, MAX_NEW, [], "cpu", stats)
    gaps = []
    with torch.no_grad():
        for prompt, row in zip(PROMPTS, new, strict=True):
            enc = t5.tokenizer([prompt], return_tensors="pt")
            start = t5.model.config.decoder_start_token_id
            logits = t5.model(**enc, decoder_input_ids=torch.tensor([[start, *row[:-1]]])).logits[0].float()
            top = torch.topk(logits, 2, dim=-1).values
            gaps.append(float((top[:, 0] - top[:, 1]).min()))
    margin = margin_between(gaps)
    use_margin(monkeypatch, margin)
    stats = DecodingStats()
    assert seq2seq.generate_seq2seq(t5.model, t5.tokenizer, PROMPTS, MAX_NEW, [], "cpu", stats) == new
    expected = [p for p, g in zip(PROMPTS, gaps, strict=True) if g < margin]
    assert 0 < len(expected) < len(PROMPTS) and sorted(stats.near_tie_inputs) == sorted(expected)


def test_the_count_lands_in_the_item_the_store_and_harness_show(causal, make_suite, monkeypatch, capsys):
    from harness.cli import main
    from harness.config import EvaluationConfig
    from harness.evaluation import evaluate_item
    from harness.records import RunRecord
    from harness.store import Store

    use_margin(monkeypatch, float("inf"))  # every generation has a "near tie"
    suite = make_suite("generation", "ties")
    predictor = Predictor(causal.model, causal.tokenizer, "causal", "cpu")
    key = {"run_id": "run-ties", "candidate": "tiny", "variant": "base", "suite": suite.name}
    item = evaluate_item(predictor, suite, EvaluationConfig(bootstrap_resamples=10), 0, key)
    n = len(suite.examples())
    assert item.n_near_ties == n and item.n_truncated == 0
    store = Store()
    store.start_run(RunRecord("run-ties", "ties", "x.yaml", "{}", "h", 0, None, None, "{}", "test"))
    store.write_item(item)
    assert int(store.query("SELECT n_near_ties FROM items").iloc[0]["n_near_ties"]) == n
    monkeypatch.setattr(sys, "argv", ["harness", "show", "run-ties"])
    try:
        main()
    except SystemExit as exc:
        assert not exc.code
    out = capsys.readouterr().out
    assert f"tiny/base/ties: {n} of {n} generations with a near tie" in out


def test_item_notes_lists_each_nonzero_count():
    from harness.tables import item_notes, render_notes

    items = pd.DataFrame([
        {"candidate": "a", "variant": "base", "suite": "s", "n_examples": 40, "n_truncated": 3, "n_near_ties": 0,
         "n_extract_missed": None},
        {"candidate": "a", "variant": "lora", "suite": "s", "n_examples": 40, "n_truncated": 0, "n_near_ties": 2,
         "n_extract_missed": 5},
        {"candidate": "b", "variant": "base", "suite": "s", "n_examples": 40, "n_truncated": 0, "n_near_ties": 0,
         "n_extract_missed": 0},
    ])
    lines = item_notes(items)
    assert [line.split(" (")[0] for line in lines] == [
        "a/base/s: 3 of 40 inputs cut to the suite's truncate length",
        "a/lora/s: 2 of 40 generations with a near tie",
        "a/lora/s: 5 of 40 generations the extract pattern missed"]
    assert render_notes(items).startswith("notes:\n  a/base/s: 3 of 40") and render_notes(items.iloc[2:]) == ""
