"""The bridge to Hugging Face `evaluate`: local metric modules that call this registry.

`evaluate.load(evaluate_path("bleu"))` loads `evaluate_modules/bleu/bleu.py` without a hub;
its `compute(predictions=..., references=..., **options)` returns `get_metric(name, **options)`'s
corpus scores. Each module file defines its own `evaluate.Metric` subclass (evaluate picks the
first EvaluationModule subclass in the file, so the files import helpers, never a base class).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.errors import HarnessError

MODULES_DIR = Path(__file__).resolve().parent / "evaluate_modules"


def evaluate_path(name: str) -> str:
    """Absolute path of the folder holding the `evaluate` module for a built-in metric."""
    folder = MODULES_DIR / name
    if not (folder / f"{name}.py").is_file():
        known = sorted(p.name for p in MODULES_DIR.iterdir() if (p / f"{p.name}.py").is_file())
        raise HarnessError(f"no evaluate module for metric '{name}'; available: {', '.join(known)}")
    return str(folder)


def module_info(name: str, description: str) -> Any:
    """The `evaluate.MetricInfo` of a bridge module: string predictions, one or several references."""
    import datasets
    import evaluate

    ref_options = [datasets.Value("string")]
    if _kind(name) == "text":
        ref_options.insert(0, datasets.Sequence(datasets.Value("string")))
    features = [datasets.Features({"predictions": datasets.Value("string"), "references": ref}) for ref in ref_options]
    return evaluate.MetricInfo(
        module_name=name,
        description=description,
        citation="",
        inputs_description=(
            "predictions: list of strings; references: one string (or, for text metrics, a list of "
            "strings) per prediction; other keyword arguments are the metric's options "
            "(see docs/metrics.md), plus labels=[...] for label metrics."
        ),
        features=features if len(features) > 1 else features[0],
    )


def _kind(name: str) -> str:
    from harness.metrics.registry import metric_factory

    return getattr(metric_factory(name), "kind", "text")


def module_compute(name: str, predictions: list[str], references: list[Any], **options: Any) -> dict:
    """Corpus scores of `name` with `options`; `labels` (and, for a judge, `inputs`) go to `example_stats`."""
    from harness.metrics.registry import get_metric

    labels = options.pop("labels", None)
    inputs = options.pop("inputs", None)
    metric = get_metric(name, **options)
    extra = {"inputs": list(inputs)} if inputs is not None else {}
    stats = metric.example_stats(list(predictions), list(references), labels=labels, **extra)
    return metric.corpus(stats)
