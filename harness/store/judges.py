"""Judge calibration records in the store (table judge_calibrations, migration 7).

A record is stored as `CalibrationRecord.to_json()` (harness.judges.calibration) with every NaN (an
undefined statistic) written as JSON null, so the text is valid JSON; `CalibrationRecord.from_json` turns
the nulls back into NaN (harness.judges.stored reads records back as objects). Rows are keyed by the
judge's fingerprint, the prompt's hash and the rubric's hash, and carry the judge reference and the
rubric's name, by which `latest_calibration_json` finds the newest record of a (judge, rubric) pair.
Every function takes a `Store` and runs as one short transaction. The store does not import the judges:
a record is anything with `key`, `rubric`, `n_items` and `to_json()`.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import datetime
from typing import Any, Protocol

import duckdb
import pandas as pd

from harness.store import Store


class RecordLike(Protocol):
    key: Any  # judge_fingerprint, prompt_hash, rubric_hash
    rubric: str
    n_items: int

    def to_json(self) -> str: ...


def _nan_to_null(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _nan_to_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_null(v) for v in value]
    return value


def record_text(record: RecordLike) -> str:
    """The record as strict JSON (NaN written as null)."""
    return json.dumps(_nan_to_null(json.loads(record.to_json())), sort_keys=True, allow_nan=False)


def save_calibration(store: Store, record: RecordLike, judge_ref: str, queue_id: str | None = None,
                     created_at: datetime | None = None) -> str:
    """Store one calibration record; returns its id."""
    created_at = created_at or datetime.now()
    record_id = f"cal-{created_at:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:8]}"
    key = record.key
    row = [record_id, created_at, judge_ref, key.judge_fingerprint, key.prompt_hash, key.rubric_hash,
           record.rubric, queue_id, record.n_items, record_text(record)]

    def write(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("INSERT INTO judge_calibrations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)

    store.transaction(write)
    return record_id


def latest_calibration_json(store: Store, judge_ref: str, rubric: str) -> str | None:
    """The newest record (JSON) of a judge reference and a rubric name, or None (also when there is no store)."""
    if not store.path.exists():
        return None

    def read(con: duckdb.DuckDBPyConnection):
        return con.execute("SELECT record_json FROM judge_calibrations WHERE judge_ref = ? AND rubric = ? "
                           "ORDER BY created_at DESC, id DESC LIMIT 1", [judge_ref, rubric]).fetchone()

    row = store.transaction(read)
    return None if row is None else str(row[0])


def calibrations_frame(store: Store) -> pd.DataFrame:
    """Every record, newest first: id, created_at, judge_ref, the key, rubric, queue_id, n_items, record_json."""
    if not store.path.exists():
        return pd.DataFrame(columns=["id", "created_at", "judge_ref", "judge_fingerprint", "prompt_hash",
                                     "rubric_hash", "rubric", "queue_id", "n_items", "record_json"])
    return store.transaction(lambda con: con.execute(
        "SELECT * FROM judge_calibrations ORDER BY created_at DESC, id DESC").df())
