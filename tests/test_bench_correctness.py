"""The optimised paths the benchmarks drive compute what the plain paths compute (tiny in-process models).

Benchmarks time things; these tests only check sameness: shared-context choice scoring against
scoring each context + continuation alone, grouped generation against one plain batch, packed
LoRA batches against padded ones, the bulk store write against row-by-row inserts.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import pytest
import torch

from harness.predict import encode_pair
from harness.predict.choices import length_groups, score_naive, score_with_shared_context

ROOT = Path(__file__).resolve().parents[1]
CONTEXTS = ["Question: Which animal barks?\nAnswer:", "Review: Great sound and a fair price.\nAnswer:",
            "Q: What is two plus three?\nA:", "The cat"]
CHOICES = [" dog", " a small brown dog that barks at night", " cat sits on the table", " five", " seven days",
           " the teacher drinks coffee in the garden"]


def _pairs(tokenizer, n_choices: int = 4):
    return [[encode_pair(tokenizer, ctx, CHOICES[(k + j) % len(CHOICES)]) for j in range(n_choices)]
            for k, ctx in enumerate(CONTEXTS)]


def _flat(rows):
    return [x for row in rows for x in row]


def _group_cost(groups, lengths, overhead):
    return sum(len(g) * max(lengths[i] for i in g) + overhead for g in groups)


def _best_cost(sorted_lengths, overhead):
    """Brute force over every way to cut the sorted lengths into contiguous groups."""
    n = len(sorted_lengths)
    best = None
    for mask in range(2 ** (n - 1)):
        cuts = [0] + [i + 1 for i in range(n - 1) if mask >> i & 1] + [n]
        cost = sum((b - a) * sorted_lengths[a] + overhead for a, b in zip(cuts, cuts[1:], strict=False))
        best = cost if best is None else min(best, cost)
    return best


@pytest.mark.parametrize("overhead", [0, 5, 32, 1000])
def test_length_groups_cover_every_row_once_at_the_least_cost(overhead):
    lengths = [1, 9, 3, 3, 12, 2, 7, 7, 1, 5]
    groups = length_groups(lengths, overhead)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))
    assert all(lengths[g[0]] == max(lengths[i] for i in g) for g in groups)
    assert _group_cost(groups, lengths, overhead) == _best_cost(sorted(lengths, reverse=True), overhead)
    if overhead == 0:  # free forwards: no padding at all, one group per distinct length
        assert len(groups) == len(set(lengths))
    if overhead == 1000:  # costly forwards: one padded group
        assert len(groups) == 1
    assert length_groups([4, 4, 4], overhead) == [[0, 1, 2]]


def test_shared_context_scores_equal_scoring_each_sequence_alone(causal):
    pairs = _pairs(causal.tokenizer)
    assert len({len(c) for choices in pairs for _, c in choices}) > 3  # several second-pass groups
    fast = score_with_shared_context(causal.model, pairs, causal.tokenizer.pad_token_id, "cpu")
    plain = score_naive(causal.model, pairs, "cpu")
    assert _flat(fast) == pytest.approx(_flat(plain), abs=1e-4)
    assert [max(range(4), key=r.__getitem__) for r in fast] == [max(range(4), key=r.__getitem__) for r in plain]


def test_shared_context_scoring_leaves_nothing_behind(causal):
    """Grouped second passes select rows of one cache; a second call must give the same numbers."""
    pairs = _pairs(causal.tokenizer, n_choices=3)
    first = score_with_shared_context(causal.model, pairs, causal.tokenizer.pad_token_id, "cpu")
    again = score_with_shared_context(causal.model, pairs, causal.tokenizer.pad_token_id, "cpu")
    assert first == again


def test_shared_context_scoring_through_a_lora_wrapper(causal):
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    wrapped = get_peft_model(copy.deepcopy(causal.model), LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                                      init_lora_weights=False)).eval()
    pairs = _pairs(causal.tokenizer, n_choices=2)
    fast = score_with_shared_context(wrapped, pairs, causal.tokenizer.pad_token_id, "cpu")
    assert _flat(fast) == pytest.approx(_flat(score_naive(wrapped, pairs, "cpu")), abs=1e-4)


PROMPTS = ["English: The woman waits in the garden.\nGerman:", "Review: Broken after one day.\nAnswer:",
           "The", "Question: How many days are in a week? Think of the calendar on the wall.\nAnswer:"]


@pytest.mark.parametrize("stop", [[], ["e"], ["\n", " the", "a"]])
def test_dropping_finished_rows_generates_what_generate_does(causal, stop):
    from harness.predict import generate, generate_plain

    lengths = [len(causal.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in PROMPTS]
    assert len(length_groups(lengths, 1.2)) > 1  # prefilled in several groups, merged into one cache
    fast = generate(causal.model, causal.tokenizer, PROMPTS, 12, stop, "cpu")
    plain = generate_plain(causal.model, causal.tokenizer, PROMPTS, 12, stop, "cpu")
    assert fast == plain
    if stop:  # rows really ended at different steps, so rows were dropped mid-batch
        assert len({len(t) for t in fast}) > 1


def test_rows_ending_on_an_end_of_sequence_token_leave_the_batch(causal):
    from harness.predict import generate, generate_plain

    tok = causal.tokenizer
    tok.padding_side = "left"
    enc = tok(PROMPTS, return_tensors="pt", padding=True, add_special_tokens=False)
    first = causal.model.generate(**enc, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
    model = copy.deepcopy(causal.model)
    model.generation_config.eos_token_id = int(first[0, -2])  # a token row 0 produces: an early end
    fast = generate(model, tok, PROMPTS, 8, [], "cpu")
    assert fast == generate_plain(model, tok, PROMPTS, 8, [], "cpu")
    assert len({len(t) for t in fast}) > 1


def test_dropped_rows_keep_their_tokens_up_to_the_end(causal):
    """Token level: each row's new tokens equal generate's, up to and including the token that ends it."""
    from harness.predict.greedy import greedy_new_tokens

    tok = causal.tokenizer
    tok.padding_side = "left"
    enc = tok(PROMPTS, return_tensors="pt", padding=True, add_special_tokens=False)
    new = greedy_new_tokens(causal.model, tok, enc["input_ids"], enc["attention_mask"], 10, ["e"])
    out = causal.model.generate(**enc, max_new_tokens=10, do_sample=False, pad_token_id=tok.pad_token_id,
                                stop_strings=["e"], tokenizer=tok)
    for row, tokens in zip(out[:, enc["input_ids"].shape[1]:].tolist(), new, strict=True):
        assert row[: len(tokens)] == tokens
        assert all(t == tok.pad_token_id for t in row[len(tokens):])


def test_a_logits_changing_generation_config_falls_back_to_generate(causal):
    from harness.predict.greedy import supports

    model = copy.deepcopy(causal.model)
    assert supports(model)
    model.generation_config.repetition_penalty = 1.3
    assert not supports(model)


def test_bulk_store_writes_read_back_like_row_by_row_inserts(tmp_path):
    """The store benchmark's two sides store the same rows (its check, on a small run)."""
    sys.path.insert(0, str(ROOT))
    from bench import store_scale

    items = store_scale.build_items(per_item=25)
    store_scale.bulk_write(tmp_path / "bulk.duckdb", items[:3])
    store_scale.row_by_row(tmp_path / "rows.duckdb", items[0], 25)
    assert store_scale.same_rows(tmp_path / "bulk.duckdb", tmp_path / "rows.duckdb", items[0], 25)
    store_scale.row_by_row(tmp_path / "other.duckdb", items[1], 25)
    assert not store_scale.same_rows(tmp_path / "bulk.duckdb", tmp_path / "other.duckdb", items[0], 25)
