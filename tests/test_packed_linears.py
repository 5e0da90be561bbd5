"""The linear layers through oneDNN with packed weights while predicting: logits within float32 rounding,
the same argmax and generations, no second copy of a weight, and the model exactly as it was afterwards."""

from __future__ import annotations

import pytest
import torch
from predict_helper import generations, padded_batch

from harness.predict import linears as linears_module
from harness.predict.linears import packed_linears


def layer_linears(model) -> list[torch.nn.Linear]:
    """The plain linear layers, but a head tied to the input embeddings (its weight is theirs)."""
    tied = model.get_input_embeddings().weight
    return [m for m in model.modules() if type(m) is torch.nn.Linear and m.weight is not tied]


def state(model) -> list:
    return [(n, id(p), p.untyped_storage().nbytes(), p.detach().clone(), p.requires_grad)
            for n, p in model.named_parameters()]


def assert_restored(model, before: list) -> None:
    after = state(model)
    assert [a[:3] + a[4:] for a in after] == [b[:3] + b[4:] for b in before]
    assert all(torch.equal(a[3], b[3]) for a, b in zip(after, before, strict=True))
    assert not any("forward" in vars(m) for m in model.modules())


@torch.no_grad()
def test_logits_within_rounding_the_same_argmax_and_no_second_copy(causal, packed_calls):
    model, enc = causal.model, padded_batch(causal)
    dense = model(**enc).logits
    layers = layer_linears(model)
    with packed_linears(model) as n:
        assert n == len(layers) > 0
        for layer in layers:  # the dense weight is gone: one NaN broadcast to its shape holds its place
            assert layer.weight.untyped_storage().nbytes() == 4 and torch.isnan(layer.weight).all()
        ours = model(**enc).logits
    assert packed_calls["n"] == len(layers)
    assert torch.allclose(ours, dense, rtol=1e-5, atol=1e-5)
    assert torch.equal(ours.argmax(-1), dense.argmax(-1))


def test_the_model_is_as_it_was_after_the_block_after_an_error_and_under_inference_mode(causal):
    model = causal.model
    before = state(model)
    with packed_linears(model):
        pass
    assert_restored(model, before)
    with pytest.raises(RuntimeError, match="inside"), packed_linears(model):
        raise RuntimeError("inside")
    assert_restored(model, before)
    with torch.inference_mode(), packed_linears(model):
        pass
    assert_restored(model, before)
    assert not any(p.is_inference() for p in model.parameters())  # still trainable
    ids = causal.tokenizer(["the cat"], return_tensors="pt")["input_ids"]
    model(input_ids=ids).logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.zero_grad(set_to_none=True)


def test_a_nested_block_packs_nothing_and_leaves_the_outer_one_packed(causal):
    model = causal.model
    before = state(model)
    with packed_linears(model) as outer:
        with packed_linears(model) as inner:
            assert outer > 0 and inner == 0
        assert all("forward" in vars(m) for m in layer_linears(model))
    assert_restored(model, before)


def test_calls_with_gradients_inside_the_block_raise(causal):
    ids = causal.tokenizer(["the cat"], return_tensors="pt")["input_ids"]
    with packed_linears(causal.model), pytest.raises(RuntimeError, match="gradients"):
        causal.model(input_ids=ids)


class Reader(torch.nn.Module):
    """A parent whose forward reads one child's weight, beside a child that is only called."""

    def __init__(self) -> None:
        super().__init__()
        self.read = torch.nn.Linear(4, 4)
        self.called = torch.nn.Linear(4, 4)

    def forward(self, x):
        return x @ self.read.weight.T + self.called(x)


class Tied(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.half = torch.nn.Linear(4, 4), torch.nn.Linear(4, 4), torch.nn.Linear(4, 4).half()
        self.b.weight = self.a.weight
        self.replaced = torch.nn.Linear(4, 4)
        self.replaced.forward = self.replaced.forward  # as accelerate's hooks do


def test_only_what_is_safe_to_pack_is_packed():
    reader = Reader()
    assert linears_module._packable(reader) == [reader.called]
    x = torch.randn(3, 4)
    with torch.no_grad():
        dense = reader(x)
        with packed_linears(reader) as n:
            assert n == 1
            ours = reader(x)
    assert torch.allclose(ours, dense, rtol=1e-5, atol=1e-6)
    assert linears_module._packable(Tied()) == []


def test_lora_layers_pack_their_base_and_adapters_but_not_merged_ones(causal_dir):
    from peft import LoraConfig, get_peft_model

    from harness import models

    loaded = models.load(str(causal_dir), device="cpu")  # its own: peft freezes the base's parameters
    model = get_peft_model(loaded.model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    try:
        ids = loaded.tokenizer(["the cat sat"], return_tensors="pt")["input_ids"]
        wrapped = [m for m in model.modules() if hasattr(m, "base_layer")]
        with torch.no_grad():
            dense = model(input_ids=ids).logits
            with packed_linears(model) as n:
                packed = {id(m) for m in model.modules() if "forward" in vars(m)}
                ours = model(input_ids=ids).logits
            assert all(id(m.base_layer) in packed for m in wrapped) and n == len(packed)
            assert torch.allclose(ours, dense, rtol=1e-5, atol=1e-5)
            wrapped[0].merged_adapters.append("default")  # as merge() leaves it
            assert id(wrapped[0].base_layer) not in {id(m) for m in linears_module._packable(model)}
            wrapped[0].merged_adapters.clear()
    finally:
        model.unload()


def test_predict_uses_it_and_gives_what_the_dense_layers_give(causal, make_suite, packed_calls, monkeypatch):
    suite = make_suite("generation")
    before = state(causal.model)
    packed = generations(causal, suite)
    assert packed_calls["n"] > 0
    assert_restored(causal.model, before)
    monkeypatch.setattr(linears_module, "_packable", lambda model: [])
    dense = generations(causal, suite)
    assert packed == dense


GROWTH = """
import os, sys
if sys.argv[1] != "default":
    os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = os.environ["LRU_CACHE_CAPACITY"] = sys.argv[1]
import torch
from harness.predict.linears import onednn_linear
from harness.predict.allocator import release_freed_memory
from harness.predict.memory import held_bytes
torch.set_num_threads(1)
weights = [torch.randn(1536, 576).to_mkldnn(), torch.randn(576, 1536).to_mkldnn()]
release_freed_memory()
before = held_bytes("cpu")
for rows in range(1, 400):
    for weight in weights:
        onednn_linear(torch.randn(rows, weight.shape[1]), weight, None)
release_freed_memory()
print((held_bytes("cpu") - before) / 2**20)
"""


def test_calls_of_many_shapes_keep_the_caches_bounded():
    """800 calls of 798 shapes (as prefill passes have): oneDNN's caches as this module bounds them, against
    the library's default of 1,024 entries each."""
    import subprocess
    import sys

    def growth(capacity: str) -> float:
        out = subprocess.run([sys.executable, "-c", GROWTH, capacity], capture_output=True, text=True, check=True)
        return float(out.stdout.strip())

    bounded, unbounded = growth("default"), growth("1024")
    assert bounded < 100 and unbounded > bounded + 100, (bounded, unbounded)
