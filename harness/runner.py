"""Running a plan: work items (candidate x variant x suite) in order, resumable, written as they finish."""

from __future__ import annotations

import gc
import secrets
import shlex
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from harness import models
from harness.config import CandidateConfig, ExperimentConfig, load_experiment
from harness.errors import HarnessError
from harness.evaluation import dataset_row, evaluate_item
from harness.finetune import load_adapter, train_lora
from harness.models import LoadedModel
from harness.predict import Predictor
from harness.provenance import git_state, versions_json
from harness.records import CandidateInfo, ItemResult, RunRecord
from harness.store import Store
from harness.suites import Suite, load_suite


class Reporter(Protocol):
    def item_started(self, label: str, total: int | None) -> None: ...
    def item_progress(self, done: int, total: int, note: str = "") -> None: ...
    def item_finished(self, label: str, status: str, note: str = "") -> None: ...


class SilentReporter:
    def item_started(self, label: str, total: int | None) -> None:
        pass

    def item_progress(self, done: int, total: int, note: str = "") -> None:
        pass

    def item_finished(self, label: str, status: str, note: str = "") -> None:
        pass


@dataclass(frozen=True)
class WorkItem:
    candidate: str
    variant: str
    suite: str


def plan(cfg: ExperimentConfig, suites: list[Suite]) -> list[WorkItem]:
    """Candidate-major order, so each model is loaded once; base before LoRA for each suite."""
    return [WorkItem(c.name, v, s.name) for c in cfg.candidates for s in suites for v in cfg.variants]


def not_applicable_reason(kind: str, suite: Suite) -> str | None:
    if kind == "encoder" and suite.kind == "generation":
        return "an encoder model cannot generate text; generation suites need a causal LM"
    return None


def prepare(path: Path) -> tuple[ExperimentConfig, list[Suite]]:
    """Validate the experiment, its suites (templates rendered in the sandbox) and its models (reference,
    config, kind, device, weight files) before anything is written or any model runs."""
    cfg = load_experiment(path)
    suites = [load_suite(name, base=path.parent) for name in cfg.suites]
    for candidate in cfg.candidates:
        models.check(candidate.model, candidate.kind, cfg.device, cfg.trust_remote_code)
    if cfg.lmeval.tasks:
        from harness.lmeval import check_lmeval

        check_lmeval(cfg, path, [s.name for s in suites])
    return cfg, suites


def start_or_resume(store: Store, cfg: ExperimentConfig, path: Path, resume: str | None, fresh: bool) -> str:
    if resume:
        run_id = store.resolve_run(resume)
        store.set_run_status(run_id, "running")
        return run_id
    existing = None if fresh else store.find_unfinished_run(cfg.config_hash())
    if existing:
        store.set_run_status(existing, "running")
        return existing
    commit, dirty = git_state(path.resolve().parent)
    run_id = f"{cfg.name}-{datetime.now():%Y%m%d-%H%M%S}-{cfg.config_hash()[:6]}-{secrets.token_hex(2)}"
    store.start_run(RunRecord(
        run_id, cfg.name, str(path), cfg.model_dump_json(), cfg.config_hash(), cfg.seed, commit, dirty,
        versions_json(), shlex.join(["harness", *sys.argv[1:]]) if sys.argv else "harness run",
    ))
    return run_id


def run_experiment(path: str | Path, store: Store, reporter: Reporter | None = None, resume: str | None = None,
                   fresh: bool = False, artifacts: Path | None = None,
                   prepared: tuple[ExperimentConfig, list[Suite]] | None = None) -> tuple[str, str]:
    """Run (or continue) an experiment; returns (run id, final status). `prepared`: what `prepare(path)`
    returned, when the caller checked the inputs already."""
    path = Path(path)
    reporter = reporter or SilentReporter()
    cfg, suites = prepared or prepare(path)
    run_id = start_or_resume(store, cfg, path, resume, fresh)
    artifacts = artifacts or store.path.resolve().parent / "artifacts"
    try:
        failed = _run_items(cfg, path, suites, store, run_id, reporter, artifacts)
    except BaseException:  # an error or Ctrl+C: the run is never left `running` (resume continues it)
        _mark_failed(store, run_id)
        raise
    status = "failed" if failed else "finished"
    store.set_run_status(run_id, status)
    return run_id, status


def _run_items(cfg: ExperimentConfig, path: Path, suites: list[Suite], store: Store, run_id: str,
               reporter: Reporter, artifacts: Path) -> bool:
    done = store.done_items(run_id)
    failed = False
    for candidate in cfg.candidates:
        pending = [i for i in plan(cfg, suites) if i.candidate == candidate.name
                   and (i.candidate, i.variant, i.suite) not in done]
        if pending:
            failed |= _run_candidate(cfg, candidate, suites, pending, store, run_id, reporter, artifacts)
    if cfg.lmeval.tasks:
        from harness.lmeval import run_lmeval_tasks

        failed |= bool(run_lmeval_tasks(cfg, path, store, run_id, reporter, artifacts))
    return failed


def _mark_failed(store: Store, run_id: str) -> None:
    try:
        store.set_run_status(run_id, "failed")
    except Exception:  # noqa: BLE001 - the store may be why the run stopped; the original error is the one to show
        pass


def _run_candidate(cfg: ExperimentConfig, candidate: CandidateConfig, suites: list[Suite], pending: list[WorkItem],
                   store: Store, run_id: str, reporter: Reporter, artifacts: Path) -> bool:
    reporter.item_started(f"load {candidate.name} ({candidate.model})", None)
    try:
        base = models.load(candidate.model, candidate.kind, cfg.device, cfg.dtype, cfg.trust_remote_code)
    except HarnessError as exc:  # checked before the run, yet it did not load: say why on each of its items
        for item in pending:
            store.write_item(ItemResult(run_id, item.candidate, item.variant, item.suite, status="failed",
                                        reason=f"the model did not load: {exc}"))
        reporter.item_finished(f"load {candidate.name}", "failed", str(exc))
        return True
    total = sum(p.numel() for p in base.model.parameters())
    store.write_candidate(CandidateInfo(run_id, candidate.name, candidate.model, base.kind, base.fingerprint, total))
    reporter.item_finished(f"load {candidate.name}", "done", f"{base.kind}, {total / 1e6:.1f}M parameters")
    failed = False
    by_name = {s.name: s for s in suites}
    for item in pending:
        suite = by_name[item.suite]
        key = {"run_id": run_id, "candidate": item.candidate, "variant": item.variant, "suite": item.suite}
        label = f"{item.candidate} / {item.variant} / {item.suite}"
        reason = not_applicable_reason(base.kind, suite)
        if reason:
            store.write_item(ItemResult(**key, status="not_applicable", reason=reason,
                                        dataset_fingerprint=suite.fingerprint), dataset_row(suite))
            reporter.item_finished(label, "not applicable", reason)
            continue
        predictor = _predictor_for(cfg, candidate, base, suite, item.variant, store, run_id, reporter, artifacts)
        reporter.item_started(f"evaluate {label}", None)
        result = evaluate_item(predictor, suite, cfg.evaluation, cfg.seed, key)
        store.write_item(result, dataset_row(suite))
        failed |= result.status == "failed"
        reporter.item_finished(label, result.status, _headline(result))
        del predictor
        gc.collect()
    del base
    gc.collect()
    return failed


def _predictor_for(cfg: ExperimentConfig, candidate: CandidateConfig, base: LoadedModel, suite: Suite, variant: str,
                   store: Store, run_id: str, reporter: Reporter, artifacts: Path) -> Predictor:
    if variant == "base":
        return Predictor(base.model, base.tokenizer, base.kind, base.device)
    saved = store.adapter(run_id, candidate.name, suite.name)
    if saved and Path(saved["adapter_path"]).is_dir():
        reused = load_adapter(base, suite, Path(saved["adapter_path"]), saved["adapter_hash"])
        if reused is not None:
            return reused
    lora = cfg.lora_for(candidate)
    reporter.item_started(f"train LoRA {candidate.name} / {suite.name}", None)
    out_dir = artifacts / run_id / candidate.name / suite.name
    predictor, result = train_lora(base, suite, lora, cfg.seed, out_dir, run_id, candidate.name,
                                   lambda s, n, loss: reporter.item_progress(s, n, f"loss {loss:.3f}"))
    store.write_training(result)
    reporter.item_finished(f"train LoRA {candidate.name} / {suite.name}", "done",
                           f"{result.steps} steps, {result.tokens_per_s:.0f} tok/s, val loss {result.final_val_loss}")
    return predictor


def _headline(result: ItemResult) -> str:
    return ", ".join(f"{s.score} {s.value:.3f}" for s in result.scores[:3])
