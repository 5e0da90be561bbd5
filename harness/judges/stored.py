"""Calibration records read back from the store as objects (the store keeps their JSON: harness/store/judges.py)."""

from __future__ import annotations

from harness.judges.calibration import CalibrationRecord
from harness.store import Store
from harness.store.judges import latest_calibration_json


def latest_calibration(store: Store, judge_ref: str, rubric: str) -> CalibrationRecord | None:
    """The newest calibration record of a judge reference and a rubric name, or None."""
    text = latest_calibration_json(store, judge_ref, rubric)
    return None if text is None else CalibrationRecord.from_json(text)
