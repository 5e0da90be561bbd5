"""`harness judge ...`: calibrate a model judge against a review queue's human grades."""

from __future__ import annotations

import math

import typer

from harness.cli import app
from harness.store import Store

judge_app = typer.Typer(no_args_is_help=True, help="Model judges: calibration against the reviewers.")
app.add_typer(judge_app, name="judge")
DbOption = typer.Option(None, "--db", help="DuckDB file (default: $HARNESS_DB or ./harness.duckdb).")
SHOWN = ("raw_agreement", "base_rate", "cohen_kappa", "weighted_kappa", "krippendorff_alpha", "spearman",
         "kendall")


def _cell(est) -> str:
    if est is None or math.isnan(est.value):
        return "n/a"
    return f"{est.value:.3f} [{est.low:.3f}, {est.high:.3f}]"


def agreement_table(record) -> list[str]:
    """The statistics of the judge vs the human consensus beside the humans' own ceiling, as text lines."""
    lines = [f"{'statistic':<20} {'judge vs consensus':<26} {'human ceiling':<26}"]
    for name in SHOWN:
        lines.append(f"{name:<20} {_cell(record.vs_consensus.get(name)):<26} {_cell(record.ceiling.get(name)):<26}")
    return lines


@judge_app.command()
def calibrate(
    queue: str = typer.Option(..., "--queue", help="A review queue with grades; its rubric is the judge's."),
    judge: str = typer.Option(..., "--judge", help="Judge model: a pack, folder, hub id or "
                              "openai:http://HOST:PORT/v1#MODEL (the same REF as the suite's judge metric)."),
    reference: bool = typer.Option(False, "--reference/--no-reference", help="Show the reference in the prompt "
                                   "(match the judge metric's `reference` option)."),
    device: str = typer.Option("auto", "--device", help="Device of a local judge."),
    resamples: int = typer.Option(1000, "--resamples", help="Bootstrap resamples of each interval."),
    db: str | None = DbOption,
) -> None:
    """Judge a graded queue's items, measure agreement with the reviewers, and store the calibration record."""
    from harness.judges.loading import load_judge
    from harness.judges.queue_calibration import calibrate_queue

    store = Store(db)
    loaded = load_judge(judge, device=device)
    done = calibrate_queue(store, queue, loaded, reference, resamples, judge_ref=judge)
    record = done.record
    typer.echo(f"calibrated {judge} on queue {queue} (rubric {record.rubric}): {record.n_items} items, "
               f"{record.failed} the judge could not grade, {record.no_consensus} without a human consensus")
    for line in agreement_table(record):
        typer.echo(line)
    typer.echo(f"stored as {done.record_id}")
