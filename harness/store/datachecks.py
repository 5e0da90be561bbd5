"""SQL for the data checks recorded with a run (`data_checks`, schema 10): one row per finding.

A finding is anything with the fields of `harness.datacheck.checks.Finding` (suite, check, severity,
message, rows); the store sits below the data checks, so it reads those fields and never imports them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

import duckdb
import pandas as pd
import pyarrow as pa

from harness.store.results import insert_arrow

COLUMNS = ["run_id", "suite", "check_kind", "severity", "message", "rows", "created_at"]
SCHEMA = pa.schema([("run_id", pa.string()), ("suite", pa.string()), ("check_kind", pa.string()),
                    ("severity", pa.string()), ("message", pa.string()), ("rows", pa.list_(pa.string())),
                    ("created_at", pa.timestamp("us"))])


class FindingLike(Protocol):
    suite: str
    check: str
    severity: str
    message: str
    rows: list[str]


def write(con: duckdb.DuckDBPyConnection, run_id: str, findings: Iterable[FindingLike]) -> int:
    """Replace the run's findings with these (the caller's one transaction); returns how many were written."""
    now = datetime.now()
    rows = [{"run_id": run_id, "suite": f.suite, "check_kind": f.check, "severity": f.severity,
             "message": f.message, "rows": [str(r) for r in f.rows], "created_at": now} for f in findings]
    con.execute("DELETE FROM data_checks WHERE run_id = ?", [run_id])
    insert_arrow(con, "data_checks", pa.Table.from_pylist(rows, schema=SCHEMA))
    return len(rows)


def read(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> pd.DataFrame:
    """The runs' findings in the order they were found; `rows` holds lists of FILE:LINE."""
    frame = con.execute(f"""
        SELECT {', '.join(COLUMNS)} FROM data_checks WHERE run_id IN (SELECT unnest(?::VARCHAR[]))
        ORDER BY run_id, rowid""", [list(run_ids)]).df()
    rows = frame["rows"].map(lambda rows: [] if rows is None else [str(r) for r in rows])  # numpy -> list
    return frame.assign(rows=rows.astype(object))[COLUMNS]
