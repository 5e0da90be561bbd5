"""The output head through oneDNN while predicting: same argmax, logits within float32 rounding, put back after."""

from __future__ import annotations

import pytest
import torch
from predict_helper import generations

from harness.predict import head as head_module
from harness.predict.head import packed_head


@pytest.fixture
def packed_calls(monkeypatch):
    """How many head calls went through oneDNN."""
    counted = {"n": 0}
    original = torch._C._nn.mkldnn_linear

    def spy(*args):
        counted["n"] += 1
        return original(*args)

    monkeypatch.setattr(torch._C._nn, "mkldnn_linear", spy)
    return counted


@torch.no_grad()
def test_logits_within_rounding_and_the_same_argmax(causal, packed_calls):
    model, tokenizer = causal.model, causal.tokenizer
    tokenizer.padding_side = "left"
    enc = tokenizer(["the cat sat on the mat", "a b", "hello there"], return_tensors="pt", padding=True)
    dense = model(**enc).logits
    with packed_head(model) as packed:
        assert packed
        ours = model(**enc).logits
    assert packed_calls["n"] == 1
    assert ours.shape == dense.shape and ours.dtype == dense.dtype
    assert torch.allclose(ours, dense, rtol=1e-5, atol=1e-5)
    assert torch.equal(ours.argmax(-1), dense.argmax(-1))


def test_the_head_is_put_back_after_the_block_and_after_an_error(causal):
    head = causal.model.get_output_embeddings()
    weight = head.weight
    with packed_head(causal.model):
        assert "forward" in vars(head)
    assert "forward" not in vars(head) and head.weight is weight
    with pytest.raises(RuntimeError), packed_head(causal.model):
        raise RuntimeError("inside")
    assert "forward" not in vars(head)


def test_calls_with_gradients_run_the_dense_head(causal, packed_calls):
    enc = causal.tokenizer(["the cat"], return_tensors="pt")
    with packed_head(causal.model):
        logits = causal.model(**enc).logits
    assert packed_calls["n"] == 0 and logits.requires_grad


def test_heads_others_replaced_or_not_float32_are_left_alone(causal, monkeypatch):
    head = causal.model.get_output_embeddings()
    monkeypatch.setattr(head, "forward", head.forward)  # as accelerate's hooks do
    with packed_head(causal.model) as packed:
        assert not packed
    monkeypatch.delattr(head, "forward")
    half = torch.nn.Linear(8, 16).to(torch.bfloat16)
    monkeypatch.setattr(causal.model, "get_output_embeddings", lambda: half)
    assert head_module._plain_head(causal.model) is None


def test_predict_uses_it_and_gives_what_the_dense_head_gives(causal, make_suite, packed_calls, monkeypatch):
    suite = make_suite("generation")
    packed = generations(causal, suite)
    assert packed_calls["n"] > 0
    assert "forward" not in vars(causal.model.get_output_embeddings())
    monkeypatch.setattr(head_module, "_plain_head", lambda model: None)
    dense = generations(causal, suite)
    assert packed == dense
