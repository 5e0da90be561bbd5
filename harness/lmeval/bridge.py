"""The bridge to lm-evaluation-harness: its tasks on the runner's loaded models, in the same tables.

An experiment lists lm-eval tasks under `lmeval.tasks` (built-in names, or task YAMLs in the folder
`lmeval.include_path`). The runner (harness/runner.py) loads each candidate once and, after its native
suites, hands the model here: lm-eval's `HFLM` wraps the in-memory model object, the base, and for the
`lora` variant the base with the adapter trained for the native suite named in `lmeval.adapter_from`
(lm-eval tasks have no train split of ours). This module has no candidate loop and never imports the
runner. Per-sample records become predictions, `accuracy` statistics ([correct, count], from lm-eval's
per-sample `acc`) and scores with bootstrap intervals under suite `lmeval:<task>`, so intervals, paired
tests, reports and gates treat them like native suites. lm-eval's own results go to
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
from typing import Any

from harness.config import ExperimentConfig
from harness.errors import HarnessError
from harness.lmeval.records import (
    AdapterCheck,
    TaskRun,
    compare_logliks,
    dataset_row,
    item_from_run,
)
from harness.records import ItemResult

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
# what the runner calls: the tasks of a run, one variant's evaluation on a loaded model


@dataclass
class LmevalTasks:
    """The experiment's lm-eval tasks, checked once per run: its task manager and leaf task names."""

    names: list[str]  # as listed under lmeval.tasks (tasks, groups or tags)
    leaves: list[str]  # the leaf tasks they expand to, each stored as suite `lmeval:<task>`
    manager: Any
    include: Path | None

    def fresh(self) -> dict[str, Any]:
        """Fresh Task objects for every leaf task (lm-eval keeps per-run state on them)."""
        loaded: dict[str, Any] = {}
        for name in self.names:
            loaded.update(load_tasks(self.manager, name, self.include))
        return loaded


def prepare_tasks(cfg: ExperimentConfig, experiment_path: Path, native_suites: list[str]) -> LmevalTasks:
    """Check the lmeval section (as `check_lmeval`) and keep what the run needs to evaluate the tasks."""
    leaves = check_lmeval(cfg, experiment_path, native_suites)
    include = include_dir(cfg, experiment_path)
    return LmevalTasks(list(cfg.lmeval.tasks), sorted({t for names in leaves.values() for t in names}),
                       task_manager(include, cfg.lmeval.tasks), include)


def adapter_check(model: Any, tokenizer: Any, device: str, suite: str, saved: dict) -> AdapterCheck:
    """The evidence for a LoRA variant: the adapter's suite, path and hash, and the probe's logit difference."""
    return AdapterCheck(suite, saved["adapter_path"], saved["adapter_hash"], probe_adapter(model, tokenizer, device))


@dataclass
class VariantOutcome:
    """One variant's lm-eval evaluation: lm-eval's runs (None: lm-eval failed) and an item per pending task."""

    runs: dict[str, TaskRun] | None
    items: list[tuple[ItemResult, dict | None]]  # (the item, its dataset row)


def evaluate_variant(tasks: LmevalTasks, cfg: ExperimentConfig, model: Any, tokenizer: Any,
                     keys: dict[str, dict], record: Path, check: AdapterCheck | None = None,
                     base_runs: dict[str, TaskRun] | None = None) -> VariantOutcome:
    """Every leaf task on one model (base or PeftModel); items for the tasks in `keys` (task -> item key).
    lm-eval's own results and the adapter check are written to the JSON file `record`."""
    limit = cfg.lmeval.limit or cfg.evaluation.max_examples
    try:
        runs = evaluate_tasks(model, tokenizer, tasks.fresh(), tasks.manager, limit, cfg.lmeval.batch_size)
    except (RuntimeError, ValueError, IndexError) as exc:
        reason = f"lm-eval failed: {type(exc).__name__}: {exc}"[:500]
        return VariantOutcome(None, [(ItemResult(**key, status="failed", reason=reason), None)
                                     for key in keys.values()])
    if check is not None and base_runs:
        compare_logliks(base_runs, runs, check)
    _save_record(record, runs, check)
    note = check.note() if check else None
    return VariantOutcome(runs, [(item_from_run(runs[task], key, cfg, note), dataset_row(runs[task]))
                                 for task, key in keys.items()])


def _save_record(path: Path, runs: dict[str, TaskRun], check: AdapterCheck | None) -> None:
    """lm-eval's own aggregate results and task configs, and the adapter check, for the record."""
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"tasks": {name: {"results": r.results, "config": r.config, "n_samples": len(r.samples)}
                        for name, r in runs.items()},
              "adapter_check": dataclasses.asdict(check) if check else None}
    path.write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
