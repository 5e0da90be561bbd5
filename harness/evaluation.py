"""Evaluate one (predictor, suite): predictions, per-example metric statistics, scores with intervals."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import numpy as np

from harness.config import EvaluationConfig
from harness.metrics import get_metric
from harness.metrics.stats import bootstrap_intervals
from harness.predict import DecodingStats, Predictor, predict
from harness.records import ItemResult, MetricStats, Prediction, Score
from harness.suites import Example, Suite


def metric_inputs(metric_kind: str, suite: Suite, examples: list[Example], preds: list[Prediction]):
    """Predictions, references and label set in the form a metric family expects."""
    if metric_kind == "label":
        if suite.kind == "classification":
            labels = list(suite.config.labels or [])
            return [p.output if not p.error else "" for p in preds], [str(e.reference) for e in examples], labels
        width = max(len(e.choices) for e in examples)
        labels = [str(i) for i in range(width)]
        outs = [str(p.choice_index) if p.choice_index is not None else "" for p in preds]
        return outs, [str(e.answer) for e in examples], labels
    refs = [e.reference for e in examples]
    return [p.output for p in preds], refs, None


def compute_stats(suite: Suite, examples: list[Example], preds: list[Prediction]) -> list[tuple[object, MetricStats]]:
    out = []
    for ref in suite.config.metrics:
        metric = get_metric(ref.name, **ref.options)
        hyps, refs, labels = metric_inputs(metric.kind, suite, examples, preds)
        # a judge also reads each example's input (harness/judges/metric.py)
        extra = {"inputs": [e.prompt for e in examples]} if metric.kind == "judge" else {}
        stats = np.asarray(metric.example_stats(hyps, refs, labels=labels, **extra), dtype="float64")
        options = json.dumps(ref.options, sort_keys=True)
        out.append((metric, MetricStats(ref.name, options, list(metric.stat_names), stats)))
    return out


def scores_with_intervals(computed, cfg: EvaluationConfig, seed: int) -> list[Score]:
    scores = []
    for metric, ms in computed:
        intervals = bootstrap_intervals(metric, ms.stats, n_resamples=cfg.bootstrap_resamples,
                                        confidence=cfg.confidence, seed=seed)
        for name, iv in intervals.items():
            scores.append(Score(ms.metric, ms.options_json, name, iv.value, iv.low, iv.high, iv.n, iv.method,
                                iv.confidence, metric.signature))
    return scores


def example_count(suite: Suite, cfg: EvaluationConfig) -> int:
    """How many test examples `evaluate_item` evaluates (the total its progress counts to)."""
    n = len(suite.rows.get("test", []))
    return n if cfg.max_examples is None else min(n, cfg.max_examples)


def evaluate_item(predictor: Predictor, suite: Suite, cfg: EvaluationConfig, seed: int, key: dict,
                  progress: Callable[[int, int], None] | None = None) -> ItemResult:
    """The item's whole result; `progress(examples done, total)` is called after each prediction batch."""
    started = time.perf_counter()
    examples = suite.examples("test", cfg.max_examples)
    decoding = DecodingStats()  # near ties and truncated inputs, counted into the item
    preds = predict(predictor, suite, examples, cfg.batch_size, cfg.max_memory_gb, stats=decoding, progress=progress)
    for example, pred in zip(examples, preds, strict=True):  # several references are stored as a list
        pred.reference_list = list(example.reference) if isinstance(example.reference, list) else None
    model_s = time.perf_counter() - started
    computed = compute_stats(suite, examples, preds)
    status, reason = _status(suite, cfg, len(examples), preds)
    return ItemResult(**key, status=status, reason=reason, dataset_fingerprint=suite.fingerprint,
                      predictions=preds, stats=[ms for _, ms in computed],
                      scores=scores_with_intervals(computed, cfg, seed),
                      wall_s=time.perf_counter() - started, model_s=model_s, n_truncated=decoding.truncated,
                      n_near_ties=decoding.near_tie_rows)


def _status(suite: Suite, cfg: EvaluationConfig, n: int, preds: list) -> tuple[str, str | None]:
    """done or failed, and why: per-example failures past max_failure_rate, or generations whose answer the
    suite's `extract` regex did not find past generation.max_extract_miss_rate (below it, a warning)."""
    failed = sum(1 for p in preds if p.error)
    if n and failed / n > cfg.max_failure_rate:
        first = next(p.error for p in preds if p.error)
        return "failed", f"{failed} of {n} examples failed (max_failure_rate {cfg.max_failure_rate}); first: {first}"
    missed = sum(1 for p in preds if p.extracted is False)
    if not missed:
        return "done", None
    gen = suite.config.generation
    note = (f"{missed} of {n} generations did not match extract {gen.extract!r} (the raw text is kept; "
            f"`harness export` or the Compare page shows it)")
    if missed / n > gen.max_extract_miss_rate:
        return "failed", f"{note}; more than max_extract_miss_rate {gen.max_extract_miss_rate}"
    return "done", note


def dataset_row(suite: Suite) -> dict:
    return {"fingerprint": suite.fingerprint, "suite": suite.name, "path": str(suite.path),
            "n_train": len(suite.rows.get("train", [])), "n_validation": len(suite.rows.get("validation", [])),
            "n_test": len(suite.rows.get("test", []))}
