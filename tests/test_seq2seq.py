"""Encoder-decoder candidates (issue 12, problem 10): a tiny T5 built in-process, detected and loaded as
seq2seq, scored by the decoder's log-likelihood, decoded greedily, LoRA-trained, and run end to end."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from tiny_models import HIDDEN, LAYERS, build_tokenizer, write_suite

from harness import models
from harness.config import LoraConfig
from harness.errors import HarnessError
from harness.finetune import adapter_applied, train_lora
from harness.finetune.lora import AUTO_TARGETS, make_task
from harness.finetune.seq2seq import Seq2SeqTask
from harness.predict import Predictor, predict
from harness.runner import run_experiment
from harness.store import Store


def save_t5(folder: Path, seed: int = 0) -> Path:
    """A tiny T5ForConditionalGeneration (d_model 32, 2 layers) + the tiny tokenizer as a local folder."""
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = build_tokenizer()
    config = T5Config(vocab_size=len(tokenizer), d_model=HIDDEN, d_kv=8, d_ff=2 * HIDDEN, num_layers=LAYERS,
                      num_decoder_layers=LAYERS, num_heads=4, pad_token_id=tokenizer.pad_token_id,
                      eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id,
                      initializer_factor=8.0)
    torch.manual_seed(seed)
    model = T5ForConditionalGeneration(config).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory) -> Path:
    return save_t5(tmp_path_factory.mktemp("t5") / "t5")


@pytest.fixture(scope="module")
def t5(t5_dir):
    return models.load(str(t5_dir), device="cpu")


def test_t5_detected_and_loaded_as_seq2seq(t5, t5_dir, causal_dir):
    from transformers import BartConfig, T5ForConditionalGeneration

    assert t5.kind == "seq2seq" and isinstance(t5.model, T5ForConditionalGeneration)
    assert models.detect_kind(BartConfig(d_model=16, encoder_layers=1, decoder_layers=1)) == "seq2seq"
    assert models.check(str(t5_dir)).location == str(t5_dir.resolve())
    with pytest.raises(HarnessError, match="not an encoder-decoder"):
        models.check(str(causal_dir), kind="seq2seq")


def direct_score(model, tokenizer, prompt: str, label: str) -> float:
    """The decoder's summed log-probability of `label` + eos, from one unbatched forward's logits."""
    labels = torch.tensor([tokenizer(label.strip(), add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]])
    enc = tokenizer(prompt, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc, labels=labels).logits[0]
    logprobs = F.log_softmax(logits.float(), dim=-1)
    return sum(logprobs[k, t].item() for k, t in enumerate(labels[0].tolist()))


@pytest.mark.parametrize("kind", ["classification", "multiple_choice"])
def test_choice_scores_equal_each_label_scored_alone(t5, make_suite, kind):
    suite = make_suite(kind)
    examples = suite.examples("test")
    preds = predict(Predictor(t5.model, t5.tokenizer, "seq2seq", "cpu"), suite, examples, batch_size=3)
    assert len({len(ex.prompt) for ex in examples}) > 1  # prompts of different lengths share a padded batch
    for ex, pred in zip(examples, preds, strict=True):
        expected = [direct_score(t5.model, t5.tokenizer, ex.prompt, suite.continuation(c)) for c in ex.choices]
        assert pred.choice_scores == pytest.approx(expected, rel=1e-5)
        assert pred.output == ex.choices[max(range(len(expected)), key=expected.__getitem__)]


@pytest.mark.parametrize("stop", [None, ["u"]])
def test_generation_equals_greedy_generate(t5, make_suite, stop):
    """Batched (right-padded encoder inputs, rows stopping at their own stop) equals one greedy generate per
    prompt cut at the stop afterwards; with stop "u" some generations really are cut."""
    from harness.predict.predictor import cut_at_stop

    suite = make_suite("generation")
    gen = suite.config.generation
    if stop is not None:
        gen = suite.config.generation = gen.model_copy(update={"stop": stop})
    examples = suite.examples("test")
    preds = predict(Predictor(t5.model, t5.tokenizer, "seq2seq", "cpu"), suite, examples, batch_size=4)
    cut = 0
    for ex, pred in zip(examples, preds, strict=True):
        enc = t5.tokenizer(ex.prompt, return_tensors="pt")
        out = t5.model.generate(**enc, do_sample=False, num_beams=1, max_new_tokens=gen.max_new_tokens)
        text = t5.tokenizer.decode(out[0, 1:], skip_special_tokens=True)
        assert pred.output == cut_at_stop(text, gen.stop) and pred.error is None
        cut += len(pred.output) < len(text.strip())
    assert len({p.output for p in preds}) > 1  # the prompts reach the decoder: outputs differ
    assert (cut > 0) == (stop is not None)


def test_lora_step_trains_and_adapter_reloads_with_same_scores(t5, make_suite, tmp_path):
    suite = make_suite("classification")
    lora = LoraConfig(steps=3, batch_size=2, rank=4, learning_rate=0.05, max_length=64, eval_every=1)
    assert isinstance(make_task(t5, suite, lora), Seq2SeqTask)
    before = {k: v.clone() for k, v in t5.model.state_dict().items()}
    examples = suite.examples("test")
    base = predict(Predictor(t5.model, t5.tokenizer, "seq2seq", "cpu"), suite, examples, batch_size=4)
    record = train_lora(t5, suite, lora, seed=1, out_dir=tmp_path, run_id="r", candidate="t5")
    assert t5.model.state_dict().keys() == before.keys()  # the adapter came off the base again
    assert all(torch.equal(before[k], v) for k, v in t5.model.state_dict().items())  # the base is untouched
    assert record.steps == 3 and record.trainable_params < record.total_params
    with adapter_applied(t5, suite, Path(record.adapter_path), record.adapter_hash) as predictor:
        assert predictor is not None and predictor.kind == "seq2seq"
        lora_weights = {n: p for n, p in predictor.model.named_parameters() if "lora_B" in n}
        assert {n.split(".lora_B")[0].rsplit(".", 1)[1] for n in lora_weights} == set(AUTO_TARGETS["t5"])
        assert any(float(p.detach().abs().sum()) > 0 for p in lora_weights.values())  # lora_B starts at zero
        trained = predict(predictor, suite, examples, batch_size=4)
    assert [p.choice_scores for p in trained] != [p.choice_scores for p in base]
    again = predict(Predictor(t5.model, t5.tokenizer, "seq2seq", "cpu"), suite, examples, batch_size=4)
    assert [p.choice_scores for p in again] == [p.choice_scores for p in base]  # the base again after the block


def test_bart_lora_targets_attention_modules(tmp_path):
    from transformers import BartConfig, BartForConditionalGeneration

    tokenizer = build_tokenizer()
    config = BartConfig(vocab_size=len(tokenizer), d_model=16, encoder_layers=1, decoder_layers=1,
                        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=32,
                        decoder_ffn_dim=32, max_position_embeddings=64)
    base = SimpleNamespace(model=BartForConditionalGeneration(config), tokenizer=tokenizer, device="cpu")
    with Seq2SeqTask(base, None, LoraConfig(rank=2)).adapted(AUTO_TARGETS["bart"]) as model:
        wrapped = {n.split(".lora_A")[0].rsplit(".", 1)[1] for n, _ in model.named_parameters() if "lora_A" in n}
    assert wrapped == {"q_proj", "k_proj", "v_proj", "out_proj"}
    assert not any("lora_" in n for n, _ in base.model.named_parameters())  # taken off after the block


def test_run_experiment_with_t5_candidate(tmp_path, t5_dir, monkeypatch):
    monkeypatch.setattr("harness.runner.gc", SimpleNamespace(collect=lambda: 0))
    refs = [str(write_suite(tmp_path / k, k).relative_to(tmp_path)) for k in ("classification", "generation")]
    path = tmp_path / "experiment.yaml"
    path.write_text("\n".join([
        "name: t5run", "seed: 1", "device: cpu", "candidates:", f"  - {{name: t5, model: '{t5_dir}'}}",
        "variants: [base, lora]",
        "lora: {steps: 2, batch_size: 2, eval_every: 1, max_length: 64, max_eval_examples: 2, rank: 4}",
        f"suites: [{', '.join(refs)}]", "evaluation: {batch_size: 4, bootstrap_resamples: 50}",
    ]) + "\n")
    store = Store(tmp_path / "run.duckdb")
    run_id, status = run_experiment(path, store)
    assert status == "finished"
    items = store.table("items", [run_id])
    assert {(r.variant, r.suite) for r in items.itertuples()} == {
        (v, s) for v in ("base", "lora") for s in ("tiny_cls", "tiny_gen")}
    assert set(items["status"]) == {"done"} and set(items["n_failed"]) == {0} and set(items["n_examples"]) == {4}
    predictions = store.table("predictions", [run_id])
    assert len(predictions) == 16 and predictions["error"].isna().all()


def test_lm_eval_tasks_are_not_applicable_to_seq2seq(tmp_path, t5_dir, monkeypatch):
    """lm-eval runs causal LMs only: a T5 candidate's lm-eval items say so; its native suite still runs."""
    from test_lmeval import run_with_lmeval

    status, items, _ = run_with_lmeval(tmp_path, str(t5_dir), "[base, lora]", monkeypatch)
    assert status == "finished"
    assert (items.status == "not_applicable").all() and len(items) == 2
    assert items.reason.str.contains("causal LMs only").all() and items.reason.str.contains("encoder-decoder").all()
