"""Prompt-lookup speculative decoding gives plain greedy's tokens; memory-budget batch sizing."""

from __future__ import annotations

import pytest
import torch

from harness.predict import DecodingStats, generate, predict
from harness.predict import speculative as spec
from harness.predict.greedy import greedy_new_tokens
from harness.predict.memory import ModelShape, row_bytes, rows_per_batch

LOOPING = "the cat sat on the mat. the cat sat on the mat. the cat sat on the"  # the tiny model loops on it
PROMPTS = [LOOPING, "Review: bad\nAnswer:", "a b c d e f a b c d e f a b c",
           "English: The child plays at home.\nGerman:",
           "Summarise the conversation in one sentence.\n\nAnna: Hi\nBen: Hello\n\nSummary:"]
ALWAYS_DRAFT = 1e9  # a forward pass "costs" so much that every step verifies all the drafts it has


def encode(tokenizer, prompts):
    tokenizer.padding_side = "left"
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    return enc["input_ids"], enc["attention_mask"]


def both(causal, prompts, max_new, stop, draft_tokens=8):
    ids, mask = encode(causal.tokenizer, prompts)
    plain = greedy_new_tokens(causal.model, causal.tokenizer, ids, mask, max_new, stop)
    fast = spec.speculative_new_tokens(causal.model, causal.tokenizer, ids, mask, max_new, stop,
                                       draft_tokens=draft_tokens, overhead=ALWAYS_DRAFT)
    return plain, fast


def test_lookup_draft_follows_the_latest_match_of_the_longest_ngram():
    assert spec.lookup_draft([1, 2, 3, 9, 1, 2, 3, 7, 8, 1, 2, 3], 3, 2) == [7, 8]
    assert spec.lookup_draft([5, 1, 2, 6, 7, 4, 2], 3, 3) == [6, 7, 4]  # falls back to the 1-gram "2"
    assert spec.lookup_draft([1, 2, 3, 4], 2, 4) == []
    assert spec.lookup_draft([1, 2, 1, 2], 2, 0) == []
    assert spec.lookup_draft([4, 4, 4], 1, 5) == [4]  # what follows the match, never past the end


@pytest.mark.parametrize("rows", [[0], [0, 1], [1, 0, 3], [0, 1, 2, 3, 4], [2, 4]])
@pytest.mark.parametrize("draft_tokens", [1, 3, 8])
@pytest.mark.parametrize("stop", [[], ["e"], ["\n", "."]])
def test_same_tokens_as_plain_greedy(causal, rows, draft_tokens, stop):
    plain, fast = both(causal, [PROMPTS[r] for r in rows], 24, stop, draft_tokens)
    assert fast.tokens == plain
    assert all(0 < len(t) <= 24 for t in fast.tokens)
    if not stop and 0 in rows:
        assert fast.accepted > 0, "the looping prompt must get drafts accepted"


def test_drafts_cut_forward_passes(causal):
    plain, fast = both(causal, [LOOPING], 40, [])
    assert fast.tokens == plain and len(plain[0]) == 40
    assert fast.forward_passes < len(plain[0]) / 2, (fast.forward_passes, fast.accepted, fast.drafted)
    assert 0 < fast.accepted <= fast.drafted


@pytest.mark.parametrize("max_new", [1, 2, 7, 31])
def test_max_new_tokens_as_plain_greedy(causal, max_new):
    plain, fast = both(causal, PROMPTS, max_new, [])
    assert fast.tokens == plain and all(len(t) == max_new for t in fast.tokens)


def test_end_of_sequence_as_plain_greedy(causal, monkeypatch):
    _, free = both(causal, PROMPTS, 30, [])
    eos = free.tokens[0][6]  # a token inside the looping row's cycle, after drafts have been accepted
    monkeypatch.setattr(causal.model.generation_config, "eos_token_id", eos)
    plain, fast = both(causal, PROMPTS, 30, [])
    assert fast.tokens == plain
    assert fast.tokens[0] == free.tokens[0][: free.tokens[0].index(eos) + 1]
    assert all(len(t) == 30 or t[-1] == eos for t in fast.tokens)


def test_compaction_of_rejected_slots_keeps_the_tokens(causal, monkeypatch):
    calls = []
    original = spec.InPlaceLayer.gather

    def spy(self, index):
        calls.append(index.shape)
        original(self, index)

    monkeypatch.setattr(spec.InPlaceLayer, "gather", spy)
    plain, fast = both(causal, PROMPTS, 60, [])
    assert calls, "rejected drafts never grew to a third of the cache: compaction untested"
    assert fast.tokens == plain


MANY = PROMPTS + ["Question: 2 + 2 =", "the end", LOOPING[:30], "x y x y x y", "Review: good\nAnswer:",
                  "a b c a b c a b", "Translate: hello"]  # 12 prompts of mixed lengths


def streamed(causal, prompts, max_new, stop, in_flight, overhead=ALWAYS_DRAFT):
    ids, mask = encode(causal.tokenizer, prompts)
    done: list[int] = []
    fast = spec.speculative_new_tokens(causal.model, causal.tokenizer, ids, mask, max_new, stop,
                                       overhead=overhead, in_flight=lambda _longest: in_flight, row_done=done.append)
    return ids, mask, fast, done


@pytest.mark.parametrize("in_flight", [1, 2, 3, 5])
@pytest.mark.parametrize("stop", [[], ["e"], ["\n", "."]])
@pytest.mark.parametrize("max_new", [1, 9, 24])
def test_rows_joining_a_running_batch_decode_as_plain_greedy(causal, in_flight, stop, max_new):
    ids, mask, fast, done = streamed(causal, MANY, max_new, stop, in_flight)
    plain = greedy_new_tokens(causal.model, causal.tokenizer, ids, mask, max_new, stop)
    assert fast.tokens == plain
    assert sorted(done) == list(range(len(MANY))), "every row is reported done exactly once"


def test_end_of_sequence_while_rows_join(causal, monkeypatch):
    _, _, free, _ = streamed(causal, MANY, 30, [], 3)
    eos = free.tokens[0][6]
    monkeypatch.setattr(causal.model.generation_config, "eos_token_id", eos)
    ids, mask, fast, _ = streamed(causal, MANY, 30, [], 3)
    assert fast.tokens == greedy_new_tokens(causal.model, causal.tokenizer, ids, mask, 30, [])
    assert fast.tokens[0] == free.tokens[0][: free.tokens[0].index(eos) + 1]


def test_rows_join_as_places_free_up(causal, monkeypatch):
    """Never more rows decode at once than allowed, and rows join before the batch has run dry."""
    widths, admitted = [], []
    original_step, original_admit = spec._step, spec._Loop.admit

    def step(loop):
        widths.append(loop.live())
        original_step(loop)

    def admit(self, rows):
        admitted.append((self.live(), len(rows)))
        original_admit(self, rows)

    monkeypatch.setattr(spec, "_step", step)
    monkeypatch.setattr(spec._Loop, "admit", admit)
    _, _, fast, _ = streamed(causal, MANY, 24, ["."], 4)
    assert max(widths) <= 4 and len(admitted) > 3
    assert any(live > 0 for live, _ in admitted), "no row joined a running batch"


def test_joining_rows_with_a_longer_prompt_than_the_cache(causal):
    """A long prompt admitted after short ones (not the longest-first order) widens the running cache."""
    prompts = ["hi", "a b", LOOPING + " " + LOOPING, "Review: bad\nAnswer:"]
    ids, mask, fast, _ = streamed(causal, prompts, 16, [], 2)
    assert fast.tokens == greedy_new_tokens(causal.model, causal.tokenizer, ids, mask, 16, [])


def test_generate_text_equal_with_and_without_speculation(causal):
    stats = DecodingStats()
    fast = generate(causal.model, causal.tokenizer, PROMPTS, 20, ["\n\n"], "cpu", stats)
    slow = generate(causal.model, causal.tokenizer, PROMPTS, 20, ["\n\n"], "cpu", speculate=False)
    assert fast == slow
    assert stats.rows == len(PROMPTS) and stats.new_tokens >= 20 and stats.forward_passes >= 1


def test_near_ties_are_counted():
    decoded = spec.Decoded([[], []], tie_margin=1e-3)
    assert spec._argmax(decoded, 0, torch.tensor([0.1, 2.0, 2.0005])) == 2
    assert spec._argmax(decoded, 1, torch.tensor([0.1, 2.0, 3.0])) == 2
    assert decoded.near_tie_rows == [0]


SHAPE = ModelShape(layers=30, hidden=576, intermediate=1536, heads=9, kv_heads=3, head_dim=64, vocab=49152,
                   dtype_bytes=4, weight_bytes=540_000_000)


def test_row_bytes_by_hand():
    cache = 2 * 30 * 3 * 64 * int(1064 * 1.5) * 4
    activations = 1000 * (4 * 576 + 3 * 1536) * 4
    assert row_bytes(SHAPE, 1000, 64, 1) == cache + activations + 9 * 1000 * 1000 * 4 + 3 * 49152 * 4


@pytest.mark.parametrize("length", [16, 300, 1000, 4000])
def test_rows_per_batch_fits_the_budget(length):
    budget = 3 * 1024**3
    rows = rows_per_batch(budget, SHAPE, length, 64, 9, 64)
    assert 1 <= rows <= 64
    per_row = row_bytes(SHAPE, length, 64, 9)
    if rows < 64:
        assert SHAPE.weight_bytes + rows * per_row <= budget < SHAPE.weight_bytes + (rows + 1) * per_row
    assert rows_per_batch(budget, SHAPE, length * 2, 64, 9, 64) <= rows  # longer rows never get more


def test_rows_per_batch_limits():
    assert rows_per_batch(10**15, SHAPE, 1000, 64, 1, 16) == 16  # the configured batch size caps it
    assert rows_per_batch(SHAPE.weight_bytes, SHAPE, 1000, 64, 1, 16) == 1  # always one row


def test_predict_batches_shrink_under_a_small_budget(causal, make_suite):
    from harness.predict import Predictor

    suite = make_suite("generation")
    examples = suite.examples()
    predictor = Predictor(causal.model, causal.tokenizer, "causal", "cpu")
    roomy, tight = DecodingStats(), DecodingStats()
    wide = predict(predictor, suite, examples, 4, max_memory_gb=64, stats=roomy)
    weights_gb = sum(p.numel() * p.element_size() for p in causal.model.parameters()) / 1024**3
    narrow = predict(predictor, suite, examples, 4, max_memory_gb=weights_gb + 1e-6, stats=tight)
    assert max(roomy.batch_sizes) == min(4, len(examples)) and set(tight.batch_sizes) == {1}
    assert [p.output for p in narrow] == [p.output for p in wide]
