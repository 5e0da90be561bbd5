"""The bridge to lm-evaluation-harness: its tasks on the experiment's candidates, in the same tables.

An experiment lists lm-eval tasks under `lmeval.tasks` (built-in names, or task YAMLs in the folder
`lmeval.include_path`). Each runs on every causal candidate through lm-eval's `HFLM`, which wraps the
in-memory model object: the base, and for the `lora` variant the base with the adapter trained for
the native suite named in `lmeval.adapter_from` (lm-eval tasks have no train split of ours). Per-sample
records become predictions, `accuracy` statistics ([correct, count], from lm-eval's per-sample `acc`)
and scores with bootstrap intervals under suite `lmeval:<task>`, so intervals, paired tests, reports
and gates treat them like native suites. lm-eval's own results go to
`artifacts/<run>/<candidate>/lmeval/<variant>.json`.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import CandidateConfig, ExperimentConfig
from harness.errors import HarnessError
from harness.lmeval.records import (
    AdapterCheck,
    TaskRun,
    compare_logliks,
    dataset_row,
    item_from_run,
    suite_name,
)
from harness.records import ItemResult

if TYPE_CHECKING:
    from harness.models import LoadedModel
    from harness.runner import Reporter
    from harness.store import Store

PROBE_TEXT = "Is the adapter active? The answer is"


# ---------------------------------------------------------------------------------------------------
# finding and loading tasks


def include_dir(cfg: ExperimentConfig, experiment_path: Path) -> Path | None:
    """`lmeval.include_path`, relative to the experiment file."""
    if not cfg.lmeval.include_path:
        return None
    folder = (experiment_path.parent / cfg.lmeval.include_path).resolve()
    if not folder.is_dir():
        raise HarnessError(f"{experiment_path}: lmeval.include_path: folder {folder} not found; give a folder of "
                           "lm-eval task YAMLs, relative to the experiment file")
    return folder


@functools.lru_cache(maxsize=4)
def _manager_with_defaults(include: str | None) -> Any:
    """lm-eval's index of its built-in tasks (thousands of YAMLs, seconds to build) plus `include`."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include)


def task_manager(include: Path | None, names: list[str]) -> Any:
    """A TaskManager that knows `names`; built-in tasks are indexed only when a name is not local."""
    from lm_eval.tasks import TaskManager

    if include is not None:
        local = TaskManager(include_path=str(include), include_defaults=False)
        if all(name in local.all_tasks for name in names):
            return local
    return _manager_with_defaults(str(include) if include else None)


def load_tasks(manager: Any, name: str, include: Path | None) -> dict[str, Any]:
    """The leaf tasks of one task, group or tag name, with their data loaded; HarnessError naming it."""
    if name not in manager.all_tasks:
        close = difflib.get_close_matches(name, manager.all_tasks, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        where = f"a YAML under {include}" if include else "a YAML under lmeval.include_path (none given)"
        raise HarnessError(f"lmeval.tasks: unknown task '{name}': not a built-in lm-eval task nor {where}{hint}")
    try:
        with _quiet():
            return dict(manager.load([name])["tasks"])
    except Exception as exc:  # noqa: BLE001 - datasets and lm-eval raise many types for "data unreachable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HarnessError(f"lmeval.tasks: task '{name}': cannot load its data ({type(exc).__name__}: {first}); "
                           "check the task YAML's dataset settings or that its dataset is reachable") from None


def check_lmeval(cfg: ExperimentConfig, experiment_path: Path, native_suites: list[str]) -> dict[str, list[str]]:
    """Validate the lmeval section before any model runs; returns each task name's leaf tasks."""
    lm = cfg.lmeval
    if lm.adapter_from is not None and lm.adapter_from not in native_suites:
        known = ", ".join(native_suites) or "none"
        raise HarnessError(f"{experiment_path}: lmeval.adapter_from: '{lm.adapter_from}' is not one of the "
                           f"experiment's suites ({known}); name a suite listed under 'suites'")
    include = include_dir(cfg, experiment_path)
    manager = task_manager(include, lm.tasks)
    return {name: sorted(load_tasks(manager, name, include)) for name in lm.tasks}


@contextmanager
def _quiet() -> Iterator[None]:
    """lm-eval logs a warning per task and per model object; keep only its errors."""
    logger = logging.getLogger("lm_eval")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


# ---------------------------------------------------------------------------------------------------
# running tasks on a model


def evaluate_tasks(model: Any, tokenizer: Any, tasks: dict[str, Any], manager: Any, limit: int | None,
                   batch_size: int) -> dict[str, TaskRun]:
    """Run lm-eval on an in-memory model object (base or PeftModel); per-sample records per leaf task."""
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    started = time.perf_counter()
    with _quiet():
        lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)
        out = simple_evaluate(model=lm, tasks=list(tasks.values()), task_manager=manager, limit=limit,
                              log_samples=True, bootstrap_iters=0)
    wall = time.perf_counter() - started
    runs = {}
    for name in tasks:
        config = out["configs"].get(name, {})
        samples = sorted(out["samples"].get(name, []), key=lambda s: s["doc_id"])
        runs[name] = TaskRun(name, config.get("output_type", ""), samples, out["results"].get(name, {}),
                             config, wall / max(len(tasks), 1))
    return runs


# ---------------------------------------------------------------------------------------------------
# the adapter


def probe_adapter(model: Any, tokenizer: Any, device: str) -> float:
    """Largest |logit difference| on a probe text between the PeftModel with and without its adapter."""
    import torch

    enc = tokenizer(PROBE_TEXT, return_tensors="pt", add_special_tokens=False).to(device)
    with torch.no_grad():
        with_adapter = model(**enc).logits.float()
        with model.disable_adapter():
            without = model(**enc).logits.float()
    return float((with_adapter - without).abs().max())


# ---------------------------------------------------------------------------------------------------
# the runner's entry point


@dataclass
class _Job:
    cfg: ExperimentConfig
    store: Store
    run_id: str
    reporter: Reporter
    artifacts: Path
    manager: Any
    include: Path | None
    tasks: list[str]  # leaf task names
    done: set[tuple[str, str, str]]

    def key(self, candidate: str, variant: str, task: str) -> dict:
        return {"run_id": self.run_id, "candidate": candidate, "variant": variant, "suite": suite_name(task)}

    def pending(self, candidate: str, variant: str) -> list[str]:
        return [t for t in self.tasks if (candidate, variant, suite_name(t)) not in self.done]

    def load(self) -> dict[str, Any]:
        """Fresh Task objects for every leaf task (lm-eval keeps per-run state on them)."""
        loaded: dict[str, Any] = {}
        for name in self.cfg.lmeval.tasks:
            loaded.update(load_tasks(self.manager, name, self.include))
        return loaded


def run_lmeval_tasks(cfg: ExperimentConfig, path: str | Path, store: Store, run_id: str, reporter: Reporter,
                     artifacts: Path) -> bool:
    """Run the experiment's lm-eval tasks on every candidate, base then LoRA; True if an item failed."""
    from harness.suites import load_suite

    path = Path(path)
    native = [load_suite(name, base=path.parent).name for name in cfg.suites]
    leaves = check_lmeval(cfg, path, native)
    include = include_dir(cfg, path)
    job = _Job(cfg, store, run_id, reporter, artifacts, task_manager(include, cfg.lmeval.tasks), include,
               sorted({t for names in leaves.values() for t in names}), store.done_items(run_id))
    failed = False
    for candidate in cfg.candidates:
        variants = [v for v in cfg.variants if job.pending(candidate.name, v)]
        if variants:
            failed |= _run_candidate(job, candidate, variants)
    return failed


def _run_candidate(job: _Job, candidate: CandidateConfig, variants: list[str]) -> bool:
    from harness import models

    cfg = job.cfg
    job.reporter.item_started(f"load {candidate.name} for lm-eval ({candidate.model})", None)
    base = models.load(candidate.model, candidate.kind, cfg.device, cfg.dtype, cfg.trust_remote_code)
    job.reporter.item_finished(f"load {candidate.name} for lm-eval", "done", base.kind)
    if base.kind != "causal":
        reason = "lm-eval tasks run on causal LMs only (through lm-eval's HFLM); this candidate is an encoder"
        for variant in variants:
            _write_status(job, candidate.name, variant, "not_applicable", reason)
        return False
    failed, base_runs = False, None
    for variant in variants:
        if variant == "base":
            base_runs = _evaluate_and_write(job, candidate.name, "base", base.model, base.tokenizer)
            failed |= base_runs is None
        else:
            failed |= _run_lora(job, candidate.name, base, base_runs)
    return failed


def _run_lora(job: _Job, candidate: str, base: LoadedModel, base_runs: dict[str, TaskRun] | None) -> bool:
    from harness.finetune import load_adapter

    suite = job.cfg.lmeval.adapter_from
    if suite is None:
        _write_status(job, candidate, "lora", "not_applicable",
                      "lmeval.adapter_from is not set: lm-eval tasks have no train split, so name the native "
                      "suite whose LoRA adapter the lora variant should use")
        return False
    saved = job.store.adapter(job.run_id, candidate, suite)
    predictor = None
    if saved and Path(saved["adapter_path"]).is_dir():
        # a causal adapter needs no suite to load (only an encoder's task head does)
        predictor = load_adapter(base, None, Path(saved["adapter_path"]), saved["adapter_hash"])  # type: ignore[arg-type]
    if predictor is None:
        _write_status(job, candidate, "lora", "failed", f"no usable LoRA adapter for suite '{suite}' in this run "
                      "(its training failed, the lora variant did not run, or its files changed)")
        return True
    check = AdapterCheck(suite, saved["adapter_path"], saved["adapter_hash"],
                         probe_adapter(predictor.model, base.tokenizer, base.device))
    if not check.active:
        _write_status(job, candidate, "lora", "failed", f"the adapter from suite '{suite}' does not change the "
                      "model's outputs (probe logits equal the base's); it is not active")
        return True
    runs = _evaluate_and_write(job, candidate, "lora", predictor.model, base.tokenizer, check, base_runs)
    return runs is None


def _evaluate_and_write(job: _Job, candidate: str, variant: str, model: Any, tokenizer: Any,
                        check: AdapterCheck | None = None,
                        base_runs: dict[str, TaskRun] | None = None) -> dict[str, TaskRun] | None:
    """Evaluate every leaf task on one model and write the pending items; None if lm-eval failed."""
    label = f"{candidate} / {variant} / lm-eval {', '.join(job.tasks)}"
    job.reporter.item_started(f"evaluate {label}", None)
    limit = job.cfg.lmeval.limit or job.cfg.evaluation.max_examples
    try:
        runs = evaluate_tasks(model, tokenizer, job.load(), job.manager, limit, job.cfg.lmeval.batch_size)
    except (RuntimeError, ValueError, IndexError) as exc:
        reason = f"lm-eval failed: {type(exc).__name__}: {exc}"[:500]
        _write_status(job, candidate, variant, "failed", reason)
        return None
    if check is not None and base_runs:
        compare_logliks(base_runs, runs, check)
    _save_artifacts(job, candidate, variant, runs, check)
    for task in job.pending(candidate, variant):
        item = item_from_run(runs[task], job.key(candidate, variant, task), job.cfg, check.note() if check else None)
        job.store.write_item(item, dataset_row(runs[task]))
        headline = ", ".join(f"{s.score} {s.value:.3f}" for s in item.scores[:2])
        job.reporter.item_finished(f"{candidate} / {variant} / {suite_name(task)}", item.status, headline)
    return runs


def _write_status(job: _Job, candidate: str, variant: str, status: str, reason: str) -> None:
    for task in job.pending(candidate, variant):
        job.store.write_item(ItemResult(**job.key(candidate, variant, task), status=status, reason=reason))
        job.reporter.item_finished(f"{candidate} / {variant} / {suite_name(task)}", status.replace("_", " "),
                                   reason)


def _save_artifacts(job: _Job, candidate: str, variant: str, runs: dict[str, TaskRun],
                    check: AdapterCheck | None) -> None:
    """lm-eval's own aggregate results and task configs, and the adapter check, for the record."""
    folder = job.artifacts / job.run_id / candidate / "lmeval"
    folder.mkdir(parents=True, exist_ok=True)
    record = {"tasks": {name: {"results": r.results, "config": r.config, "n_samples": len(r.samples)}
                        for name, r in runs.items()},
              "adapter_check": dataclasses.asdict(check) if check else None}
    (folder / f"{variant}.json").write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
