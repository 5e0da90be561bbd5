"""`harness run`, `demo`, `runs`, `show`, `tag`."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from harness.cli import app, data_commands
from harness.errors import HarnessError
from harness.store import Store

DEMO = Path(__file__).resolve().parents[1] / "experiments" / "demo.yaml"
DbOption = typer.Option(None, "--db", help="DuckDB file (default: $HARNESS_DB or ./harness.duckdb).")


def _print_table(store: Store, run_id: str) -> None:
    from harness.reuse.plan import reused_line
    from harness.store.report_queries import scores
    from harness.tables import comparison_frame, render_notes, render_text

    items = store.table("items", [run_id])
    table = comparison_frame(scores(store, [run_id]), items)  # in the order written
    typer.echo(f"run {run_id}")
    typer.echo(render_text(table))
    if line := data_commands.summary_line(store, run_id):
        typer.echo(line)
    if notes := render_notes(items):  # truncated inputs, near ties, extract misses (harness/tables.py)
        typer.echo(notes)
    if line := reused_line(items):
        typer.echo(line)


def _executor(prepared, kind: str | None, address: str | None):
    """The experiment's executor with --executor/--address applied; Ray's absence is a one-line error."""
    from harness.executors import require_ray

    if kind not in (None, "local", "ray"):
        raise HarnessError(f"--executor {kind}: choose local or ray")
    executor = prepared.cfg.executor
    if kind is not None:
        executor = executor.model_copy(update={"kind": kind})
    if address is not None:
        if executor.kind != "ray":
            raise HarnessError("--address is the Ray cluster to run on: give it with --executor ray")
        executor = executor.model_copy(update={"address": address})
    if executor.kind == "ray":
        require_ray()
    return executor


def _already_finished(store: Store, prepared) -> bool:
    """Re-running a finished experiment does not start a new run: it says so and prints the table."""
    finished = store.find_finished_run(prepared.cfg.config_hash())
    if finished is None:
        return False
    typer.echo(f"this experiment already finished as run {finished}; its table follows "
               "(`harness run --new` runs it again)", err=True)
    _print_table(store, finished)
    return True


def _show_plan(path: Path, db: str | None, resume: str | None, fresh: bool, reuse: bool) -> None:
    """`harness run --plan`: each item's action (done, reused from which run, computed; adapters trained or
    reused), writing nothing and creating no store."""
    from harness.costs import Machine, estimate, plan_warning
    from harness.reuse.plan import plan_run
    from harness.runner import prepare
    from harness.store import TeamAddress, address_of

    prepared = prepare(path)
    where = address_of(db)
    exists = isinstance(where, TeamAddress) or where.exists()
    store = Store(db, create=False) if exists else None
    if store is not None and not fresh and resume is None:
        finished = store.find_finished_run(prepared.cfg.config_hash())
        if finished:
            typer.echo(f"this experiment already finished as run {finished}: `harness run` prints its table; "
                       "`harness run --new` starts a new run, planned below")
            fresh = True
    run_id, plan = plan_run(prepared, store, resume, fresh, reuse)
    typer.echo(f"plan: {'continue run ' + run_id if run_id else 'a new run'} in "
               f"{where if exists else str(where) + ' (not created yet)'}"
               + ("" if reuse else " (--no-reuse: nothing is reused)"))
    costs = {c.label: c for c in estimate(prepared.cfg, prepared.suites,
                                          {d.key for d in plan.decisions if d.action != "compute"},
                                          plan.adapters_ready())}
    for decision in plan.decisions:
        cost = costs.get(decision.label)
        amounts = f": {cost.amounts()}" if cost and not cost.not_applicable and not decision.not_applicable else ""
        typer.echo(f"  {decision.label}: {decision.describe()}{amounts}")
    typer.echo(plan.summary())
    if warning := plan_warning(list(costs.values()), Machine.detect(prepared.cfg.device)):
        typer.echo(f"warning: {warning}")


def _run(path: Path, db: str | None, resume: str | None, fresh: bool, gate: tuple | None = None,
         executor: str | None = None, address: str | None = None, reuse: bool = True) -> None:
    from harness.console import make_reporter
    from harness.runner import prepare, run_experiment

    prepared = prepare(path)  # every input checked (suites, templates, models) before the store is touched
    chosen = _executor(prepared, executor, address)
    checks = data_commands.before_run(prepared)  # a data check's error refuses the run before the store
    store = Store(db, timeout_s=float("inf"))  # a run waits for a busy store, never gives up
    if not fresh and resume is None and _already_finished(store, prepared):
        return
    with make_reporter() as reporter:
        run_id, status = run_experiment(path, store, reporter, resume=resume, fresh=fresh, prepared=prepared,
                                        executor=chosen, reuse=reuse)
    data_commands.record(checks, store, run_id)
    _print_table(store, run_id)
    if status != "finished":
        typer.echo(f"run {run_id} {status}: see the items marked failed", err=True)
        sys.exit(1)
    if gate is not None:  # (baseline REF, rules path): gate this run against the baseline
        from harness.gate.check import GateOutputs, run_gate

        gated = run_gate(gate[0], run_id, gate[1], db, GateOutputs())
        typer.echo(gated.markdown)
        sys.exit(gated.exit_code)


@app.command()
def run(
    experiment: Path | None = typer.Argument(None, help="Experiment YAML file."),
    db: str | None = DbOption,
    resume: str | None = typer.Option(None, "--resume", help="Continue this run id instead of matching the config."),
    new: bool = typer.Option(False, "--new", help="Start a new run even if an unfinished one matches."),
    gate: Path | None = typer.Option(None, "--gate", help="Gate rules YAML: gate the run against --baseline."),
    baseline: str | None = typer.Option(None, "--baseline", help="Baseline to gate against (run, tag or file)."),
    executor: str | None = typer.Option(None, "--executor",
                                        help="Where items run: local or ray (default: the experiment's executor)."),
    address: str | None = typer.Option(
        None, "--address", help="Ray cluster: auto or HOST:PORT (default: the experiment's; if none, this machine's "
        "cluster or a new local one)."),
    plan: bool = typer.Option(False, "--plan", help="Show which items would be reused and which computed; run "
                              "nothing."),
    no_reuse: bool = typer.Option(False, "--no-reuse", help="Compute every item (and train every adapter) even "
                                  "when the store holds one with the same inputs."),
) -> None:
    """Run an experiment: every candidate x variant x suite, resuming unfinished work and reusing items whose
    inputs equal a stored one's (docs/reuse.md)."""
    if experiment is None and resume is None:
        raise HarnessError("give an experiment file, or --resume RUN_ID")
    if gate is not None and baseline is None:
        raise HarnessError("--gate needs --baseline REF (a run, tag or exported results file)")
    if baseline is not None:
        from harness.gate.check import load_inputs

        load_inputs(baseline, None, gate, db)  # bad rules or a missing baseline fail before the run
    if experiment is None:
        experiment = Path(Store(db, create=False).run(resume)["experiment_path"])
    if plan:
        _show_plan(experiment, db, resume, new, not no_reuse)
        return
    _run(experiment, db, resume, new, None if baseline is None else (baseline, gate), executor, address,
         not no_reuse)


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
