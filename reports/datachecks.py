"""Data checks recorded with a run (`harness run` stores them; harness/datacheck/ finds them): the findings
of one run for the Runs page, and the overlap warning the Leaderboard and Lift pages show above scores
that test rows shared with training data may inflate."""

from __future__ import annotations

import pandas as pd

from harness.store import Store

FINDING_COLUMNS = ["severity", "suite", "check", "message", "n_rows", "rows"]
LEAK_COLUMNS = ["run_id", "suite", "severity", "n_rows"]


def findings_frame(store: Store, run_id: str) -> pd.DataFrame:
    """The run's findings, errors first: severity, suite, check, message, how many rows, the rows (FILE:LINE)."""
    found = store.data_checks([run_id])
    if found.empty:
        return pd.DataFrame(columns=FINDING_COLUMNS)
    frame = found.rename(columns={"check_kind": "check"})
    frame = frame.assign(n_rows=frame["rows"].map(len),
                         _order=(frame["severity"] != "error").astype(int))
    return frame.sort_values("_order", kind="stable")[FINDING_COLUMNS].reset_index(drop=True)


def counts_text(findings: pd.DataFrame) -> str:
    """'2 findings: 1 error, 1 warning' (or 'no findings')."""
    if findings.empty:
        return "no findings"
    by = findings["severity"].value_counts()
    parts = [f"{by[s]} {s}{'' if by[s] == 1 else 's'}" for s in ("error", "warning") if s in by]
    return f"{len(findings)} finding{'' if len(findings) == 1 else 's'}: {', '.join(parts)}"


def leakage(store: Store, run_ids: list[str]) -> pd.DataFrame:
    """Overlap findings (test rows also in train/validation or the LoRA data) of warning or error severity."""
    found = store.data_checks(list(run_ids))
    leaks = found[(found["check_kind"] == "overlap") & found["severity"].isin(["warning", "error"])]
    if leaks.empty:
        return pd.DataFrame(columns=LEAK_COLUMNS)
    grouped = leaks.groupby(["run_id", "suite"], sort=False).agg(  # a test row in train and validation counts once
        severity=("severity", lambda s: "error" if (s == "error").any() else "warning"),
        n_rows=("rows", lambda rows: len({r for each in rows for r in each})))
    return grouped.reset_index()[LEAK_COLUMNS]


def leakage_warning(store: Store, run_ids: list[str]) -> str | None:
    """The marker text when any of the runs has overlap findings (None when none has)."""
    leaks = leakage(store, run_ids)
    if leaks.empty:
        return None
    where = "; ".join(f"run {r.run_id} suite {r.suite} ({r.severity}, {r.n_rows} test rows)"
                      for r in leaks.itertuples(index=False))
    return (f"Data checks found test rows that also appear in training data: {where}. Scores on those suites, "
            "and a LoRA lift most of all, may look better than they are; the Runs page lists the rows.")
