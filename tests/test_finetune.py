"""LoRA fine-tuning of the tiny causal LM and the tiny encoder, adapters saved, hashed and reloaded."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.config import LoraConfig
from harness.finetune import adapter_applied, adapter_intact, train_lora
from harness.finetune.causal_data import IGNORE, causal_rows, length_batches
from harness.models import hash_files
from harness.predict import Predictor, encode_pair, predict

LORA = LoraConfig(rank=4, alpha=8, dropout=0.0, learning_rate=0.05, steps=3, batch_size=2, eval_every=2,
                  max_length=64, max_eval_examples=3, warmup_ratio=0.0)


def train(base, suite, tmp_path: Path, lora: LoraConfig = LORA, calls: list | None = None):
    progress = (lambda step, total, loss: calls.append((step, total, loss))) if calls is not None else None
    return train_lora(base, suite, lora, seed=0, out_dir=tmp_path / "out", run_id="run-1", candidate="tiny",
                      progress=progress)


def lora_b_norm(model) -> float:
    """peft initialises every lora_B to zero: a nonzero norm means training moved the adapter."""
    return sum(float(p.detach().abs().sum()) for n, p in model.named_parameters() if "lora_B" in n)


def check_training_record(result, lora: LoraConfig, tmp_path: Path) -> None:
    assert 0 < result.trainable_params < result.total_params
    assert result.steps == lora.steps and (result.run_id, result.candidate) == ("run-1", "tiny")
    train_steps = [e["step"] for e in result.log if e["split"] == "train"]
    val_steps = [e["step"] for e in result.log if e["split"] == "validation"]
    assert train_steps == list(range(1, lora.steps + 1))  # the loss of every step
    assert val_steps == [2, 3]  # every eval_every steps, and at the end
    assert result.final_val_loss == [e["loss"] for e in result.log if e["split"] == "validation"][-1]
    adapter = Path(result.adapter_path)
    assert adapter == tmp_path / "out" / "adapter" and (adapter / "adapter_config.json").is_file()
    assert result.adapter_hash == hash_files(sorted(p for p in adapter.rglob("*") if p.is_file()))
    assert result.train_tokens > 0 and result.tokens_per_s > 0 and result.wall_s > 0


def scores(predictor, suite) -> list[list[float]]:
    return [p.choice_scores for p in predict(predictor, suite, suite.examples(), batch_size=4)]


def test_causal_lora(causal, make_suite, tmp_path):
    suite = make_suite("multiple_choice")
    base = Predictor(causal.model, causal.tokenizer, "causal", "cpu")
    before = scores(base, suite)
    calls: list = []
    result = train(causal, suite, tmp_path, calls=calls)
    check_training_record(result, LORA, tmp_path)
    assert [c[:2] for c in calls] == [(1, 3), (2, 3), (3, 3)]
    # the adapter trained on the base itself came off again: the base predicts as before
    assert scores(base, suite) == before

    with adapter_applied(causal, suite, Path(result.adapter_path), result.adapter_hash) as tuned:
        assert tuned is not None and tuned.kind == "causal" and lora_b_norm(tuned.model) > 0
        first = scores(tuned, suite)
    assert all(abs(a - b) > 1e-4 for ra, rb in zip(first, before, strict=True) for a, b in zip(ra, rb, strict=True))
    assert scores(base, suite) == before
    with adapter_applied(causal, suite, Path(result.adapter_path), result.adapter_hash) as again:
        assert scores(again, suite) == first  # applied a second time: the same adapter


def test_changed_or_missing_adapter_is_not_reused(causal, make_suite, tmp_path):
    suite = make_suite("classification")
    result = train(causal, suite, tmp_path, LORA.model_copy(update={"steps": 1, "eval_every": 1}))
    copy = shutil.copytree(result.adapter_path, tmp_path / "copy")
    assert adapter_intact(copy, result.adapter_hash)
    with adapter_applied(causal, suite, copy, result.adapter_hash) as predictor:
        assert predictor is not None
    weights = next(copy.glob("*.safetensors"))
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert not adapter_intact(copy, result.adapter_hash)
    with adapter_applied(causal, suite, copy, result.adapter_hash) as predictor:
        assert predictor is None
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not adapter_intact(empty, result.adapter_hash)


def test_steps_from_epochs(causal, make_suite, tmp_path):
    suite = make_suite("generation")
    lora = LORA.model_copy(update={"steps": None, "epochs": 1.0, "batch_size": 4})
    result = train(causal, suite, tmp_path, lora)
    assert result.steps == 2  # ceil(1 epoch * 6 train rows / batch 4)
    assert [e["step"] for e in result.log if e["split"] == "validation"] == [2]


@pytest.mark.parametrize("kind", ["classification", "generation"])
def test_causal_rows_put_the_loss_on_the_completion_only(causal, make_suite, kind):
    suite = make_suite(kind)
    tok = causal.tokenizer
    examples = suite.examples("train")
    rows = causal_rows(suite, tok, examples, max_length=256)
    for ex, row in zip(examples, rows, strict=True):
        ctx, _ = encode_pair(tok, ex.prompt, " " + ex.target)
        assert row.input_ids[: len(ctx)] == ctx
        assert row.labels[: len(ctx)] == [IGNORE] * len(ctx)
        assert row.labels[len(ctx):] == row.input_ids[len(ctx):] and IGNORE not in row.labels[len(ctx):]
        completion = tok.decode(row.input_ids[len(ctx):], skip_special_tokens=True)
        assert completion == " " + ex.target
        assert (row.input_ids[-1] == tok.eos_token_id) == (kind == "generation")


def test_causal_rows_cut_long_prompts_from_the_left(causal, make_suite):
    suite = make_suite("generation")
    tok = causal.tokenizer
    ex = suite.examples("train", limit=1)[0]
    full = causal_rows(suite, tok, [ex], max_length=256)[0]
    n_target = sum(1 for x in full.labels if x != IGNORE)
    width = n_target + 3
    assert len(full.input_ids) > width
    short = causal_rows(suite, tok, [ex], max_length=width)[0]
    assert short.input_ids == full.input_ids[-width:] and short.labels == full.labels[-width:]
    # a completion longer than the limit keeps its start (and one prompt token to predict it from)
    tiny = causal_rows(suite, tok, [ex], max_length=4)[0]
    assert tiny.labels[0] == IGNORE and tiny.input_ids[1:] == full.input_ids[-n_target:][:3]


def test_length_batches_cover_every_row_once():
    lengths = [5, 1, 9, 3, 7, 2, 8]
    batches = length_batches(lengths, 3, seed=1, group_by_length=True)
    assert sorted(i for b in batches for i in b) == list(range(7)) and max(len(b) for b in batches) == 3
    assert batches == length_batches(lengths, 3, seed=1, group_by_length=True)
    # grouped by length: within each batch the rows are sorted by length
    assert all([lengths[i] for i in b] == sorted(lengths[i] for i in b) for b in batches)


@pytest.mark.parametrize("kind", ["classification", "multiple_choice"])
def test_encoder_lora(encoder, make_suite, tmp_path, kind):
    suite = make_suite(kind)
    result = train(encoder, suite, tmp_path)
    check_training_record(result, LORA, tmp_path)
    base = Predictor(encoder.model, encoder.tokenizer, "encoder", "cpu")
    with adapter_applied(encoder, suite, Path(result.adapter_path), result.adapter_hash) as predictor:
        assert predictor.kind == "encoder" and predictor.head and lora_b_norm(predictor.model) > 0
        tuned = predict(predictor, suite, suite.examples(), batch_size=4)
    assert [p.choice_scores for p in tuned] != [p.choice_scores for p in predict(base, suite, suite.examples(), 4)]
    assert all(0 <= p.choice_index < len(p.choice_scores) for p in tuned)

    with adapter_applied(encoder, suite, Path(result.adapter_path), result.adapter_hash) as reloaded:
        assert reloaded is not None and reloaded.head
        again = predict(reloaded, suite, suite.examples(), batch_size=4)
    for a, b in zip(again, tuned, strict=True):
        assert a.choice_index == b.choice_index and a.choice_scores == pytest.approx(b.choice_scores, abs=1e-5)


def test_completion_loss_equals_the_models_full_loss():
    """Left padding + logits on the completion positions only gives the plain recipe's loss."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from harness.finetune.causal_data import CausalRow, collate_causal, completion_loss

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2)
    model = LlamaForCausalLM(config).eval()
    rows = [CausalRow([5, 6, 7, 8, 9], [-100, -100, -100, 8, 9]), CausalRow([3, 4, 10], [-100, 4, 10]),
            CausalRow([11, 12, 13, 14, 15, 16, 17], [-100] * 6 + [17])]
    ours = completion_loss(model, collate_causal(rows, pad_id=0))
    width = max(len(r.input_ids) for r in rows)
    ids = torch.zeros(3, width, dtype=torch.long)
    labels = torch.full((3, width), -100)
    mask = torch.zeros(3, width, dtype=torch.long)
    for i, row in enumerate(rows):  # the plain recipe: right padding, logits everywhere, the model's loss
        n = len(row.input_ids)
        ids[i, :n], labels[i, :n], mask[i, :n] = torch.tensor(row.input_ids), torch.tensor(row.labels), 1
    plain = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert abs(ours.item() - plain.item()) < 1e-5


def test_peak_memory_is_this_adapters_own(causal, make_suite, tmp_path):
    """Before, the record was the process's high-water mark so far: a tiny adapter trained after something big
    showed the big figure. Now the peak starts afresh for each adapter."""
    import resource

    import numpy as np

    big = np.ones(1_500 * 2**20 // 8)  # 1.5 GB touched, then freed
    del big
    high_water = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = train(causal, make_suite("multiple_choice"), tmp_path)
    assert 0 < result.peak_memory_mb < high_water - 1_000
