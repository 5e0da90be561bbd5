"""LoRA adapters go on the base model itself and come off again (issue 16, bounded memory): training and a
loaded saved adapter leave the base bit-identical (the same parameter tensors, values, requires_grad, eval
mode, hooks and module tree), also when training or evaluation raises; the predictions equal those of the
old path that wrapped a deep copy of the base; a base item run after a lora item sees the pure base."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import pytest
import torch
from test_runner import write_experiment
from test_seq2seq import save_t5

from harness import models
from harness.config import LoraConfig
from harness.finetune import adapter_applied, train_lora
from harness.finetune.inplace import HOOK_DICTS, adapter_on
from harness.finetune.lora import CausalTask
from harness.predict import Predictor, predict
from harness.runner import run_experiment
from harness.store import Store

LORA = LoraConfig(rank=4, alpha=8, dropout=0.1, learning_rate=0.05, steps=3, batch_size=2, eval_every=2,
                  max_length=64, max_eval_examples=3, warmup_ratio=0.0)


@pytest.fixture(scope="module")
def t5(tmp_path_factory):
    return models.load(str(save_t5(tmp_path_factory.mktemp("t5") / "t5")), device="cpu")


def snapshot(model) -> dict:
    """Everything an adapter could leave behind on a model: each parameter's identity, storage size, value and
    requires_grad, each module's type, mode and hooks (by name, in order), the model's own attributes. (The
    storage's address is not compared: predicting packs linear weights for oneDNN and unpacks them into
    fresh storage of the same size, harness.predict.linears.)"""
    return {
        "parameters": [(n, id(p), p.untyped_storage().nbytes(), p.detach().clone(), p.requires_grad, p.grad)
                       for n, p in model.named_parameters()],
        "modules": [(n, type(m), m.training, sorted(k for h in HOOK_DICTS for k in getattr(m, h, {})))
                    for n, m in model.named_modules()],
        "attributes": sorted(vars(model)),
        "config": model.config.to_dict(),
    }


def assert_same(before: dict, after: dict) -> None:
    assert after["modules"] == before["modules"]
    assert after["attributes"] == before["attributes"] and after["config"] == before["config"]
    assert len(after["parameters"]) == len(before["parameters"])
    for (n, pid, size, value, grad, g), (n2, pid2, size2, value2, grad2, g2) in zip(
            before["parameters"], after["parameters"], strict=True):
        assert (n2, pid2, size2, grad2, g2) == (n, pid, size, grad, g)
        assert torch.equal(value2, value), n


def logits(loaded) -> torch.Tensor:
    ids = loaded.tokenizer("The woman waits in the garden.", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        if loaded.kind == "seq2seq":
            return loaded.model(input_ids=ids, decoder_input_ids=ids[:, :3]).logits
        return loaded.model(input_ids=ids).logits


def outputs(predictor, suite) -> list:
    return [(p.output, p.choice_scores) for p in predict(predictor, suite, suite.examples(), batch_size=4)]


def train(loaded, suite, tmp_path: Path, name: str = "out"):
    return train_lora(loaded, suite, LORA, seed=0, out_dir=tmp_path / name, run_id="run", candidate="tiny")


@pytest.mark.parametrize("model", ["causal", "t5"])
def test_training_and_a_loaded_adapter_leave_the_base_as_it_was(request, make_suite, tmp_path, model):
    loaded = request.getfixturevalue(model)
    suite = make_suite("multiple_choice")
    before, base_logits = snapshot(loaded.model), logits(loaded)
    result = train(loaded, suite, tmp_path)
    assert_same(before, snapshot(loaded.model))
    assert torch.equal(logits(loaded), base_logits)

    with adapter_applied(loaded, suite, Path(result.adapter_path), result.adapter_hash) as predictor:
        inner = predictor.model.get_base_model()
        assert inner is loaded.model  # on the base itself: no copy of it
        lora_layers = [n for n, _ in inner.named_modules() if n.endswith((".q_proj", ".q"))]
        assert lora_layers and all(hasattr(inner.get_submodule(n), "base_layer") for n in lora_layers)
        weights = {n.replace(".base_layer", ""): id(p) for n, p in inner.named_parameters() if "lora_" not in n}
        assert weights == {n: pid for n, pid, *_ in before["parameters"]}  # the same parameters, not copies
        assert not torch.equal(logits(loaded), base_logits)  # the adapter is active meanwhile
    assert_same(before, snapshot(loaded.model))
    assert torch.equal(logits(loaded), base_logits)


def test_an_error_inside_training_leaves_the_base_restored(causal, make_suite, tmp_path, monkeypatch):
    suite = make_suite("classification")
    before, base_logits = snapshot(causal.model), logits(causal)
    real, calls = CausalTask.loss, []

    def loss_then_fail(self, model, batch):
        calls.append(model.training)
        if len(calls) == 2:  # after one optimiser step, with the model in train mode
            raise RuntimeError("out of memory (simulated)")
        return real(self, model, batch)

    monkeypatch.setattr(CausalTask, "loss", loss_then_fail)
    with pytest.raises(RuntimeError, match="simulated"):
        train(causal, suite, tmp_path)
    assert calls == [True, True]
    assert_same(before, snapshot(causal.model))
    assert torch.equal(logits(causal), base_logits)


def test_an_error_while_an_adapter_is_applied_leaves_the_base_restored(causal, make_suite, tmp_path):
    suite = make_suite("generation")
    result = train(causal, suite, tmp_path)
    before, base_logits = snapshot(causal.model), logits(causal)
    with pytest.raises(KeyboardInterrupt):
        with adapter_applied(causal, suite, Path(result.adapter_path), result.adapter_hash) as predictor:
            predictor.model.train()
            raise KeyboardInterrupt
    assert_same(before, snapshot(causal.model))
    assert torch.equal(logits(causal), base_logits)


def test_an_adapter_that_fails_halfway_on_is_taken_off(causal):
    """An attach that injected layers (and marked the model) before it raised leaves nothing behind."""
    from peft import LoraConfig as PeftLora
    from peft import get_peft_model

    before = snapshot(causal.model)

    def attach_then_fail(model):
        get_peft_model(model, PeftLora(r=2, target_modules=["q_proj"])).base_model.model.enable_input_require_grads()
        raise ValueError("the adapter's weights do not fit (simulated)")

    with pytest.raises(ValueError, match="simulated"):
        with adapter_on(causal.model, attach_then_fail):
            pytest.fail("the block ran without an adapter")
    assert_same(before, snapshot(causal.model))


@pytest.mark.parametrize(("model", "kind"), [("causal", "multiple_choice"), ("causal", "generation"),
                                             ("t5", "classification"), ("t5", "generation")])
def test_predictions_and_training_equal_the_deep_copy_path(request, make_suite, tmp_path, model, kind):
    loaded = request.getfixturevalue(model)
    suite = make_suite(kind)
    result = train(loaded, suite, tmp_path)
    # training a deep copy of the base, as training did before: the same adapter, byte for byte
    on_a_copy = train(dataclasses.replace(loaded, model=copy.deepcopy(loaded.model)), suite, tmp_path, "copy")
    assert on_a_copy.adapter_hash == result.adapter_hash
    assert [(e['split'], e['loss']) for e in on_a_copy.log] == [(e['split'], e['loss']) for e in result.log]
    from peft import PeftModel

    old = PeftModel.from_pretrained(copy.deepcopy(loaded.model), result.adapter_path).eval()
    expected = outputs(Predictor(old, loaded.tokenizer, loaded.kind, "cpu"), suite)
    with adapter_applied(loaded, suite, Path(result.adapter_path), result.adapter_hash) as predictor:
        assert outputs(predictor, suite) == expected


def test_a_base_item_after_a_lora_item_sees_the_pure_base(tmp_path, causal_dir, monkeypatch):
    """lora before base on one suite, and a second suite's base after the first suite's lora: each base item's
    predictions equal a base-only run's, and the loaded base is as it was loaded when the run ends."""
    loaded: list = []
    real_load = models.load

    def load(*args, **kwargs):
        base = real_load(*args, **kwargs)
        loaded.append((base, snapshot(base.model)))
        return base

    monkeypatch.setattr(models, "load", load)
    both = write_experiment(tmp_path / "both", {"llama": causal_dir}, ["gen", "mc"], variants="[lora, base]")
    store = Store(tmp_path / "run.duckdb")
    run_id, status = run_experiment(both, store, artifacts=tmp_path / "artifacts")
    assert status == "finished" and len(loaded) == 1
    assert_same(loaded[0][1], snapshot(loaded[0][0].model))
    base_only = write_experiment(tmp_path / "base", {"llama": causal_dir}, ["gen", "mc"], variants="[base]")
    plain_id, status = run_experiment(base_only, store, artifacts=tmp_path / "artifacts", reuse=False)
    assert status == "finished"

    def predictions(rid: str, variant: str):
        rows = store.table("predictions", [rid])
        rows = rows[rows.variant == variant].sort_values(["suite", "example_id"])
        return rows[["suite", "example_id", "output", "choice_scores"]].astype(str).values.tolist()

    assert predictions(run_id, "base") == predictions(plain_id, "base")
    assert predictions(run_id, "lora") != predictions(run_id, "base")


def test_a_worker_keeps_the_pure_base_between_tasks(tmp_path, causal_dir):
    """The work units a Ray worker runs (one process, the candidate kept loaded): a lora evaluation's adapter
    is off the kept base when the next task starts."""
    from harness.config import load_experiment
    from harness.executors.local import WorkContext, evaluate_unit, load_candidate, train_unit
    from harness.suites import load_suite

    path = write_experiment(tmp_path, {"llama": causal_dir}, ["mc"])
    cfg = load_experiment(path)
    suite = load_suite(cfg.suites[0], base=path.parent)
    ctx = WorkContext(cfg, {suite.name: suite}, "worker-run")
    base, _ = load_candidate(ctx, "llama")
    before = snapshot(base.model)
    first = evaluate_unit(ctx, "llama", "base", suite.name).item
    trained = train_unit(ctx, "llama", suite.name)
    assert_same(before, snapshot(base.model))
    lora = evaluate_unit(ctx, "llama", "lora", suite.name, trained).item
    assert load_candidate(ctx, "llama")[0] is base
    assert_same(before, snapshot(base.model))
    again = evaluate_unit(ctx, "llama", "base", suite.name).item
    assert (first.status, lora.status, again.status) == ("done", "done", "done")
    assert [p.choice_scores for p in again.predictions] == [p.choice_scores for p in first.predictions]
    assert [p.choice_scores for p in lora.predictions] != [p.choice_scores for p in first.predictions]
