"""A prompt prefix shared by every row is prefilled once and decodes to the same tokens as without it."""

from __future__ import annotations

import pytest
import torch

from harness.predict import generate, generate_plain, greedy, prefix, speculative
from harness.predict.greedy import greedy_new_tokens

INSTRUCTION = "Summarise the conversation in one sentence. Keep names and the plan.\n\n"
DIALOGUES = ["Anna: Hi\nBen: Hello", "Ann: lunch at noon?\nBob: yes, the usual place. see you",
             "Kim: the cat sat on the mat. the cat sat on the mat.\nLee: again?", "Jo: ok",
             "Max: train is late\nSue: how late\nMax: an hour, start without me"]
PROMPTS = [INSTRUCTION + d + "\n\nSummary:" for d in DIALOGUES]


def encode(tokenizer, prompts):
    tokenizer.padding_side = "left"
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    return enc["input_ids"], enc["attention_mask"]


@pytest.fixture
def counted(monkeypatch):
    """How often a shared prefix was found, and its lengths."""
    found: list[int] = []
    original = prefix.shared_prefix

    def spy(*args):
        shared = original(*args)
        if shared is not None:
            found.append(len(shared))
        return shared

    monkeypatch.setattr(prefix, "shared_prefix", spy)
    monkeypatch.setattr(greedy, "shared_prefix", spy, raising=False)
    monkeypatch.setattr(speculative, "shared_prefix", spy)
    return found


def without_prefix(monkeypatch):
    monkeypatch.setattr(prefix, "shared_prefix", lambda *args: None)
    monkeypatch.setattr(speculative, "shared_prefix", lambda *args: None)


def test_common_length_leaves_each_row_a_token():
    assert prefix.common_length([[1, 2, 3, 4], [1, 2, 3, 5], [1, 2, 9]]) == 2
    assert prefix.common_length([[1, 2, 3], [1, 2, 3, 4]]) == 2  # the shorter row keeps its last token
    assert prefix.common_length([[7, 8], [1, 2]]) == 0
    assert prefix.common_length([[5, 5, 5]]) == 2


@pytest.mark.parametrize("stop", [[], ["\n"], [".", "the"]])
def test_plain_greedy_with_a_shared_prefix_equals_transformers_generate(causal, counted, stop):
    fast = generate(causal.model, causal.tokenizer, PROMPTS, 16, stop, "cpu", speculate=False)
    assert counted and counted[0] >= prefix.MIN_TOKENS, "the instruction was not shared"
    assert fast == generate_plain(causal.model, causal.tokenizer, PROMPTS, 16, stop, "cpu")


@pytest.mark.parametrize("in_flight", [None, 2])
def test_speculation_with_a_shared_prefix_keeps_plain_greedy_tokens(causal, counted, monkeypatch, in_flight):
    ids, mask = encode(causal.tokenizer, PROMPTS)
    limit = None if in_flight is None else (lambda _longest: in_flight)
    fast = speculative.speculative_new_tokens(causal.model, causal.tokenizer, ids, mask, 20, [], overhead=1e9,
                                              in_flight=limit)
    assert counted == [counted[0]] and counted[0] >= prefix.MIN_TOKENS, "one prefix for the whole stream"
    without_prefix(monkeypatch)
    assert fast.tokens == greedy_new_tokens(causal.model, causal.tokenizer, ids, mask, 20, [])


def test_prefilled_logits_match_a_whole_prefill(causal):
    ids, mask = encode(causal.tokenizer, PROMPTS)
    real = [ids[r][mask[r].bool()].tolist() for r in range(len(PROMPTS))]
    shared = prefix.shared_prefix(causal.model, real, "cpu")
    assert shared is not None and len(shared) == prefix.common_length(real)
    order, logits, _, cache_mask = greedy.prefill(causal.model, ids, mask, shared)
    _, whole, _, _ = greedy.prefill(causal.model, ids, mask, None)
    plain_order, *_ = greedy.prefill(causal.model, ids, mask, None)
    assert order == plain_order
    assert torch.allclose(logits, whole, atol=1e-4)
    assert cache_mask.sum(-1).tolist() == mask[order].sum(-1).tolist(), "every real token once in the cache"


def test_a_row_that_is_the_prefix_plus_one_token(causal, counted):
    short = causal.tokenizer.decode(causal.tokenizer(PROMPTS[0], add_special_tokens=False)["input_ids"][:12])
    prompts = [short, *PROMPTS[:3]]
    fast = generate(causal.model, causal.tokenizer, prompts, 10, [], "cpu")
    assert counted and counted[0] <= 11
    assert fast == generate_plain(causal.model, causal.tokenizer, prompts, 10, [], "cpu")


def test_rows_without_a_common_prefix_prefill_whole(causal, counted):
    prompts = ["Anna: Hi", "the cat sat", "Review: bad\nAnswer:"]
    assert generate(causal.model, causal.tokenizer, prompts, 8, [], "cpu") == \
        generate_plain(causal.model, causal.tokenizer, prompts, 8, [], "cpu")
    assert counted == []
