"""`harness gate` and `harness export`: parse, call harness.gate.check (the service), print, exit.

Exit codes of `harness gate`: 0 pass (warnings included), 1 regression on a blocking rule, 2 error
(bad input, missing run or file, or a blocking rule whose results are not comparable).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from harness.cli import app
from harness.store import Store

DbOption = typer.Option(None, "--db", help="DuckDB file (default: $HARNESS_DB or ./harness.duckdb).")
REF_HELP = ("a run id, id prefix, tag or `latest` in the store, or an exported results file (.parquet/.jsonl); "
            "add :CANDIDATE:VARIANT to pick one of several.")


@app.command()
def gate(
    baseline: str = typer.Option(..., "--baseline", help="The baseline: " + REF_HELP),
    candidate: str = typer.Option(..., "--candidate", help="The candidate: " + REF_HELP),
    rules: Path | None = typer.Option(None, "--rules", help="Gate rules YAML (default: every baseline score, "
                                      "blocking, max drop 0, alpha 0.05)."),
    db: str | None = DbOption,
    junit: Path | None = typer.Option(None, "--junit", help="Write JUnit XML here (one test case per check)."),
    json_path: Path | None = typer.Option(None, "--json", help="Write the result as JSON here."),
    markdown: Path | None = typer.Option(None, "--markdown", help="Also write the Markdown summary here."),
    seed: int | None = typer.Option(None, "--seed", help="Resampling seed (overrides the rules file's)."),
    record: bool = typer.Option(True, "--record/--no-record", help="Store the decision in the store."),
    quiet: bool = typer.Option(False, "--quiet", help="Do not print the Markdown summary."),
) -> None:
    """Gate a candidate against a baseline: exit 0 pass, 1 regression, 2 error or not comparable."""
    from harness.gate.check import GateOutputs, run_gate

    outputs = GateOutputs(junit=junit, json=json_path, markdown=markdown, record=record)
    gated = run_gate(baseline, candidate, rules, db, outputs, seed)
    if not quiet:
        typer.echo(gated.markdown)
    sys.exit(gated.exit_code)  # typer.Exit's code is lost in main()


@app.command()
def export(
    run: str = typer.Argument(..., help="RUN[:CANDIDATE[:VARIANT]]: a run id, id prefix, tag or `latest`."),
    out: Path = typer.Option(..., "--out", help="The results file: .parquet or .jsonl."),
    db: str | None = DbOption,
) -> None:
    """Write a run's per-example results (statistics, predictions, fingerprints) for `harness gate`."""
    from harness.gate.results_file import pairs_in, parse_ref, select_rows, write_results
    from harness.store.gates import run_results

    source, candidate, variant = parse_ref(run)
    header, frame = run_results(Store(db, create=False), source)
    rows = select_rows(run, frame, candidate, variant)
    count = write_results(out, header, rows)
    pairs = ", ".join(f"{c}:{v}" for c, v in pairs_in(rows))
    typer.echo(f"wrote {count} rows of run {header['run_id']} ({pairs}) to {out}")
