"""Reading a suite's rows: local JSONL, CSV or Parquet files, or a Hugging Face dataset."""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

from harness.config import SuiteConfig
from harness.errors import HarnessError
from harness.files import decode_utf8, require_file

SPLIT_FRACTIONS = (0.70, 0.15, 0.15)


def load_rows(config: SuiteConfig, suite_path: Path) -> dict[str, list[dict]]:
    """Rows per split; a single `source` is split 70/15/15 with a seeded shuffle."""
    data = config.data
    id_field = config.fields.get("id", "id")
    if data.hf_dataset:
        rows = _hf_rows(data.hf_dataset, data.hf_config, suite_path)
        for split, split_rows_ in rows.items():
            _check_unique_ids(split_rows_, list(range(1, len(split_rows_) + 1)), "row", id_field,
                              f"{suite_path}: data.hf_dataset '{data.hf_dataset}' ({split} split)")
        return rows
    base = suite_path.parent
    if data.source:
        return split_rows(read_table(base / data.source, id_field), data.split_seed)
    rows = {}
    for split in ("train", "validation", "test"):
        name = getattr(data, split)
        if name:
            rows[split] = read_table(base / name, id_field)
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


def read_table(path: Path, id_field: str = "id") -> list[dict]:
    """The rows of a data file; example ids (in `id_field`) must be unique within the file."""
    require_file(path, "data file", "check the suite's 'data' paths")
    suffix = path.suffix.lower()
    if suffix in {".jsonl", ".ndjson"}:
        rows, numbers, unit = *_read_jsonl(path), "line"
    elif suffix == ".csv":
        rows, numbers, unit = *_read_csv(path), "line"
    elif suffix == ".parquet":
        rows = _read_parquet(path)
        numbers, unit = list(range(1, len(rows) + 1)), "row"
    else:
        raise HarnessError(f"{path}: unsupported data format '{suffix}'; use .jsonl, .csv or .parquet")
    _check_unique_ids(rows, numbers, unit, id_field, str(path))
    return rows


def _check_unique_ids(rows: list[dict], numbers: list[int], unit: str, id_field: str, where: str) -> None:
    first: dict[str, int] = {}
    for row, number in zip(rows, numbers, strict=True):
        if id_field not in row:
            continue
        key = str(row[id_field])
        if key in first:
            place = f"{where}:{number}" if unit == "line" else f"{where}: row {number}"
            raise HarnessError(f"{place}: duplicate example id {key!r} (field '{id_field}'), first at {unit} "
                               f"{first[key]}; give every example its own id")
        first[key] = number


def _read_jsonl(path: Path) -> tuple[list[dict], list[int]]:
    rows, numbers = [], []
    for number, line in enumerate(decode_utf8(path.read_bytes(), path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise HarnessError(f"{path}:{number}: invalid JSON ({exc.msg}); fix the line") from None
        if not isinstance(row, dict):
            raise HarnessError(f"{path}:{number}: expected a JSON object per line")
        rows.append(row)
        numbers.append(number)
    return rows, numbers


def _read_csv(path: Path) -> tuple[list[dict], list[int]]:
    text = decode_utf8(path.read_bytes(), path).removeprefix("\ufeff")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows, numbers = [], []
    try:
        for row in reader:
            if None in row:
                raise HarnessError(f"{path}:{reader.line_num}: more values than the header has columns; "
                                   "quote values that contain commas")
            rows.append(row)
            numbers.append(reader.line_num)
    except csv.Error as exc:
        raise HarnessError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None
    return rows, numbers


def _read_parquet(path: Path) -> list[dict]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError) as exc:
        first = " ".join(str(exc).split()) or type(exc).__name__
        raise HarnessError(f"{path}: not a readable Parquet file ({first}); re-export it, or use .jsonl or .csv"
                           ) from None


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
