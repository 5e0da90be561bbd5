"""The gate as a service: read the inputs, decide, write every output, record the decision. `harness gate`
and `harness run --gate` both call `run_gate`; they only print and exit.

Exit codes: 0 pass (warnings included), 1 regression on a blocking rule, 2 error (bad input, missing run or
file, or a blocking rule whose results are not comparable, or a rule on a judge metric whose calibration is
missing, stale or below its `min_agreement`: harness/gate/calibration.py).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.gate.calibration import check_calibration
from harness.gate.decision import GateResult, verdict
from harness.gate.report import check_dict, to_json, to_junit, to_markdown
from harness.gate.results_file import ResultSet, load_ref
from harness.gate.rules import GateRules, load_rules
from harness.store import Store
from harness.store.gates import record_decision, run_results


@dataclass(frozen=True)
class GateOutputs:
    junit: Path | None = None
    json: Path | None = None
    markdown: Path | None = None
    record: bool = True


@dataclass(frozen=True)
class GateRun:
    result: GateResult
    markdown: str

    @property
    def exit_code(self) -> int:
        return self.result.exit_code


def load_inputs(baseline_ref: str, candidate_ref: str | None, rules_path: Path | None, db: str | None,
                seed: int | None = None) -> tuple[GateRules, ResultSet, ResultSet | None]:
    """(rules, baseline, candidate); candidate is None when `candidate_ref` is. Raises HarnessError on bad input."""
    store = Store(db, create=False)
    rules = load_rules(rules_path, seed)
    baseline = load_ref(baseline_ref, lambda ref: run_results(store, ref))
    if candidate_ref is None:
        return rules, baseline, None
    candidate = load_ref(candidate_ref, lambda ref: run_results(store, ref),
                         prefer=(baseline.candidate, baseline.variant))
    return rules, baseline, candidate


def _check_outputs(outputs: GateOutputs) -> None:
    for flag, path in (("--junit", outputs.junit), ("--json", outputs.json), ("--markdown", outputs.markdown)):
        if path is not None and path.is_dir():
            raise HarnessError(f"{flag} {path}: is a directory, not a file; give the path of the file to write")


def _write_outputs(result: GateResult, markdown: str, outputs: GateOutputs) -> None:
    for path, text in ((outputs.junit, to_junit), (outputs.json, to_json), (outputs.markdown, lambda r: markdown)):
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text(result), encoding="utf-8")
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as out:
            out.write(markdown + "\n")


def decision_row(result: GateResult, baseline_ref: str, baseline: ResultSet, candidate_ref: str,
                 candidate: ResultSet) -> dict:
    """The gate_decisions row of one verdict (shown on the report's Gate history page)."""
    counts = result.counts()
    return {"baseline": baseline_ref, "baseline_run_id": baseline.run_id, "candidate": candidate_ref,
            "candidate_run_id": candidate.run_id, "rules_hash": result.rules_hash, "verdict": result.verdict,
            "exit_code": result.exit_code, "n_checks": counts["checks"], "n_failed": counts["failed"],
            "n_warned": counts["warned"], "n_not_comparable": counts["not_comparable"],
            "checks_json": json.dumps([check_dict(c) for c in result.checks], sort_keys=True)}


def run_gate(baseline_ref: str, candidate_ref: str, rules_path: Path | None, db: str | None,
             outputs: GateOutputs, seed: int | None = None) -> GateRun:
    """Gate, write every output, record the decision."""
    _check_outputs(outputs)
    rules, baseline, candidate = load_inputs(baseline_ref, candidate_ref, rules_path, db, seed)
    check_calibration(rules, baseline, Store(db, create=False))  # a judge metric gates only when calibrated
    result = verdict(baseline, candidate, rules)
    markdown = to_markdown(result)
    _write_outputs(result, markdown, outputs)
    if outputs.record:
        record_decision(Store(db), decision_row(result, baseline_ref, baseline, candidate_ref, candidate))
    return GateRun(result, markdown)
