"""SQL for the gate: a run's per-example results (the export rows) and the gate decisions."""

from __future__ import annotations

import uuid
from datetime import datetime

import duckdb
import pandas as pd

from harness.errors import HarnessError
from harness.store import Store

LATEST = "latest"

_RESULTS = """
SELECT s.run_id, s.candidate, s.variant, s.suite, i.dataset_fingerprint, c.fingerprint AS model_fingerprint,
       s.example_id, s.metric, s.options_json, s.stat_names, s.stats, p.output, p.reference, p.error,
       p.reference_list
FROM example_stats s
LEFT JOIN items i ON i.run_id = s.run_id AND i.candidate = s.candidate AND i.variant = s.variant
     AND i.suite = s.suite
LEFT JOIN candidates c ON c.run_id = s.run_id AND c.candidate = s.candidate
LEFT JOIN (SELECT DISTINCT ON (run_id, candidate, variant, suite, example_id) * FROM predictions
           WHERE run_id = ?) p
     ON p.run_id = s.run_id AND p.candidate = s.candidate AND p.variant = s.variant AND p.suite = s.suite
     AND p.example_id = s.example_id
WHERE s.run_id = ?
ORDER BY s.candidate, s.variant, s.suite, s.metric, s.options_json, s.example_id
"""


def resolve(store: Store, ref: str) -> str:
    """A run id from an id, id prefix or tag; `latest` (unless a tag or run is so named) is the newest run."""
    if not store.path.exists():
        raise HarnessError(f"'{ref}' is not a results file, and the store {store.path} does not exist; "
                           "give a file or --db")
    try:
        return store.resolve_run(ref)
    except HarnessError:
        if ref != LATEST:
            raise
    newest = store.query("SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC LIMIT 1")
    if newest.empty:
        raise HarnessError(f"{store.path}: no runs yet, so there is no latest run")
    return str(newest.iloc[0, 0])


def run_results(store: Store, ref: str) -> tuple[dict, pd.DataFrame]:
    """(header, rows) of a run: the same shape `harness.gate.results_file.read_results` gives for a file."""
    run_id = resolve(store, ref)

    def read(con: duckdb.DuckDBPyConnection) -> tuple[dict, pd.DataFrame]:
        run = con.execute("SELECT run_id, name, config_hash, git_commit, seed FROM runs WHERE run_id = ?",
                          [run_id]).df().iloc[0].to_dict()
        frame = con.execute(_RESULTS, [run_id, run_id]).df()
        return run, frame

    run, frame = store.transaction(read)
    header = {k: (None if pd.isna(v) else (int(v) if k == "seed" else str(v))) for k, v in run.items()}
    return header, frame


def record_decision(store: Store, row: dict, created_at: datetime | None = None) -> str:
    """Store one gate decision; `row` has the gate_decisions columns but id and created_at. Returns the id."""
    created_at = created_at or datetime.now()
    decision_id = f"gate-{created_at:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}"
    full = {"id": decision_id, "created_at": created_at, **row}
    columns = ", ".join(full)

    def write(con: duckdb.DuckDBPyConnection) -> None:
        con.execute(f"INSERT INTO gate_decisions ({columns}) VALUES ({', '.join('?' * len(full))})",
                    list(full.values()))

    store.transaction(write)
    return decision_id


def gate_history(store: Store) -> pd.DataFrame:
    """Every gate decision, newest first: id, created_at, baseline, candidate (REFs and run ids), rules_hash,
    verdict, exit_code, counts (n_checks, n_failed, n_warned, n_not_comparable) and checks_json (one object
    per check, as in `harness gate --json`)."""
    return store.query("SELECT * FROM gate_decisions ORDER BY created_at DESC, id DESC")
