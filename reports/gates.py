"""Gate history: the CI verdicts stored by `harness gate`."""

from __future__ import annotations

import json

import pandas as pd

from harness.store import Store
from harness.store.gates import gate_history


def gate_history_frame(store: Store) -> pd.DataFrame:
    """The gate history as a frame (one row per decision, newest first)."""
    frame = gate_history(store)
    return frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(frame)


def decisions(history: pd.DataFrame) -> pd.DataFrame:
    """The history without the per-check JSON (one row per gate decision)."""
    return history.drop(columns=[c for c in ("checks_json",) if c in history.columns])


def decision_checks(history: pd.DataFrame, decision_id: str) -> pd.DataFrame:
    """The checks of one decision, from its checks_json, most telling columns first."""
    row = history[history["id"] == decision_id]
    if row.empty or "checks_json" not in row or not row["checks_json"].iloc[0]:
        return pd.DataFrame()
    checks = pd.DataFrame(json.loads(row["checks_json"].iloc[0]))
    first = [c for c in ("name", "status", "baseline", "candidate", "difference", "low", "high", "p_value",
                         "reason") if c in checks.columns]
    return checks[first + [c for c in checks.columns if c not in first]]
