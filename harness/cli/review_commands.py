"""`harness review ...`: queues, reviewer accounts, progress, export and statistics of human grades."""

from __future__ import annotations

from pathlib import Path

import typer

from harness.cli import app
from harness.store import Store

review_app = typer.Typer(no_args_is_help=True, help="Human review: queues, reviewer accounts, grades.")
app.add_typer(review_app, name="review")
DbOption = typer.Option(None, "--db", help="DuckDB file (default: $HARNESS_DB or ./harness.duckdb).")


@review_app.command()
def create(
    run: str = typer.Option(..., "--run", help="Run id, id prefix or tag."),
    suite: str = typer.Option(..., "--suite", help="Suite whose outputs are reviewed."),
    rubric: str = typer.Option(..., "--rubric", help="Rubric YAML, or a built-in: likert, pass_fail, pairwise."),
    mode: str = typer.Option("single", "--mode", help="single (grade one output) or pairwise (A vs B)."),
    sample: int = typer.Option(20, "--sample", help="How many examples to sample."),
    strategy: str = typer.Option("random", "--strategy", help="random, stratified, disagreement or judge-uncertain "
                                 "(where the run's judge metric is least sure or disagrees most with the others)."),
    overlap: int = typer.Option(1, "--overlap", help="Grades (by different reviewers) each item needs."),
    blind: bool = typer.Option(True, "--blind/--no-blind", help="Hide candidate names from reviewers."),
    candidates: str | None = typer.Option(None, "--candidates", help="e.g. a:base,b:lora (default: all)."),
    reviewers: str | None = typer.Option(None, "--reviewers", help="e.g. alice,bob (default: every reviewer)."),
    name: str | None = typer.Option(None, "--name", help="Queue name (default: SUITE-MODE-random)."),
    seed: int = typer.Option(0, "--seed", help="Seed of sampling and A/B positions."),
    db: str | None = DbOption,
) -> None:
    """Create a review queue from a run's outputs."""
    from harness.review import QueueRequest, create_queue, parse_list
    from harness.review.rubrics import load_rubric

    request = QueueRequest(run, suite, load_rubric(rubric), mode, sample, strategy, overlap, blind,
                           parse_list(candidates), parse_list(reviewers), name, seed, created_by="cli")
    queue, items = create_queue(Store(db), request)
    examples = len({i.example_id for i in items})
    short = f" (only {examples} examples qualify)" if examples < sample else ""
    who = ", ".join(queue.reviewers) or "every reviewer"
    typer.echo(f"created queue {queue.queue_id}: {len(items)} items from {examples} examples{short}, "
               f"{overlap} grade(s) each, open to {who}")


@review_app.command("add-reviewer")
def add_reviewer(
    name: str = typer.Argument(..., help="Login name."),
    role: str = typer.Option("reviewer", "--role", help="reviewer or admin."),
    db: str | None = DbOption,
) -> None:
    """Create an account and print its one-time password (only a salted hash is stored)."""
    from harness.review.auth import add_account

    password = add_account(Store(db), name, role)
    typer.echo(f"{role} '{name}' created. One-time password (shown once, give it to {name}):")
    typer.echo(password)


@review_app.command("reset-password")
def reset_password(name: str, db: str | None = DbOption) -> None:
    """Give an account a new one-time password (also lifts a login lockout)."""
    from harness.review.auth import reset_password as reset

    typer.echo(reset(Store(db), name))


@review_app.command("remove-reviewer")
def remove_reviewer(name: str, db: str | None = DbOption) -> None:
    """Delete an account (their grades stay)."""
    from harness.review.auth import remove_account

    remove_account(Store(db), name)
    typer.echo(f"removed {name}")


@review_app.command("reviewers")
def list_reviewers(db: str | None = DbOption) -> None:
    """List the accounts."""
    from harness.review.auth import accounts

    found = accounts(Store(db, create=False))
    typer.echo("\n".join(f"{a.name}\t{a.role}" for a in found) if found else "no accounts (the app runs without login)")


@review_app.command()
def assign(queue: str, reviewers: str = typer.Option(..., "--reviewers", help="alice,bob ('' opens it to all)."),
           db: str | None = DbOption) -> None:
    """Set who may grade a queue."""
    from harness.review import assign as assign_queue
    from harness.review import parse_list

    assign_queue(Store(db), queue, parse_list(reviewers))
    typer.echo(f"queue {queue}: {reviewers or 'every reviewer'}")


@review_app.command()
def queues(db: str | None = DbOption) -> None:
    """Progress of every queue and reviewer."""
    from harness.review.analysis import progress_tables

    per_queue, per_reviewer = progress_tables(Store(db, create=False))
    if per_queue.empty:
        typer.echo("no review queues yet; create one with `harness review create`")
        return
    typer.echo(per_queue.to_string(index=False))
    if not per_reviewer.empty:
        typer.echo("")
        typer.echo(per_reviewer.to_string(index=False))


def _admin_queue(store: Store, queue_id: str):
    from harness.records.review import Account
    from harness.review import get_queue

    return get_queue(store, queue_id, Account("cli", "admin"))


@review_app.command()
def export(queue: str, out: Path | None = typer.Option(None, "--out", help="CSV file (default: stdout)."),
           db: str | None = DbOption) -> None:
    """Export a queue's grades as CSV (pairwise winners named)."""
    from harness.review.analysis import export_csv

    store = Store(db, create=False)
    text = export_csv(store, _admin_queue(store, queue))
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}")


@review_app.command()
def stats(queue: str, criterion: str = typer.Option("overall", help="Rubric question to analyse."),
          resamples: int = typer.Option(1000, help="Bootstrap resamples."), seed: int = typer.Option(0),
          db: str | None = DbOption) -> None:
    """Human scores or win rates with intervals, agreement, and correlation with the metrics."""
    from harness.review.analysis import analyse

    store = Store(db, create=False)
    result = analyse(store, _admin_queue(store, queue), criterion, resamples, seed)
    for title, frame in [("human score per candidate", result.scores), ("win rates", result.win_rates),
                         ("Bradley-Terry log-strengths", result.strengths), ("agreement", result.agreement),
                         ("correlation with automatic metrics", result.correlations)]:
        if frame is not None:
            typer.echo(f"\n{title}\n" + (frame.to_string(index=False) if len(frame) else "(no data yet)"))
