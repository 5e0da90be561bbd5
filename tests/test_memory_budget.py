"""The memory budget is the process's (issue 16): what it already holds is taken off before batches are sized."""

from __future__ import annotations

import dataclasses

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
    before = held_bytes("cpu")
    block = torch.ones(64 * 1024 * 1024 // 4)  # 64 MiB, touched
    after = held_bytes("cpu")
    assert before > 0 and after - before >= 48 * 1024 * 1024
    del block


def test_model_shape_with_a_device_reads_what_is_held(causal):
    assert model_shape(causal.model).held_bytes == 0
    assert model_shape(causal.model, "cpu").held_bytes >= model_shape(causal.model).weight_bytes
