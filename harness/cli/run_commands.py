"""`harness run`, `demo`, `runs`, `show`, `tag`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from harness.cli import app
from harness.errors import HarnessError
from harness.store import Store

DEMO = Path(__file__).resolve().parents[1] / "experiments" / "demo.yaml"
DbOption = typer.Option(None, "--db", help="DuckDB file (default: $HARNESS_DB or ./harness.duckdb).")


def _print_table(store: Store, run_id: str) -> None:
    from harness.tables import comparison_frame, render_text

    table = comparison_frame(store.scores(run_id), store.table("items", [run_id]))
    typer.echo(f"run {run_id}")
    typer.echo(render_text(table))


def _run(path: Path, db: str | None, resume: str | None, fresh: bool, gate: tuple | None = None) -> None:
    from harness.console import RichReporter
    from harness.runner import prepare, run_experiment

    store = Store(db, timeout_s=float("inf"))  # a run waits for a busy store, never gives up
    prepared = prepare(path)  # every input checked (suites, templates, models) before the store is touched
    with RichReporter() as reporter:
        run_id, status = run_experiment(path, store, reporter, resume=resume, fresh=fresh, prepared=prepared)
    _print_table(store, run_id)
    if status != "finished":
        typer.echo(f"run {run_id} {status}: see the items marked failed", err=True)
        sys.exit(1)
    if gate is not None:  # (baseline REF, rules path): gate this run against the baseline
        from harness.cli.gate_commands import GateOutputs, run_gate

        sys.exit(run_gate(gate[0], run_id, gate[1], db, GateOutputs()))


@app.command()
def run(
    experiment: Path | None = typer.Argument(None, help="Experiment YAML file."),
    db: str | None = DbOption,
    resume: str | None = typer.Option(None, "--resume", help="Continue this run id instead of matching the config."),
    new: bool = typer.Option(False, "--new", help="Start a new run even if an unfinished one matches."),
    gate: Path | None = typer.Option(None, "--gate", help="Gate rules YAML: gate the run against --baseline."),
    baseline: str | None = typer.Option(None, "--baseline", help="Baseline to gate against (run, tag or file)."),
) -> None:
    """Run an experiment: every candidate x variant x suite, resuming unfinished work."""
    if experiment is None and resume is None:
        raise HarnessError("give an experiment file, or --resume RUN_ID")
    if gate is not None and baseline is None:
        raise HarnessError("--gate needs --baseline REF (a run, tag or exported results file)")
    if baseline is not None:
        from harness.cli.gate_commands import load_inputs

        load_inputs(baseline, None, gate, db)  # bad rules or a missing baseline fail before the run
    if experiment is None:
        experiment = Path(Store(db, create=False).run(resume)["experiment_path"])
    _run(experiment, db, resume, new, None if baseline is None else (baseline, gate))


@app.command()
def demo(db: str | None = DbOption) -> None:
    """Run the bundled demo: both packs, base and LoRA, on every built-in suite."""
    _run(DEMO, db, None, False)


@app.command()
def runs(db: str | None = DbOption) -> None:
    """List the runs in the store."""
    frame = Store(db, create=False).runs()
    if frame.empty:
        typer.echo("no runs yet")
        return
    cols = ["run_id", "status", "started_at", "finished_at", "config_hash", "git_commit"]
    typer.echo(frame[cols].to_string(index=False))


@app.command()
def show(run_id: str = typer.Argument(..., help="Run id, id prefix or tag."), db: str | None = DbOption) -> None:
    """Print a run's comparison table from the store."""
    store = Store(db, create=False)
    _print_table(store, store.resolve_run(run_id))


@app.command()
def tag(run_id: str, name: str, db: str | None = DbOption) -> None:
    """Name a run (for example `baseline`); a tag can be used wherever a run id is asked for."""
    resolved = Store(db).tag(name, run_id)
    typer.echo(f"tagged {resolved} as {name}")
