"""A GGUF file's parsed config is cached by path, size and modification time: read back equal, rebuilt when
the file changes, and a damaged cache entry is ignored."""

from __future__ import annotations

import os
import shutil

from harness import models


def test_the_cached_config_equals_the_parsed_one_and_follows_the_file(gguf_path, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    copy = tmp_path / "model" / "tiny.gguf"
    copy.parent.mkdir()
    shutil.copy(gguf_path, copy)
    ref = models.resolve(str(copy))
    entry = models.gguf_config_cache(ref)
    assert entry is not None and not entry.exists()
    parsed = models.load_config(ref)
    assert entry.is_file()
    calls = []
    monkeypatch.setattr("transformers.AutoConfig.from_pretrained", lambda *a, **k: calls.append(a) or parsed)
    cached = models.load_config(ref)
    assert calls == [] and type(cached) is type(parsed) and cached.to_dict() == parsed.to_dict()
    stat = copy.stat()
    os.utime(copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # the file changed: parsed again
    assert models.gguf_config_cache(ref) != entry
    models.load_config(ref)
    assert len(calls) == 1
    models.gguf_config_cache(ref).write_text("{not json")  # a damaged entry: parsed again, not an error
    models.load_config(ref)
    assert len(calls) == 2


def test_a_folder_model_is_not_cached(causal_dir):
    assert models.gguf_config_cache(models.resolve(str(causal_dir))) is None
