"""Shared fixtures: offline environment, a store per test, tiny models built once per session, and (from
tests/pg_server.py) a PostgreSQL server and stores of either back-end for the store test suite."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
# tiny models gain nothing from threads, and on a shared 2-core machine extra threads only contend
os.environ.setdefault("OMP_NUM_THREADS", "1")
# caches the harness writes (parsed GGUF configs) stay out of the user's home during tests
os.environ["HARNESS_CACHE_DIR"] = str(Path(__import__("tempfile").mkdtemp(prefix="harness-test-cache-")))

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `import tiny_models` from any test file

import tiny_models  # noqa: E402
from pg_server import (  # noqa: E402,F401  (fixtures: the PostgreSQL server, and stores of either back-end)
    any_store_fixture,
    new_store_address_fixture,
    pg_server_fixture,
    seeded_store_fixture,
    store_kind_fixture,
    team_address_fixture,
    team_stores_fixture,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True)
def _store_in_tmp(tmp_path, monkeypatch):
    """Every test's default store is a file in its own tmp_path, never ./harness.duckdb."""
    monkeypatch.setenv("HARNESS_DB", str(tmp_path / "harness.duckdb"))


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tiny_models")


@pytest.fixture(scope="session")
def causal_dir(tiny_dir) -> Path:
    """A local Hugging Face folder with a tiny LlamaForCausalLM and its tokenizer."""
    return tiny_models.save_causal(tiny_dir / "causal")


@pytest.fixture(scope="session")
def encoder_dir(tiny_dir) -> Path:
    """A local Hugging Face folder with a tiny BertModel and its tokenizer."""
    return tiny_models.save_encoder(tiny_dir / "encoder")


@pytest.fixture(scope="session")
def gguf_path(tiny_dir, causal_dir) -> Path:
    """The tiny llama written as a float32 GGUF file."""
    folder = tiny_dir / "gguf"
    folder.mkdir(exist_ok=True)
    return tiny_models.write_gguf(folder / "tiny.gguf", causal_dir)


@pytest.fixture(scope="session")
def causal(causal_dir):
    """The tiny causal model loaded through harness.models.load (shared: tests must not change it)."""
    from harness import models

    return models.load(str(causal_dir), device="cpu")


@pytest.fixture(scope="session")
def encoder(encoder_dir):
    """The tiny encoder loaded through harness.models.load (shared: tests must not change it)."""
    from harness import models

    return models.load(str(encoder_dir), device="cpu")


@pytest.fixture
def make_suite(tmp_path):
    """make_suite(kind, name=None, extra="") -> a loaded tiny Suite written under tmp_path."""
    from harness.suites import load_suite

    def make(kind: str, name: str | None = None, extra: str = ""):
        folder = tmp_path / "suites" / (name or kind)
        return load_suite(str(tiny_models.write_suite(folder, kind, name, extra)))

    return make


@pytest.fixture
def packed_calls(monkeypatch):
    """How many linear calls went through oneDNN (harness.predict.linears.onednn_linear, also the head's)."""
    import torch

    counted = {"n": 0}
    original = torch.ops.mkldnn._linear_pointwise

    def spy(*args):
        counted["n"] += 1
        return original(*args)

    monkeypatch.setattr(torch.ops.mkldnn, "_linear_pointwise", spy)
    return counted
