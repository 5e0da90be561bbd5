"""Judges: each judge x rubric's newest calibration against the reviewers (harness judge calibrate).

Plain functions returning frames; reports/pages/judges.py lays them out. Text (inputs, outputs) is
returned as plain strings for st.dataframe, which shows it inert.
"""

from __future__ import annotations

import math

import pandas as pd

from harness.judges.calibration import CalibrationRecord
from harness.store import Store, reviews
from harness.store.judges import calibrations_frame

SUMMARY = ("weighted_kappa", "cohen_kappa", "krippendorff_alpha", "spearman", "raw_agreement", "base_rate")
DETAIL = ("raw_agreement", "base_rate", "cohen_kappa", "weighted_kappa", "weighted_kappa_linear",
          "krippendorff_alpha", "spearman", "kendall")


def latest_records(store: Store) -> dict[str, tuple[str, CalibrationRecord]]:
    """'JUDGE × RUBRIC' -> (created_at, newest record), in the order judges were first calibrated."""
    frame = calibrations_frame(store)
    out: dict[str, tuple[str, CalibrationRecord]] = {}
    for row in frame.itertuples(index=False):  # newest first: the first row of a pair is its latest
        label = f"{row.judge_ref} × {row.rubric}"
        if label not in out:
            out[label] = (str(row.created_at), CalibrationRecord.from_json(row.record_json))
    return out


def _num(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 4)


def summary_frame(records: dict[str, tuple[str, CalibrationRecord]]) -> pd.DataFrame:
    """One row per judge × rubric: agreement with the consensus, the human ceiling, the bias checks."""
    rows = []
    for label, (created, record) in records.items():
        meta = record.meta or {}
        row = {"judge × rubric": label, "calibrated at": created, "queue": meta.get("queue_id"),
               "items": record.n_items, "failed": record.failed}
        for name in SUMMARY:
            row[name] = _num(record.vs_consensus[name].value)
        row["ceiling weighted_kappa"] = _num(record.ceiling["weighted_kappa"].value)
        row["position consistency"] = _num(meta.get("position_consistency"))
        row["length spearman"] = _num((meta.get("length_correlation") or {}).get("spearman_rho"))
        rows.append(row)
    return pd.DataFrame(rows)


def agreement_frame(record: CalibrationRecord) -> pd.DataFrame:
    """Each statistic with its interval: judge vs consensus beside the humans' ceiling."""
    rows = []
    for name in DETAIL:
        j, c = record.vs_consensus[name], record.ceiling[name]
        rows.append({"statistic": name, "judge": _num(j.value), "judge low": _num(j.low), "judge high": _num(j.high),
                     "ceiling": _num(c.value), "ceiling low": _num(c.low), "ceiling high": _num(c.high)})
    return pd.DataFrame(rows)


def confusion_frame(record: CalibrationRecord) -> pd.DataFrame:
    """Rows: human consensus; columns: judge."""
    return pd.DataFrame(record.confusion, index=[f"people {x}" for x in record.labels],
                        columns=[f"judge {x}" for x in record.labels]).reset_index(names="consensus")


def disagreements(store: Store, record: CalibrationRecord, top: int = 10) -> pd.DataFrame:
    """The items where the judge's grade is farthest from the people's consensus, with their text."""
    meta = record.meta or {}
    rows = [r for r in meta.get("items", []) if r.get("grade") is not None and r.get("consensus") is not None]
    if not rows:
        return pd.DataFrame(columns=["example_id", "judge", "judge grade", "people", "gap", "input", "output"])
    texts = {}
    if meta.get("queue_id") and reviews.queue_exists(store, meta["queue_id"]):
        texts = {i.item_id: i for i in reviews.items(store, meta["queue_id"])}
    out = []
    for r in rows:
        item = texts.get(r["item_id"])
        out.append({"example_id": r["example_id"], "judge": r["judge"], "judge grade": _num(r["grade"]),
                    "people": r["consensus"], "gap": _num(abs(r["grade"] - r["consensus"])),
                    "input": item.input if item else "", "output": item.output_a if item else ""})
    frame = pd.DataFrame(out).sort_values("gap", ascending=False, kind="stable")
    return frame.head(top).reset_index(drop=True)
