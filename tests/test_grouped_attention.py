"""Grouped-query attention without copying key/value heads: bit-identical, used where it applies, undone after."""

from __future__ import annotations

import pytest
import torch
from predict_helper import generations

from harness.predict import attention
from harness.predict.attention import grouped_attention, grouped_sdpa, switchable
from harness.predict.choices import cache_argument


def encode(tokenizer, prompts):
    tokenizer.padding_side = "left"
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    return enc["input_ids"], enc["attention_mask"]


PROMPTS = ["the cat sat on the mat", "a b", "hello there, how are you today", "ok"]


@pytest.fixture
def calls(monkeypatch):
    """Counts of grouped_sdpa calls: all of them, and those that read the heads in place."""
    counted = {"all": 0, "in_place": 0}
    original = attention._copies_heads

    def spy(*args):
        counted["all"] += 1
        in_place = original(*args)
        counted["in_place"] += in_place
        return in_place

    monkeypatch.setattr(attention, "_copies_heads", spy)
    return counted


def padded_then_drafts(model, ids, mask):
    """Logits of a left-padded prefill, then of a 3-token (speculative-width) pass and a 1-token pass on its cache."""
    cache = cache_argument(model)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    first = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
    drafts = torch.tensor([[5, 6, 7]] * ids.shape[0])
    mask3 = torch.cat([mask, torch.ones_like(drafts)], dim=-1)
    pos3 = positions[:, -1:] + torch.arange(1, 4)[None, :]
    second = model(input_ids=drafts, attention_mask=mask3, position_ids=pos3, use_cache=True,
                   **{cache: first.past_key_values})
    one = torch.tensor([[8]] * ids.shape[0])
    third = model(input_ids=one, attention_mask=torch.cat([mask3, torch.ones_like(one)], dim=-1),
                  position_ids=pos3[:, -1:] + 1, use_cache=True, **{cache: second.past_key_values})
    return first.logits, second.logits, third.logits


@torch.no_grad()
def test_logits_are_bit_identical_to_transformers_sdpa(causal, calls):
    model, tokenizer = causal.model, causal.tokenizer
    assert model.config.num_key_value_heads < model.config.num_attention_heads  # grouped-query attention
    ids, mask = encode(tokenizer, PROMPTS)
    plain = padded_then_drafts(model, ids, mask)
    assert calls["all"] == 0  # outside the block the model attends as before
    with grouped_attention(model) as switched:
        assert switched
        grouped = padded_then_drafts(model, ids, mask)
    layers = model.config.num_hidden_layers
    assert calls == {"all": 3 * layers, "in_place": 2 * layers}  # the 1-token pass goes to transformers' own
    for ours, theirs in zip(grouped, plain, strict=True):
        assert torch.equal(ours, theirs)


def test_the_model_is_switched_back_after_the_block_and_after_an_error(causal):
    model = causal.model
    with grouped_attention(model):
        assert model.config._attn_implementation == attention.NAME
    assert model.config._attn_implementation == "sdpa"
    with pytest.raises(RuntimeError), grouped_attention(model):
        raise RuntimeError("inside")
    assert model.config._attn_implementation == "sdpa"


def test_predict_attends_in_place_and_gives_what_plain_attention_gives(causal, make_suite, calls, monkeypatch):
    suite = make_suite("generation")
    grouped = generations(causal, suite)
    assert calls["in_place"] > 0
    assert causal.model.config._attn_implementation == "sdpa"
    monkeypatch.setattr(attention, "switchable", lambda model: False)
    plain = generations(causal, suite)
    assert grouped == plain


def test_other_models_are_left_alone(causal, monkeypatch):
    model = causal.model
    model.config._attn_implementation = "eager"
    try:
        assert not switchable(model)
        with grouped_attention(model) as switched:
            assert not switched and model.config._attn_implementation == "eager"
    finally:
        model.config._attn_implementation = "sdpa"
    assert switchable(model)
    # modelling code that names "sdpa" itself (falcon does) might branch on it: never switched
    monkeypatch.setattr(attention, "_dispatches_by_interface", lambda name: False)
    assert not switchable(model)


def test_modelling_code_is_read_for_its_dispatch():
    assert attention._dispatches_by_interface("transformers.models.llama.modeling_llama")
    import transformers.models.falcon.modeling_falcon  # noqa: F401  (compares the name to "sdpa")

    assert not attention._dispatches_by_interface("transformers.models.falcon.modeling_falcon")
    assert not attention._dispatches_by_interface("no.such.module")


@torch.no_grad()
def test_cases_transformers_handles_are_passed_to_it(causal):
    """One queried position, no mask, or no grouping: transformers' own function, unchanged."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    module = causal.model.model.layers[0].self_attn
    query, key = torch.randn(2, 4, 1, 8), torch.randn(2, 2, 5, 8)
    value, mask = torch.randn(2, 2, 5, 8), torch.ones(2, 1, 1, 5, dtype=torch.bool)
    ours, _ = grouped_sdpa(module, query, key, value, mask)
    theirs, _ = sdpa_attention_forward(module, query, key, value, mask)
    assert torch.equal(ours, theirs)
    query = torch.randn(2, 4, 3, 8)
    ours, _ = grouped_sdpa(module, query, key, value, None)
    theirs, _ = sdpa_attention_forward(module, query, key, value, None)
    assert torch.equal(ours, theirs)
    assert not attention._copies_heads(module, query, torch.ones(2, 1, 3, 5, dtype=torch.bool), {"softcap": 1.0})
    assert attention._copies_heads(module, query, torch.ones(2, 1, 3, 5, dtype=torch.bool), {})
