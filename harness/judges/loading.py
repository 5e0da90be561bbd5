"""A judge from a model reference: an OpenAI-compatible endpoint, or any model the harness loads."""

from __future__ import annotations

from harness.judges.endpoint import PREFIX, EndpointJudge
from harness.judges.local import LocalJudge
from harness.judges.verdict import Judge

_LOADED: dict[tuple, Judge] = {}


def load_judge(ref: str, device: str = "auto", timeout: float = 60.0, retries: int = 2,
               concurrency: int = 4, batch_size: int = 8) -> Judge:
    """`openai:http://HOST:PORT/v1#MODEL`, or a pack, folder, GGUF or hub id (loaded once per process)."""
    key = (ref, device, timeout, retries, concurrency, batch_size)
    if key not in _LOADED:
        if ref.startswith(PREFIX):
            _LOADED[key] = EndpointJudge(ref, timeout, retries, concurrency)
        else:
            from harness import models

            _LOADED[key] = LocalJudge(models.load(ref, kind="causal", device=device), batch_size)
    return _LOADED[key]
