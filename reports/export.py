"""Every table the report shows can be downloaded: CSV and Parquet bytes of a frame."""

from __future__ import annotations

import io

import pandas as pd


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Index as columns and odd objects (dicts, mixed lists) as text, so any frame writes."""
    flat = frame.reset_index() if not isinstance(frame.index, pd.RangeIndex) else frame.copy()
    for column in flat.columns:
        if flat[column].dtype == object:
            kinds = {type(v) for v in flat[column].dropna()}
            if kinds - {str}:
                flat[column] = flat[column].map(lambda v: v if v is None or isinstance(v, str) else str(v))
    flat.columns = [str(c) for c in flat.columns]
    return flat


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return _plain(frame).to_csv(index=False).encode("utf-8")


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    _plain(frame).to_parquet(buffer, index=False)
    return buffer.getvalue()
