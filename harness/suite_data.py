"""Reading a suite's rows: local JSONL, CSV or Parquet files, or a Hugging Face dataset."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

from harness.config import SuiteConfig
from harness.errors import HarnessError

SPLIT_FRACTIONS = (0.70, 0.15, 0.15)


def load_rows(config: SuiteConfig, suite_path: Path) -> dict[str, list[dict]]:
    """Rows per split; a single `source` is split 70/15/15 with a seeded shuffle."""
    data = config.data
    if data.hf_dataset:
        return _hf_rows(data.hf_dataset, data.hf_config, suite_path)
    base = suite_path.parent
    if data.source:
        return split_rows(read_table(base / data.source), data.split_seed)
    rows = {}
    for split in ("train", "validation", "test"):
        name = getattr(data, split)
        if name:
            rows[split] = read_table(base / name)
    return rows


def split_rows(rows: list[dict], seed: int) -> dict[str, list[dict]]:
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_train = int(round(len(rows) * SPLIT_FRACTIONS[0]))
    n_val = int(round(len(rows) * SPLIT_FRACTIONS[1]))
    pick = lambda idx: [rows[i] for i in idx]  # noqa: E731
    return {
        "train": pick(order[:n_train]),
        "validation": pick(order[n_train : n_train + n_val]),
        "test": pick(order[n_train + n_val :]),
    }


def read_table(path: Path) -> list[dict]:
    if not path.is_file():
        raise HarnessError(f"{path}: data file not found; check the suite's 'data' paths")
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson"}:
        return _read_jsonl(path)
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    raise HarnessError(f"{path}: unsupported data format '{suffix}'; use .jsonl, .csv or .parquet")


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise HarnessError(f"{path}:{number}: invalid JSON ({exc.msg}); fix the line") from None
            if not isinstance(row, dict):
                raise HarnessError(f"{path}:{number}: expected a JSON object per line")
            rows.append(row)
    return rows


def _hf_rows(name: str, config_name: str | None, suite_path: Path) -> dict[str, list[dict]]:
    try:
        import datasets

        loaded = datasets.load_dataset(name, config_name)
    except Exception as exc:  # noqa: BLE001 - the datasets library raises many types for "unreachable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise HarnessError(f"{suite_path}: data.hf_dataset '{name}' cannot be loaded ({first})") from None
    rows = {split: list(loaded[split]) for split in loaded}
    if "validation" not in rows and "dev" in rows:
        rows["validation"] = rows.pop("dev")
    if "test" not in rows and "validation" in rows:
        rows["test"] = rows.pop("validation")
    return rows
