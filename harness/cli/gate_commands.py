"""`harness gate` and `harness export`: read the inputs, call the verdict, write the outputs.

Exit codes of `harness gate`: 0 pass (warnings included), 1 regression on a blocking rule, 2 error
(bad input, missing run or file, or a blocking rule whose results are not comparable).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import typer

from harness.cli import app
from harness.errors import HarnessError
from harness.store import Store

DbOption = typer.Option(None, "--db", help="DuckDB file (default: $HARNESS_DB or ./harness.duckdb).")
REF_HELP = ("a run id, id prefix, tag or `latest` in the store, or an exported results file (.parquet/.jsonl); "
            "add :CANDIDATE:VARIANT to pick one of several.")


@dataclass(frozen=True)
class GateOutputs:
    junit: Path | None = None
    json: Path | None = None
    markdown: Path | None = None
    record: bool = True
    quiet: bool = False


def load_inputs(baseline_ref: str, candidate_ref: str | None, rules_path: Path | None, db: str | None,
                seed: int | None = None):
    """(rules, baseline, candidate); candidate is None when `candidate_ref` is. Raises HarnessError on bad input."""
    from harness.gate.results_file import load_ref
    from harness.gate.rules import load_rules
    from harness.store.gates import run_results

    store = Store(db, create=False)
    rules = load_rules(rules_path, seed)
    baseline = load_ref(baseline_ref, lambda ref: run_results(store, ref))
    if candidate_ref is None:
        return rules, baseline, None
    candidate = load_ref(candidate_ref, lambda ref: run_results(store, ref),
                         prefer=(baseline.candidate, baseline.variant))
    return rules, baseline, candidate


def run_gate(baseline_ref: str, candidate_ref: str, rules_path: Path | None, db: str | None,
             outputs: GateOutputs, seed: int | None = None) -> int:
    """Gate, write every output, record the decision; returns the exit code."""
    from harness.gate import verdict
    from harness.gate.report import check_dict, to_json, to_junit, to_markdown
    from harness.store.gates import record_decision

    for flag, path in (("--junit", outputs.junit), ("--json", outputs.json), ("--markdown", outputs.markdown)):
        if path is not None and path.is_dir():
            raise HarnessError(f"{flag} {path}: is a directory, not a file; give the path of the file to write")
    rules, baseline, candidate = load_inputs(baseline_ref, candidate_ref, rules_path, db, seed)
    result = verdict(baseline, candidate, rules)
    markdown = to_markdown(result)
    for path, text in ((outputs.junit, to_junit), (outputs.json, to_json), (outputs.markdown, lambda r: markdown)):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text(result), encoding="utf-8")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as out:
            out.write(markdown + "\n")
    if not outputs.quiet:
        typer.echo(markdown)
    if outputs.record:
        counts = result.counts()
        record_decision(Store(db), {
            "baseline": baseline_ref, "baseline_run_id": baseline.run_id, "candidate": candidate_ref,
            "candidate_run_id": candidate.run_id, "rules_hash": result.rules_hash, "verdict": result.verdict,
            "exit_code": result.exit_code, "n_checks": counts["checks"], "n_failed": counts["failed"],
            "n_warned": counts["warned"], "n_not_comparable": counts["not_comparable"],
            "checks_json": json.dumps([check_dict(c) for c in result.checks], sort_keys=True)})
    return result.exit_code


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
    outputs = GateOutputs(junit=junit, json=json_path, markdown=markdown, record=record, quiet=quiet)
    sys.exit(run_gate(baseline, candidate, rules, db, outputs, seed))  # typer.Exit's code is lost in main()


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
