"""The memory budget is the process's (issue 16): what it already holds is taken off before batches are sized."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from harness.predict.memory import ModelShape, held_bytes, model_shape, row_bytes, rows_per_batch

SHAPE = ModelShape(layers=30, hidden=576, intermediate=1536, heads=9, kv_heads=3, head_dim=64, vocab=49152,
                   dtype_bytes=4, weight_bytes=540_000_000)
GIB = 1024**3


def test_what_the_process_holds_beyond_the_weights_comes_off_the_budget():
    row = row_bytes(SHAPE, 1000, 16, 9)
    budget = SHAPE.weight_bytes + 10 * row
    assert rows_per_batch(budget, SHAPE, 1000, 16, 9, 16) == 10
    held = dataclasses.replace(SHAPE, held_bytes=SHAPE.weight_bytes + 4 * row)  # e.g. a second copy, libraries
    assert rows_per_batch(budget, held, 1000, 16, 9, 16) == 6
    less = dataclasses.replace(SHAPE, held_bytes=SHAPE.weight_bytes // 2)  # weights not yet resident: weights count
    assert rows_per_batch(budget, less, 1000, 16, 9, 16) == 10


def test_held_bytes_is_the_resident_memory_and_grows_with_an_allocation():
    """64 MiB mapped but untouched are not held; once written they are. Other processes' memory pressure
    (the kernel reclaiming this process's cold pages between the two reads) can hide a growth, so the
    check gets three fresh blocks before it fails."""
    growths = []
    for _ in range(3):
        block = torch.empty(64 * 1024 * 1024 // 4)  # 64 MiB: mapped, not yet resident
        before = held_bytes("cpu")
        block.fill_(1.0)
        growths.append(held_bytes("cpu") - before)
        del block
        if growths[-1] >= 48 * 1024 * 1024:
            break
    assert before > 0 and growths[-1] >= 48 * 1024 * 1024, growths


def test_model_shape_with_a_device_reads_what_is_held(causal):
    assert model_shape(causal.model).held_bytes == 0
    assert model_shape(causal.model, "cpu").held_bytes >= model_shape(causal.model).weight_bytes


def test_prefill_chunks_bound_the_tokens_of_a_pass():
    from harness.predict.greedy import PREFILL_TOKENS, prefill_chunks

    lengths = [1000] * 16 + [100] * 3
    chunks = prefill_chunks(list(range(16)), lengths)
    assert [len(c) for c in chunks] == [PREFILL_TOKENS // 1000] * (16 // (PREFILL_TOKENS // 1000)) or \
        sum(len(c) for c in chunks) == 16
    assert all(len(c) * 1000 <= PREFILL_TOKENS for c in chunks) and sum(chunks, []) == list(range(16))
    assert prefill_chunks([16, 17, 18], lengths) == [[16, 17, 18]]
    assert prefill_chunks([0], [10 * PREFILL_TOKENS]) == [[0]]  # one row however long


def test_chunked_prefill_counts_one_chunk_of_activations():
    from harness.predict.memory import activation_bytes

    budget = 3 * 1024**3
    plain = rows_per_batch(budget, SHAPE, 1000, 16, 9, 64)
    chunked = rows_per_batch(budget, SHAPE, 1000, 16, 9, 64, prefill_rows=4)
    assert chunked > plain
    act = activation_bytes(SHAPE, 1000)
    kept = row_bytes(SHAPE, 1000, 16, 9) - act
    free = budget - SHAPE.weight_bytes
    assert chunked * kept + 4 * act <= free < (chunked + 1) * kept + 4 * act
    assert rows_per_batch(budget, SHAPE, 1000, 16, 9, 64, prefill_rows=64) == plain  # one chunk: as before


@pytest.mark.parametrize("speculate", [True, False])
def test_tiny_prefill_chunks_decode_the_same_text(causal, monkeypatch, speculate):
    from harness.predict import generate, generate_plain, greedy

    prompts = ["the cat sat on the mat. the cat", "Review: bad\nAnswer:", "a b c d e f a b c", "hi"]
    monkeypatch.setattr(greedy, "PREFILL_TOKENS", 8)  # a row or two a pass
    calls = []
    original = greedy._prefill_rows
    monkeypatch.setattr(greedy, "_prefill_rows", lambda *a: calls.append(a[1].shape) or original(*a))
    fast = generate(causal.model, causal.tokenizer, prompts, 10, [], "cpu", speculate=speculate)
    assert len(calls) >= 3 and all(s[0] == 1 or s[0] * s[1] <= 8 for s in calls)
    assert fast == generate_plain(causal.model, causal.tokenizer, prompts, 10, [], "cpu")
