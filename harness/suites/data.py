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


Places = dict[str, list[str]]  # per split, where each row is: "FILE:LINE" (JSONL, CSV) or "FILE row N"


def load_rows(config: SuiteConfig, suite_path: Path) -> dict[str, list[dict]]:
    """Rows per split; a single `source` is split 70/15/15 with a seeded shuffle."""
    return load_rows_with_places(config, suite_path)[0]


def load_rows_with_places(config: SuiteConfig, suite_path: Path) -> tuple[dict[str, list[dict]], Places]:
    """Rows per split and, beside them, each row's place in its file (its own line number, whatever the shuffle)."""
    data = config.data
    id_field = config.fields.get("id", "id")
    if data.hf_dataset:
        rows = _hf_rows(data.hf_dataset, data.hf_config, suite_path)
        where = {split: f"{suite_path}: data.hf_dataset '{data.hf_dataset}' ({split} split)" for split in rows}
        for split, split_rows_ in rows.items():
            _check_unique_ids(split_rows_, list(range(1, len(split_rows_) + 1)), "row", str(id_field), where[split])
        return rows, {split: [f"{where[split]} row {n}" for n in range(1, len(r) + 1)] for split, r in rows.items()}
    base = suite_path.parent
    if data.source:
        rows, places = read_table_with_places(base / data.source, str(id_field))
        order = split_order(len(rows), data.split_seed)
        return ({split: [rows[i] for i in idx] for split, idx in order.items()},
                {split: [places[i] for i in idx] for split, idx in order.items()})
    out, out_places = {}, {}
    for split in ("train", "validation", "test"):
        name = getattr(data, split)
        if name:
            out[split], out_places[split] = read_table_with_places(base / name, str(id_field))
    return out, out_places


def split_order(n: int, seed: int) -> dict[str, list[int]]:
    """The positions (in the file) of each split's rows: a seeded shuffle cut 70/15/15."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_train = int(round(n * SPLIT_FRACTIONS[0]))
    n_val = int(round(n * SPLIT_FRACTIONS[1]))
    return {"train": order[:n_train], "validation": order[n_train : n_train + n_val], "test": order[n_train + n_val :]}


def split_rows(rows: list[dict], seed: int) -> dict[str, list[dict]]:
    return {split: [rows[i] for i in idx] for split, idx in split_order(len(rows), seed).items()}


def read_table(path: Path, id_field: str = "id") -> list[dict]:
    """The rows of a data file; example ids (in `id_field`) must be unique within the file."""
    return read_table_with_places(path, id_field)[0]


def read_table_with_places(path: Path, id_field: str = "id") -> tuple[list[dict], list[str]]:
    """The rows of a data file and where each is (`FILE:LINE`, or `FILE row N` for Parquet)."""
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
    return rows, [f"{path}:{n}" if unit == "line" else f"{path} row {n}" for n in numbers]


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
