"""The work one item is, run in this process: what a Ray worker runs for a task (and what a test can call
directly). Each function loads the candidate (the last one loaded is kept: a worker reused for the same
candidate does not load it again), does one training or one evaluation, and returns plain data."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness import models
from harness.config import CandidateConfig, ExperimentConfig
from harness.errors import HarnessError
from harness.evaluation import evaluate_item
from harness.executors import AdapterFiles, Evaluated, Trained
from harness.finetune import adapter_applied, train_lora
from harness.kinds import ModelKind, Variant
from harness.models import LoadedModel
from harness.predict import Predictor
from harness.records import CandidateInfo, ItemResult
from harness.suites import Suite

_cache: dict[str, tuple[LoadedModel, CandidateInfo]] = {}


@dataclass(frozen=True)
class WorkContext:
    """What every task of one run needs; shipped to the cluster once (`ray.put`)."""

    cfg: ExperimentConfig
    suites: dict[str, Suite]
    run_id: str

    def candidate(self, name: str) -> CandidateConfig:
        return next(c for c in self.cfg.candidates if c.name == name)

    def key(self, candidate: str, variant: str, suite: str) -> dict:
        return {"run_id": self.run_id, "candidate": candidate, "variant": variant, "suite": suite}


NOT_CAUSAL = ("lm-eval tasks run on causal LMs only (through lm-eval's HFLM); this candidate is an encoder "
              "or an encoder-decoder")
NO_ADAPTER_FROM = ("lmeval.adapter_from is not set: lm-eval tasks have no train split, so name the native suite "
                   "whose LoRA adapter the lora variant should use")


def not_applicable_reason(kind: ModelKind, suite: Suite) -> str | None:
    if kind == "encoder" and suite.kind == "generation":
        return "an encoder model cannot generate text; generation suites need a causal LM or an encoder-decoder"
    return None


def load_candidate(ctx: WorkContext, name: str) -> tuple[LoadedModel, CandidateInfo]:
    """The candidate's base model and its row; raises HarnessError if it does not load."""
    cand, cfg = ctx.candidate(name), ctx.cfg
    cache_key = f"{ctx.run_id}/{name}"
    if cache_key not in _cache:
        _cache.clear()
        base = models.load(cand.model, cand.kind, cfg.device, cfg.dtype, cfg.trust_remote_code)
        total = sum(p.numel() for p in base.model.parameters())
        _cache[cache_key] = base, CandidateInfo(ctx.run_id, name, cand.model, base.kind, base.fingerprint, total)
    return _cache[cache_key]


def train_unit(ctx: WorkContext, candidate: str, suite_name: str,
               progress: Callable[[int, int, float], None] | None = None) -> Trained:
    """Train the adapter for (candidate, suite) in a temporary folder; return it as bytes with its record.
    `progress(step, steps, loss)` after each step."""
    suite = ctx.suites[suite_name]
    try:
        base, info = load_candidate(ctx, candidate)
    except HarnessError as exc:
        return Trained(candidate, suite_name, reason=f"the model did not load: {exc}")
    reason = not_applicable_reason(base.kind, suite)
    if reason:
        return Trained(candidate, suite_name, info=info, reason=reason)
    with tempfile.TemporaryDirectory(prefix="harness-lora-") as tmp:
        result = train_lora(base, suite, ctx.cfg.lora_for(ctx.candidate(candidate)), ctx.cfg.seed, Path(tmp),
                            ctx.run_id, candidate, progress)
        adapter = AdapterFiles.read(Path(result.adapter_path))
    return Trained(candidate, suite_name, result, adapter, info)


def evaluate_unit(ctx: WorkContext, candidate: str, variant: Variant, suite_name: str,
                  trained: Trained | None = None, progress: Callable[[int, int], None] | None = None) -> Evaluated:
    """One item: the base, or the base with the adapter `trained` carries, evaluated on the suite;
    `progress(examples done, total)` after each prediction batch."""
    suite, key = ctx.suites[suite_name], ctx.key(candidate, variant, suite_name)
    try:
        base, info = load_candidate(ctx, candidate)
    except HarnessError as exc:
        return Evaluated(ItemResult(**key, status="failed", reason=f"the model did not load: {exc}"))
    reason = not_applicable_reason(base.kind, suite)
    if reason:
        return Evaluated(ItemResult(**key, status="not_applicable", reason=reason,
                                    dataset_fingerprint=suite.fingerprint), info)
    with tempfile.TemporaryDirectory(prefix="harness-adapter-") as tmp, \
            _predictor(base, suite, variant, trained, Path(tmp)) as predictor:
        if isinstance(predictor, str):
            return Evaluated(ItemResult(**key, status="failed", reason=predictor), info)
        return Evaluated(evaluate_item(predictor, suite, ctx.cfg.evaluation, ctx.cfg.seed, key, progress), info)


@contextmanager
def _predictor(base: LoadedModel, suite: Suite, variant: Variant, trained: Trained | None,
               tmp: Path) -> Iterator[Predictor | str]:
    """The predictor for the variant while the item runs, or why there is none. A lora item's adapter is on
    the base (this worker keeps it for its next task) only for the block: the next base item sees the base."""
    if variant == "base":
        yield Predictor(base.model, base.tokenizer, base.kind, base.device)
    elif trained is None or trained.adapter is None:
        yield f"no LoRA adapter: {trained.reason if trained and trained.reason else 'its training did not run'}"
    else:
        folder = trained.adapter.write(tmp / "adapter")
        with adapter_applied(base, suite, folder, trained.adapter.hash) as predictor:
            yield predictor if predictor is not None else "the adapter's files changed on the way to the worker"
