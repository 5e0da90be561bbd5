"""Running a plan: each candidate loaded once, its native suites then its lm-eval tasks, resumable, written as
items finish (an item: candidate x variant x suite, the suite `lmeval:<task>` for an lm-eval task)."""

from __future__ import annotations

import gc
import secrets
import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from harness import models
from harness.config import CandidateConfig, ExecutorConfig, ExperimentConfig, load_experiment
from harness.costs import announce
from harness.errors import HarnessError
from harness.evaluation import dataset_row, evaluate_item, example_count
from harness.executors import AdapterFiles, Evaluated, Trained, require_ray
from harness.executors.local import NO_ADAPTER_FROM, NOT_CAUSAL, WorkContext, not_applicable_reason
from harness.finetune import adapter_applied, adapter_intact, train_lora
from harness.lmeval.bridge import LmevalTasks, adapter_check, evaluate_variant, prepare_tasks
from harness.lmeval.records import AdapterCheck, TaskRun, suite_name
from harness.models import LoadedModel
from harness.predict import Predictor
from harness.progress import Reporter, SilentReporter
from harness.provenance import git_state, versions_json
from harness.records import CandidateInfo, ItemResult, RunRecord
from harness.reuse import ReusePlan, apply, decide
from harness.reuse.fingerprints import ItemFingerprint
from harness.reuse.plan import LmevalItems, WorkItem, native_items
from harness.store import Store
from harness.suites import Suite, load_suite


@dataclass(frozen=True)
class Prepared:
    """An experiment checked before anything is written: its config, suites and lm-eval tasks (None: none)."""

    cfg: ExperimentConfig
    suites: list[Suite]
    lmeval: LmevalTasks | None = None

    def lmeval_items(self) -> LmevalItems | None:
        return LmevalItems(self.lmeval.leaves, self.lmeval.include) if self.lmeval else None


@dataclass
class _Run:
    """What every step of one run needs."""

    prepared: Prepared
    store: Store
    run_id: str
    reporter: Reporter
    artifacts: Path
    done: set[tuple[str, str, str]] = field(default_factory=set)
    native_local: bool = True  # False under ray: native items ran as tasks, only lm-eval tasks run here
    fingerprints: dict[tuple[str, str, str], ItemFingerprint] = field(default_factory=dict)

    @property
    def cfg(self) -> ExperimentConfig:
        return self.prepared.cfg

    def key(self, candidate: str, variant: str, suite: str) -> dict:
        return {"run_id": self.run_id, "candidate": candidate, "variant": variant, "suite": suite}

    def stamp(self, item: ItemResult) -> ItemResult:
        """The item with its fingerprint (what makes it reusable by later runs)."""
        fp = self.fingerprints.get((item.candidate, item.variant, item.suite))
        item.fingerprint = fp.item if fp else None
        return item

    def recipe(self, candidate: str, suite: str) -> str | None:
        fp = self.fingerprints.get((candidate, "lora", suite))
        return fp.recipe if fp else None

    def native_pending(self, candidate: str) -> list[WorkItem]:
        return [i for i in native_items(self.cfg, self.prepared.suites) if i.candidate == candidate
                and i.key not in self.done]

    def lmeval_pending(self, candidate: str) -> dict[str, list[str]]:
        """variant -> its leaf lm-eval tasks not done yet, for the variants with any."""
        leaves = self.prepared.lmeval.leaves if self.prepared.lmeval else []
        pending = {v: [t for t in leaves if (candidate, v, suite_name(t)) not in self.done] for v in self.cfg.variants}
        return {v: tasks for v, tasks in pending.items() if tasks}


def prepare(path: Path) -> Prepared:
    """Validate the experiment, its suites (templates rendered in the sandbox), its lm-eval tasks and its models
    (reference, config, kind, device, weight files) before anything is written or any model runs."""
    cfg = load_experiment(path)
    suites = [load_suite(name, base=path.parent) for name in cfg.suites]
    for candidate in cfg.candidates:
        models.check(candidate.model, candidate.kind, cfg.device, cfg.trust_remote_code)
    lmeval = prepare_tasks(cfg, path, [s.name for s in suites]) if cfg.lmeval.tasks else None
    return Prepared(cfg, suites, lmeval)


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
                   prepared: Prepared | None = None, executor: ExecutorConfig | None = None,
                   reuse: bool = True) -> tuple[str, str]:
    """Run (or continue) an experiment; returns (run id, final status). `prepared`: what `prepare(path)`
    returned, when the caller checked the inputs already; `executor`: overrides the experiment's; `reuse`:
    copy items (and adapters) whose inputs equal a stored one's instead of computing them (docs/reuse.md)."""
    path = Path(path)
    prepared = prepared or prepare(path)
    executor = executor or prepared.cfg.executor
    if executor.kind == "ray":
        require_ray()
    run_id = start_or_resume(store, prepared.cfg, path, resume, fresh)
    run = _Run(prepared, store, run_id, reporter or SilentReporter(),
               artifacts or store.path.resolve().parent / "artifacts")
    try:
        run.done = store.done_items(run_id)
        plan = decide(store, run_id, prepared.cfg, prepared.suites, run.done, reuse, prepared.lmeval_items())
        _reuse(run, plan)
        announce(run.reporter, prepared.cfg, prepared.suites, run.done,  # plan lines, a warning, the overall ETA
                 adapters=plan.adapters_ready() | _trained(run))
        failed = _run_on_ray(run, executor) if executor.kind == "ray" else False
        for candidate in prepared.cfg.candidates:
            failed |= _run_candidate(run, candidate)
    except BaseException:  # an error or Ctrl+C: the run is never left `running` (resume continues it)
        _mark_failed(store, run_id)
        raise
    status = "failed" if failed else "finished"
    store.set_run_status(run_id, status)
    return run_id, status


def _reuse(run: _Run, plan: ReusePlan) -> None:
    """Fingerprints kept for the items computed; the reusable items copied in and reported."""
    run.fingerprints = {d.key: d.fingerprint for d in plan.decisions}
    copied = apply(run.store, run.run_id, plan)
    for d in plan.decisions:
        if d.key in copied:
            run.reporter.item_finished(d.label, "reused", f"from run {d.source}")
    run.done |= copied


def _trained(run: _Run) -> set[tuple[str, str]]:
    """(candidate, suite) whose adapter this run has already (an interrupted run resumed)."""
    return {(c.name, s.name) for c in run.cfg.candidates for s in run.prepared.suites
            if "lora" in run.cfg.variants and (c.name, "lora", s.name) not in run.done
            and run.store.adapter(run.run_id, c.name, s.name) is not None}


def _mark_failed(store: Store, run_id: str) -> None:
    try:
        store.set_run_status(run_id, "failed")
    except Exception:  # noqa: BLE001 - the store may be why the run stopped; the original error is the one to show
        pass


def _run_candidate(run: _Run, candidate: CandidateConfig) -> bool:
    """Load the candidate once; run its pending native items, then its pending lm-eval tasks, on it."""
    native = run.native_pending(candidate.name) if run.native_local else []
    lmeval = run.lmeval_pending(candidate.name)
    if not native and not lmeval:
        return False
    base = _load(run, candidate, native, lmeval)
    if base is None:
        return True
    failed = _run_native(run, candidate, base, native)
    if lmeval:
        failed |= _run_lmeval(run, candidate.name, base, lmeval)
    del base
    gc.collect()
    return failed


def _load(run: _Run, candidate: CandidateConfig, native: list[WorkItem],
          lmeval: dict[str, list[str]]) -> LoadedModel | None:
    """The candidate's base model, its row written; None (its pending items failed, with the reason) if it
    passed the checks before the run yet did not load."""
    cfg = run.cfg
    run.reporter.item_started(f"load {candidate.name} ({candidate.model})", None)
    try:
        base = models.load(candidate.model, candidate.kind, cfg.device, cfg.dtype, cfg.trust_remote_code)
    except HarnessError as exc:
        keys = [run.key(i.candidate, i.variant, i.suite) for i in native]
        keys += [run.key(candidate.name, v, suite_name(t)) for v, tasks in lmeval.items() for t in tasks]
        for key in keys:
            run.store.write_item(ItemResult(**key, status="failed", reason=f"the model did not load: {exc}"))
        run.reporter.item_finished(f"load {candidate.name}", "failed", str(exc))
        return None
    total = sum(p.numel() for p in base.model.parameters())
    run.store.write_candidate(CandidateInfo(run.run_id, candidate.name, candidate.model, base.kind,
                                            base.fingerprint, total))
    run.reporter.item_finished(f"load {candidate.name}", "done", f"{base.kind}, {total / 1e6:.1f}M parameters")
    return base


# ---------------------------------------------------------------------------------------------------
# native suites


def _run_native(run: _Run, candidate: CandidateConfig, base: LoadedModel, pending: list[WorkItem]) -> bool:
    failed = False
    by_name = {s.name: s for s in run.prepared.suites}
    for item in pending:
        suite = by_name[item.suite]
        key = run.key(item.candidate, item.variant, item.suite)
        label = f"{item.candidate} / {item.variant} / {item.suite}"
        reason = not_applicable_reason(base.kind, suite)
        if reason:
            run.store.write_item(run.stamp(ItemResult(**key, status="not_applicable", reason=reason,
                                                      dataset_fingerprint=suite.fingerprint)), dataset_row(suite))
            run.reporter.item_finished(label, "not applicable", reason)
            continue
        with _predictor_for(run, candidate, base, suite, item.variant) as predictor:  # a lora item: adapter on
            run.reporter.item_started(f"evaluate {label}", example_count(suite, run.cfg.evaluation))
            result = (ItemResult(**key, status="failed", reason=predictor) if isinstance(predictor, str) else
                      evaluate_item(predictor, suite, run.cfg.evaluation, run.cfg.seed, key,
                                    progress=lambda d, n: run.reporter.item_progress(d, n)))
        run.store.write_item(run.stamp(result), dataset_row(suite))  # the base is the base again from here
        failed |= result.status == "failed"
        run.reporter.item_finished(label, result.status, _headline(result) if result.scores else result.reason or "")
        gc.collect()
    return failed


@contextmanager
def _predictor_for(run: _Run, candidate: CandidateConfig, base: LoadedModel, suite: Suite,
                   variant: str) -> Iterator[Predictor | str]:
    """The item's predictor for the `with` block: the base, or the base with the suite's adapter on it (the one
    this run saved, else one trained now), taken off when the block ends; a string says why there is none."""
    if variant == "base":
        yield Predictor(base.model, base.tokenizer, base.kind, base.device)
        return
    saved = _saved_adapter(run, candidate.name, suite.name) or _train(run, candidate, base, suite)
    with adapter_applied(base, suite, Path(saved["adapter_path"]), saved["adapter_hash"]) as predictor:
        yield predictor if predictor is not None else "the LoRA adapter's files changed after its training"


def _train(run: _Run, candidate: CandidateConfig, base: LoadedModel, suite: Suite) -> dict:
    """Train the adapter for (candidate, suite) (the base is as before afterwards); its store row."""
    reporter, label = run.reporter, f"train LoRA {candidate.name} / {suite.name}"
    reporter.item_started(label, None)
    out_dir = run.artifacts / run.run_id / candidate.name / suite.name
    result = train_lora(base, suite, run.cfg.lora_for(candidate), run.cfg.seed, out_dir, run.run_id,
                        candidate.name, lambda s, n, loss: reporter.item_progress(s, n, f"loss {loss:.3f}"))
    result.recipe_fingerprint = run.recipe(candidate.name, suite.name)
    run.store.write_training(result)
    reporter.item_finished(label, "done",
                           f"{result.steps} steps, {result.tokens_per_s:.0f} tok/s, val loss {result.final_val_loss}")
    return {"adapter_path": result.adapter_path, "adapter_hash": result.adapter_hash}


def _saved_adapter(run: _Run, candidate: str, trained_on: str) -> dict | None:
    """The row of the adapter this run trained for (candidate, suite); None: there is none, or its files changed."""
    saved = run.store.adapter(run.run_id, candidate, trained_on)
    return saved if saved and adapter_intact(Path(saved["adapter_path"]), saved["adapter_hash"]) else None


def _headline(result: ItemResult, n: int = 3) -> str:
    return ", ".join(f"{s.score} {s.value:.3f}" for s in result.scores[:n])


# ---------------------------------------------------------------------------------------------------
# native suites on a Ray cluster: the tasks return results, this process writes them


def _run_on_ray(run: _Run, executor: ExecutorConfig) -> bool:
    """The pending native items as Ray tasks, each result written as it arrives; True if an item failed."""
    from harness.executors.ray import Sink, Task, run_graph

    pending = [i for i in native_items(run.cfg, run.prepared.suites) if i.key not in run.done]
    base = [Task("evaluate", i.candidate, i.suite, i.variant) for i in pending if i.variant == "base"]
    lora = [Task("evaluate", i.candidate, i.suite, i.variant) for i in pending if i.variant == "lora"]
    ready: dict[tuple[str, str], Trained] = {}  # adapters this run trained already, files intact
    for task in lora:
        if saved := _saved_adapter(run, task.candidate, task.suite):
            files = AdapterFiles.read(Path(saved["adapter_path"]))
            ready[(task.candidate, task.suite)] = Trained(task.candidate, task.suite, adapter=files)
    by_name = {s.name: s for s in run.prepared.suites}
    failed: list[bool] = []
    written: set[str] = set()

    def evaluated(result: Evaluated) -> None:
        if result.info is not None and result.info.candidate not in written:
            run.store.write_candidate(result.info)
            written.add(result.info.candidate)
        run.store.write_item(run.stamp(result.item), dataset_row(by_name[result.item.suite]))
        failed.append(result.item.status == "failed")

    def lost(task: Task, reason: str) -> None:
        if task.kind == "evaluate":
            run.store.write_item(ItemResult(**run.key(task.candidate, task.variant or "base", task.suite),
                                            status="failed", reason=reason))
            failed.append(True)

    ctx = WorkContext(run.cfg, by_name, run.run_id)
    run.native_local = False
    run_graph(ctx, executor, base, lora, ready, Sink(lambda t: _land_adapter(run, t), evaluated, lost), run.reporter)
    return any(failed)


def _land_adapter(run: _Run, trained: Trained) -> None:
    """A trained adapter's files written under the run's artifacts folder, then its row."""
    if trained.training is None or trained.adapter is None:
        return
    folder = trained.adapter.write(run.artifacts / run.run_id / trained.candidate / trained.suite / "adapter")
    run.store.write_training(replace(trained.training, adapter_path=str(folder),
                                     recipe_fingerprint=run.recipe(trained.candidate, trained.suite)))


# ---------------------------------------------------------------------------------------------------
# lm-eval tasks, on the same loaded model


def _run_lmeval(run: _Run, candidate: str, base: LoadedModel, pending: dict[str, list[str]]) -> bool:
    """The candidate's pending lm-eval tasks, base then LoRA; True if an item failed."""
    if base.kind != "causal":
        for variant, tasks in pending.items():
            _write_lmeval_status(run, candidate, variant, tasks, "not_applicable", NOT_CAUSAL)
        return False
    failed, base_runs = False, None
    for variant, tasks in pending.items():
        if variant == "base":
            base_runs = _lmeval_variant(run, candidate, "base", base.model, base.tokenizer, tasks)
            failed |= base_runs is None
        else:
            failed |= _lmeval_lora(run, candidate, base, tasks, base_runs)
    return failed


def _lmeval_lora(run: _Run, candidate: str, base: LoadedModel, tasks: list[str],
                 base_runs: dict[str, TaskRun] | None) -> bool:
    """The lora variant: the base with the adapter trained for `lmeval.adapter_from` on it (checked active
    first) while lm-eval runs, taken off after."""
    suite = run.cfg.lmeval.adapter_from
    if suite is None:
        _write_lmeval_status(run, candidate, "lora", tasks, "not_applicable", NO_ADAPTER_FROM)
        return False
    saved = _saved_adapter(run, candidate, suite)
    with adapter_applied(base, None, Path(saved["adapter_path"]), saved["adapter_hash"]) if saved else \
            nullcontext(None) as predictor:
        if predictor is None:
            _write_lmeval_status(run, candidate, "lora", tasks, "failed", f"no usable LoRA adapter for suite "
                                 f"'{suite}' in this run (its training failed, the lora variant did not run, or its "
                                 "files changed)")
            return True
        check = adapter_check(predictor.model, base.tokenizer, base.device, suite, saved)
        if not check.active:
            _write_lmeval_status(run, candidate, "lora", tasks, "failed", f"the adapter from suite '{suite}' does "
                                 "not change the model's outputs (probe logits equal the base's); it is not active")
            return True
        return _lmeval_variant(run, candidate, "lora", predictor.model, base.tokenizer, tasks, check,
                               base_runs) is None


def _lmeval_variant(run: _Run, candidate: str, variant: str, model: Any, tokenizer: Any, tasks: list[str],
                    check: AdapterCheck | None = None,
                    base_runs: dict[str, TaskRun] | None = None) -> dict[str, TaskRun] | None:
    """Every leaf task on one model; the pending ones written. lm-eval's runs, or None if lm-eval failed."""
    lmeval = run.prepared.lmeval
    assert lmeval is not None  # only called when the experiment lists lm-eval tasks
    run.reporter.item_started(f"evaluate {candidate} / {variant} / lm-eval {', '.join(lmeval.leaves)}", None)
    keys = {task: run.key(candidate, variant, suite_name(task)) for task in tasks}
    record = run.artifacts / run.run_id / candidate / "lmeval" / f"{variant}.json"
    outcome = evaluate_variant(lmeval, run.cfg, model, tokenizer, keys, record, check, base_runs)
    for item, row in outcome.items:
        run.store.write_item(run.stamp(item), row)
        run.reporter.item_finished(f"{candidate} / {variant} / {item.suite}", item.status,
                                   _headline(item, 2) if item.scores else item.reason or "")
    return outcome.runs


def _write_lmeval_status(run: _Run, candidate: str, variant: str, tasks: list[str], status: str,
                         reason: str) -> None:
    for task in tasks:
        run.store.write_item(ItemResult(**run.key(candidate, variant, suite_name(task)), status=status,
                                        reason=reason))
        run.reporter.item_finished(f"{candidate} / {variant} / {suite_name(task)}", status.replace("_", " "),
                                   reason)
