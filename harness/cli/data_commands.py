"""`harness data check`: the data checks of a suite or of an experiment's suites (harness/datacheck/)."""

from __future__ import annotations

from pathlib import Path

import typer

from harness.cli import app
from harness.errors import HarnessError

data_app = typer.Typer(help="Check suites' data: overlap between splits, label balance, empty and duplicated rows.",
                       no_args_is_help=True)
app.add_typer(data_app, name="data")


@data_app.command("check")
def check(
    target: str = typer.Argument(..., help="A suite (file or built-in name) or an experiment YAML file."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the findings to this JSON file."),
) -> None:
    """Exact and near-duplicate overlap of each test split with the train/validation splits (and, for an
    experiment that trains LoRA adapters, with every suite's training data); label balance per split;
    empty, over-long and duplicated rows. Rows are named by their file's own line numbers. Warnings
    exit 0; a suite's `checks.fail_*` threshold turns a warning into an error (exit 2)."""
    from harness.datacheck import check_suites, load_targets

    suites, lora = load_targets(target)
    report = check_suites(suites, lora_data=lora)
    for line in report.lines():
        typer.echo(line)
    if json_out is not None:
        json_out.write_text(report.to_json(), encoding="utf-8")
    fail(report)


def fail(report) -> None:
    """Errors among the findings: one line naming them, exit 2."""
    if report.errors:
        kinds = ", ".join(sorted({f"{f.suite} {f.check}" for f in report.errors}))
        raise HarnessError(f"data check: {len(report.errors)} error(s) ({kinds}); fix the data, or raise the "
                           "suite's checks.fail_* thresholds")


def before_run(prepared):
    """`harness run`'s data checks, before the store is touched: one summary line, errors refuse the run."""
    from harness.datacheck import check_suites

    report = check_suites(prepared.suites, lora_data="lora" in prepared.cfg.variants)
    if report.findings:
        from collections import Counter

        counts = ", ".join(f"{where} {n}" if n > 1 else where for where, n in
                           Counter(f"{f.suite} {f.check}" for f in report.findings).items())
        typer.echo(f"data checks: {len(report.findings)} finding(s) ({counts}); details: harness data check "
                   "EXPERIMENT, the report's Runs page, or data_checks.json in the run's artifacts", err=True)
    fail(report)
    return report


def record(report, store, run_id: str) -> Path:
    """The findings recorded with the run: the store's `data_checks` table (replacing the run's earlier
    findings, so a resumed run keeps one set) and ARTIFACTS/RUN_ID/data_checks.json beside the store."""
    store.write_data_checks(run_id, report.findings)
    out = store.path.resolve().parent / "artifacts" / run_id / "data_checks.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report.to_json(), encoding="utf-8")
    return out


def summary_line(store, run_id: str) -> str | None:
    """One line for under a run's table when it has data check findings (None when it has none)."""
    found = store.data_checks([run_id])
    if found.empty:
        return None
    kinds = found.groupby(["severity", "check_kind"], sort=False).size()
    parts = ", ".join(f"{n} {severity} {kind}" for (severity, kind), n in kinds.items())
    name = "finding" if len(found) == 1 else "findings"
    return f"data checks: {len(found)} {name} ({parts}); harness data check EXPERIMENT for details"
