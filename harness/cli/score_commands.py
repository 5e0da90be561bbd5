"""`harness score`: score prediction files against references, with no model."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from harness.cli import app
from harness.errors import HarnessError


def parse_metric(text: str) -> tuple[str, dict]:
    """`bleu` or `f1:average=macro,pos_label=1` -> (name, options); values are read as JSON when they parse."""
    name, _, rest = text.partition(":")
    options = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq:
            raise HarnessError(f"--metric {text}: option '{part}' must look like key=value")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return name, options


@app.command()
def score(
    predictions: Path = typer.Option(..., "--predictions", help="JSONL with a prediction per line."),
    references: Path | None = typer.Option(None, "--references", help="JSONL with references (default: same file)."),
    metric: list[str] = typer.Option(..., "--metric", help="Metric name, with options as name:key=value,..."),
    compare: Path | None = typer.Option(None, "--compare", help="Baseline predictions JSONL for a paired test."),
    prediction_field: str = typer.Option("prediction", help="Field holding the prediction."),
    reference_field: str = typer.Option("reference", help="Field holding the reference (string or list)."),
    labels: str | None = typer.Option(None, help="Comma-separated label set (for f1/precision/recall)."),
    resamples: int = typer.Option(1000, help="Bootstrap resamples (0: no intervals)."),
    confidence: float = typer.Option(0.95, help="Confidence level of intervals."),
    seed: int = typer.Option(0, help="Seed of the resampling."),
    method: str = typer.Option("percentile", help="Interval method: percentile or bca."),
    test: str = typer.Option("bootstrap", help="Paired test: bootstrap, mcnemar or randomization."),
) -> None:
    """Score a JSONL of predictions; print each metric with its interval (and the paired test) as JSON."""
    from harness.metrics.scoring import read_jsonl_pairs, score_records

    pairs = read_jsonl_pairs(predictions, references, prediction_field, reference_field)
    baseline = None
    if compare is not None:
        baseline = read_jsonl_pairs(compare, references or predictions, prediction_field, reference_field).predictions
    label_set = labels.split(",") if labels else None
    result = score_records(pairs.predictions, pairs.references, [parse_metric(m) for m in metric], resamples,
                           confidence, seed, baseline, labels=label_set, method=method, test=test)
    typer.echo(json.dumps(result, indent=2))
