"""lm-eval's per-sample records as the harness's records (predictions, stats, scores), and adapter evidence.

Pure functions over lm-eval's `samples` output (see harness/lmeval/bridge.py, which runs the tasks).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.config import ExperimentConfig
from harness.records import ItemResult, MetricStats, Prediction

SUITE_PREFIX = "lmeval:"
# lm-eval's per-sample metric -> the harness metric whose stats it becomes (both are [value, count] means)
METRIC_MAP = {"acc": "accuracy", "exact_match": "exact_match"}


def suite_name(task: str) -> str:
    return f"{SUITE_PREFIX}{task}"


@dataclass
class TaskRun:
    """lm-eval's output for one leaf task on one model."""

    task: str
    output_type: str
    samples: list[dict]
    results: dict
    config: dict
    wall_s: float = 0.0


# ---------------------------------------------------------------------------------------------------
# per-sample records -> the harness's records


def _choice_text(continuation: str) -> str:
    return continuation.strip()


def _reference(target: Any, choices: list[str]) -> str:
    if isinstance(target, list):
        return "\n".join(_reference(t, choices) for t in target)
    if isinstance(target, (int, np.integer)) and choices and 0 <= int(target) < len(choices):
        return choices[int(target)]
    return str(target)


def sample_prediction(sample: dict, output_type: str, latency_s: float) -> Prediction:
    """One lm-eval sample as a Prediction: input = the prompt lm-eval scored, output = what it chose or wrote."""
    args = sample["arguments"]
    prompt = str(args[0][0]) if args else ""
    resps = sample["filtered_resps"]
    example_id = str(sample["doc_id"])
    if output_type == "multiple_choice":
        choices = [_choice_text(a[1]) for a in args]
        scores = [float(r[0]) for r in resps]
        best = int(np.argmax(scores))
        return Prediction(example_id, prompt, _reference(sample["target"], choices), choices[best], best, scores,
                          latency_s)
    if output_type == "loglikelihood":
        loglik, greedy = resps[0]
        return Prediction(example_id, prompt + str(args[0][1]), str(sample["target"]), f"greedy={bool(greedy)}",
                          None, [float(loglik)], latency_s)
    output = resps[0] if isinstance(resps, list) and resps else resps
    return Prediction(example_id, prompt, _reference(sample["target"], []), str(output), latency_s=latency_s)


def sample_stats(samples: list[dict]) -> list[tuple[Any, MetricStats]]:
    """lm-eval's per-sample mean metrics (acc, exact_match) as the harness metrics' [value, count] stats."""
    from harness.metrics import get_metric

    out = []
    for lm_name, ours in METRIC_MAP.items():
        if not samples or not all(lm_name in s for s in samples):
            continue
        metric = get_metric(ours)
        values = np.asarray([float(s[lm_name]) for s in samples], dtype="float64")
        stats = np.column_stack([values, np.ones_like(values)])  # a MeanMetric's [score, count] columns
        out.append((metric, MetricStats(ours, "{}", list(metric.stat_names), stats)))
    return out


def task_fingerprint(run: TaskRun) -> str:
    """A content hash of the task: its name, its config (minus where it was loaded from) and its documents."""
    digest = hashlib.sha256(run.task.encode())
    config = {k: v for k, v in run.config.items() if k != "metadata"}
    digest.update(json.dumps(config, sort_keys=True, default=str).encode())
    for sample in run.samples:
        digest.update(str(sample.get("doc_hash", sample["doc_id"])).encode())
    return digest.hexdigest()[:16]


def dataset_row(run: TaskRun) -> dict:
    source = (run.config.get("metadata") or {}).get("config_source") or run.config.get("dataset_path") or run.task
    return {"fingerprint": task_fingerprint(run), "suite": suite_name(run.task), "path": str(source),
            "n_train": 0, "n_validation": 0, "n_test": len(run.samples)}


def item_from_run(run: TaskRun, key: dict, cfg: ExperimentConfig, note: str | None = None) -> ItemResult:
    """The ItemResult of one leaf task: predictions, stats and scores with intervals."""
    from harness.evaluation import scores_with_intervals

    latency = run.wall_s / max(len(run.samples), 1)
    preds = [sample_prediction(s, run.output_type, latency) for s in run.samples]
    computed = sample_stats(run.samples)
    status, reason = ("done", note) if preds else ("failed", "lm-eval returned no samples for this task")
    return ItemResult(**key, status=status, reason=reason, dataset_fingerprint=task_fingerprint(run),
                      predictions=preds, stats=[ms for _, ms in computed],
                      scores=scores_with_intervals(computed, cfg.evaluation, cfg.seed),
                      wall_s=run.wall_s, model_s=run.wall_s)


# ---------------------------------------------------------------------------------------------------
# the adapter


@dataclass
class AdapterCheck:
    """Evidence that the LoRA variant really ran with its adapter."""

    suite: str
    adapter_path: str
    adapter_hash: str
    probe_max_logit_diff: float = 0.0
    loglik_changed: int | None = None  # requests whose log-likelihood differs from the base's
    loglik_total: int | None = None

    @property
    def active(self) -> bool:
        return self.probe_max_logit_diff > 0.0

    def note(self) -> str:
        text = (f"adapter from suite '{self.suite}' (hash {self.adapter_hash[:12]}); active: probe logits "
                f"differ from the base by up to {self.probe_max_logit_diff:.3g}")
        if self.loglik_total:
            text += f"; log-likelihoods differ from the base on {self.loglik_changed} of {self.loglik_total}"
        return text


def compare_logliks(base: dict[str, TaskRun], lora: dict[str, TaskRun], check: AdapterCheck) -> None:
    """Count requests whose log-likelihood changed with the adapter (multiple-choice and loglikelihood tasks)."""
    changed = total = 0
    for name, run in lora.items():
        if name not in base:
            continue
        for a, b in zip(base[name].samples, run.samples, strict=False):
            for ra, rb in zip(a["filtered_resps"], b["filtered_resps"], strict=False):
                if isinstance(ra, (tuple, list)) and isinstance(rb, (tuple, list)):
                    total += 1
                    changed += abs(float(ra[0]) - float(rb[0])) > 1e-6
    if total:
        check.loglik_changed, check.loglik_total = changed, total
