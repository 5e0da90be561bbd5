"""Score prediction files: what `harness score` calls (the CLI only parses and prints).

`score_records` runs several metrics over one system, with bootstrap intervals, and optionally a
paired comparison against a baseline system's predictions on the same examples. Its result is
plain JSON (non-finite numbers become null).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

from harness.errors import HarnessError
from harness.metrics.registry import get_metric
from harness.metrics.stats import Interval, bootstrap_intervals, paired_test

MetricSpec = tuple[str, dict[str, Any]] | str


class JsonlPairs(NamedTuple):
    predictions: list[str]
    references: list[Any]


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _specs(metrics: Sequence[MetricSpec]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for spec in metrics:
        name, options = (spec, {}) if isinstance(spec, str) else spec
        out.append((name, dict(options or {})))
    if not out:
        raise HarnessError("no metrics to score; name at least one metric")
    return out


def _key(score: str, name: str, options: dict[str, Any], taken: dict[str, Any]) -> str:
    """The result key of a score: its name, or name(options) when two entries produce the same name."""
    if any(e["metric"] == name and e["options"] == options for e in taken.values()):
        raise HarnessError(f"metric '{name}' is listed twice with the same options {options}; list it once")
    if score not in taken:
        return score
    detail = ",".join(f"{k}={v}" for k, v in sorted(options.items())) or "default"
    return f"{score}({detail})"


def score_records(
    predictions: Sequence[str],
    references: Sequence[Any],
    metrics: Sequence[MetricSpec],
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int | None = 0,
    compare: Sequence[str] | None = None,
    *,
    labels: Sequence[str] | None = None,
    method: str = "percentile",
    test: str = "bootstrap",
) -> dict[str, Any]:
    """Corpus scores with intervals, and (with `compare`, the baseline's predictions) paired tests.

    In "comparison", a is the baseline (`compare`) and b is `predictions`: difference = b - a.
    `n_resamples=0` skips intervals and tests (low/high/p_value are null).
    """
    n = len(predictions)
    if n == 0:
        raise HarnessError("no predictions to score")
    if compare is not None and len(compare) != n:
        raise HarnessError(f"{n} predictions but {len(compare)} baseline predictions to compare with")
    result: dict[str, Any] = {"n": n, "n_resamples": n_resamples, "confidence": confidence, "seed": seed}
    result["metrics"] = {}
    if compare is not None:
        result["comparison"] = {}
    for name, options in _specs(metrics):
        metric = get_metric(name, **options)
        stats = metric.example_stats(list(predictions), list(references), labels=labels)
        keys = {score: _key(score, name, options, result["metrics"]) for score in metric.score_names}
        intervals = bootstrap_intervals(metric, stats, n_resamples, confidence, seed, method) if n_resamples else {}
        for score, value in metric.corpus(stats).items():
            entry = {"metric": name, "options": options, **_interval_entry(value, intervals.get(score))}
            result["metrics"][keys[score]] = {**entry, "signature": metric.signature}
        if compare is not None:
            stats_a = metric.example_stats(list(compare), list(references), labels=labels)
            paired = _paired(metric, stats_a, stats, test, n_resamples, confidence, seed)
            result["comparison"].update({keys[score]: entry for score, entry in paired.items()})
    return result


def _interval_entry(value: float, interval: Interval | None) -> dict[str, Any]:
    return {
        "value": _num(value),
        "low": _num(interval.low) if interval else None,
        "high": _num(interval.high) if interval else None,
        "method": interval.method if interval else None,
    }


def _paired(metric, stats_a, stats_b, test, n_resamples, confidence, seed) -> dict[str, dict[str, Any]]:
    """JSON entries of the paired comparison; without resamples only the values and difference."""
    if n_resamples == 0:
        values_a, values_b = metric.corpus(stats_a), metric.corpus(stats_b)
        return {
            score: {
                "value_a": _num(values_a[score]),
                "value_b": _num(values_b[score]),
                "difference": _num(values_b[score] - values_a[score]),
                "low": None,
                "high": None,
                "p_value": None,
                "test": None,
            }
            for score in values_a
        }
    results = paired_test(metric, stats_a, stats_b, test, n_resamples, confidence, seed)
    return {
        score: {
            "value_a": _num(r.value_a),
            "value_b": _num(r.value_b),
            "difference": _num(r.difference),
            "low": _num(r.low),
            "high": _num(r.high),
            "p_value": _num(r.p_value),
            "test": r.test,
        }
        for score, r in results.items()
    }


def _read_jsonl(path: Path, what: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line."""
    if not path.is_file():
        raise HarnessError(f"{what} file {path}: no such file")
    rows = []
    try:
        with path.open(encoding="utf-8-sig") as handle:
            lines = list(handle)
    except UnicodeDecodeError as err:
        raise HarnessError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise HarnessError(f"{path}:{number}: not valid JSON ({err.msg}); one JSON object per line") from None
        if not isinstance(row, dict):
            raise HarnessError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        rows.append((number, row))
    return rows


def _field(path: Path, number: int, row: dict[str, Any], field: str, kind: str) -> Any:
    if field not in row:
        present = ", ".join(sorted(row)) or "none"
        raise HarnessError(f"{path}:{number}: no field '{field}' (fields: {present}); set the {kind} field name")
    value = row[field]
    ok = isinstance(value, str | int | float) and not isinstance(value, bool)
    if kind == "reference" and isinstance(value, list):
        ok = bool(value) and all(isinstance(v, str) for v in value)
    if not ok:
        raise HarnessError(
            f"{path}:{number}: field '{field}' must be a string"
            + (" or a non-empty list of strings" if kind == "reference" else "")
            + f", got {json.dumps(value)[:60]}"
        )
    return value if isinstance(value, str | list) else str(value)


def read_jsonl_pairs(
    predictions_path: str | Path,
    references_path: str | Path | None = None,
    prediction_field: str = "prediction",
    reference_field: str = "reference",
) -> JsonlPairs:
    """Predictions (and references) from JSONL; references come from the predictions file when no
    references file is given. Errors name the file, the line and the field."""
    pred_path = Path(predictions_path)
    pred_rows = _read_jsonl(pred_path, "predictions")
    predictions = [_field(pred_path, i, row, prediction_field, "prediction") for i, row in pred_rows]
    ref_path = Path(references_path) if references_path is not None else pred_path
    ref_rows = _read_jsonl(ref_path, "references") if references_path is not None else pred_rows
    references = [_field(ref_path, i, row, reference_field, "reference") for i, row in ref_rows]
    if len(predictions) != len(references):
        raise HarnessError(
            f"{pred_path} has {len(predictions)} predictions but {ref_path} has {len(references)} "
            "references; the files must list the same examples in the same order"
        )
    if not predictions:
        raise HarnessError(f"{pred_path}: no records")
    return JsonlPairs(predictions, references)
