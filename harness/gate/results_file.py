"""A run's per-example results, in memory (`ResultSet`) and as an exported file (Parquet or JSONL).

The file holds one row per (candidate, variant, suite, example, metric entry): the metric's
per-example statistics, the prediction, and the fingerprints (dataset per row, model per
candidate, config hash in the header), so that CI can gate against a committed file with no store.

JSONL: the first line is `{"harness_results": {...header...}}`, then one JSON object per row.
Parquet: the same columns; the header is the schema metadata key `harness_results`.

A REF names a result set: `SOURCE[:CANDIDATE[:VARIANT]]`, where SOURCE is a results file, or a run
id, id prefix or tag in the store (`latest`: the newest run). A run with several candidate/variant
pairs needs the pair named, unless the other side of the gate names one that exists here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from harness.errors import HarnessError
from harness.files import decode_utf8, require_file

FORMAT = "harness-results"
VERSION = 1
HEADER_KEY = "harness_results"
SCHEMA = pa.schema([
    ("run_id", pa.string()), ("candidate", pa.string()), ("variant", pa.string()), ("suite", pa.string()),
    ("dataset_fingerprint", pa.string()), ("model_fingerprint", pa.string()), ("example_id", pa.string()),
    ("metric", pa.string()), ("options_json", pa.string()), ("stat_names", pa.list_(pa.string())),
    ("stats", pa.list_(pa.float64())), ("output", pa.string()), ("reference", pa.string()), ("error", pa.string()),
    ("reference_list", pa.list_(pa.string())),  # every reference where a suite gives several; null otherwise
])
COLUMNS = SCHEMA.names
REQUIRED = [c for c in COLUMNS if c != "reference_list"]  # files exported before reference_list still read
EntryKey = tuple[str, str, str]  # (suite, metric, options_json)


@dataclass(frozen=True)
class MetricEntry:
    """Per-example statistics of one metric entry of one suite, rows in `example_ids` order."""

    suite: str
    metric: str
    options_json: str
    stat_names: tuple[str, ...]
    example_ids: tuple[str, ...]
    stats: np.ndarray


@dataclass(frozen=True)
class ResultSet:
    """One candidate/variant of one run: what the gate compares."""

    source: str
    run_id: str
    candidate: str
    variant: str
    fingerprints: Mapping[str, str | None]  # suite -> dataset fingerprint
    entries: Mapping[EntryKey, MetricEntry]
    model_fingerprint: str | None = None
    header: Mapping[str, object] = field(default_factory=dict)

    def describe(self) -> dict:
        return {"source": self.source, "run_id": self.run_id, "candidate": self.candidate, "variant": self.variant,
                "config_hash": self.header.get("config_hash"), "model_fingerprint": self.model_fingerprint}


# files --------------------------------------------------------------------------------------------------
def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in {".parquet", ".jsonl"}:
        raise HarnessError(f"{path}: results files end in .parquet or .jsonl, got '{suffix or 'no extension'}'")
    return suffix[1:]


def write_results(path: Path, header: dict, frame: pd.DataFrame) -> int:
    """Write rows (columns `COLUMNS`) with the run's header; returns the number of rows."""
    path = Path(path)
    kind = _format_of(path)
    if path.is_dir():
        raise HarnessError(f"{path}: is a directory, not a file; give the results file to write")
    header = {"format": FORMAT, "version": VERSION, **header}
    table = pa.Table.from_pandas(frame[COLUMNS], schema=SCHEMA, preserve_index=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "parquet":
        meta = {HEADER_KEY.encode(): json.dumps(header, sort_keys=True).encode()}
        pq.write_table(table.replace_schema_metadata(meta), path)
    else:
        with path.open("w", encoding="utf-8") as out:
            out.write(json.dumps({HEADER_KEY: header}, sort_keys=True) + "\n")
            for row in table.to_pylist():
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return table.num_rows


def read_results(path: Path) -> tuple[dict, pd.DataFrame]:
    """(header, rows) of an exported results file."""
    path = Path(path)
    kind = _format_of(path)
    require_file(path, "results file", f"write one with `harness export RUN --out {path}`")
    not_ours = HarnessError(f"{path}: not a harness results file; write one with `harness export RUN --out FILE`")
    if kind == "parquet":
        try:
            table = pq.read_table(path)
            header = json.loads((table.schema.metadata or {})[HEADER_KEY.encode()])
        except (pa.ArrowException, OSError, KeyError, ValueError):
            raise not_ours from None
        if not isinstance(header, dict) or set(REQUIRED) - set(table.schema.names):
            raise not_ours
        return header, table.to_pandas()
    return _read_jsonl(path, not_ours)


def _read_jsonl(path: Path, not_ours: HarnessError) -> tuple[dict, pd.DataFrame]:
    lines = decode_utf8(path.read_bytes(), path).splitlines()
    rows = []
    for number, line in enumerate(lines, start=1):
        if number > 1 and not line.strip():
            continue
        try:
            row = json.loads(line or "null")
        except json.JSONDecodeError as exc:
            raise HarnessError(f"{path}:{number}: malformed JSON ({exc.msg})") from None
        if number == 1 and not (isinstance(row, dict) and isinstance(row.get(HEADER_KEY), dict)):
            raise not_ours
        if not isinstance(row, dict):
            raise HarnessError(f"{path}:{number}: expected a JSON object per line; re-export it with `harness export`")
        rows.append(row)
    if not rows:
        raise not_ours
    first, rows = rows[0], rows[1:]
    frame = pd.DataFrame(rows, columns=COLUMNS)
    missing = [c for c in ("suite", "example_id", "metric", "stats") if frame[c].isna().any()]
    if missing:
        raise HarnessError(f"{path}: rows without {', '.join(missing)}; re-export it with `harness export`")
    return first[HEADER_KEY], frame


# REFs and result sets ---------------------------------------------------------------------------------
def parse_ref(ref: str) -> tuple[str, str | None, str | None]:
    """`SOURCE[:CANDIDATE[:VARIANT]]` -> (source, candidate, variant); an existing file is a whole SOURCE."""
    if Path(ref).is_file():
        return ref, None, None
    source, _, rest = ref.partition(":")
    candidate, _, variant = rest.partition(":")
    if not source:
        raise HarnessError(f"'{ref}': give a run id, tag or results file before the ':'")
    return source, candidate or None, variant or None


def is_file_source(source: str) -> bool:
    return Path(source).is_file() or Path(source).suffix.lower() in {".parquet", ".jsonl"}


def load_ref(ref: str, from_store: Callable[[str], tuple[dict, pd.DataFrame]],
             prefer: tuple[str, str] | None = None) -> ResultSet:
    """The result set a REF names; `from_store(run_ref)` reads a run from the store when it is not a file."""
    source, candidate, variant = parse_ref(ref)
    header, frame = read_results(Path(source)) if is_file_source(source) else from_store(source)
    return result_set(ref, header, frame, candidate, variant, prefer)


def pairs_in(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return sorted({(str(c), str(v)) for c, v in zip(frame["candidate"], frame["variant"], strict=True)})


def choose_pair(ref: str, frame: pd.DataFrame, candidate: str | None, variant: str | None,
                prefer: tuple[str, str] | None) -> tuple[str, str]:
    pairs = pairs_in(frame)
    if not pairs:
        raise HarnessError(f"'{ref}': holds no per-example results; did the run finish any item?")
    fitting = [p for p in pairs if candidate in (None, p[0]) and variant in (None, p[1])]
    if len(fitting) == 1:
        return fitting[0]
    if prefer in fitting:
        return prefer
    listed = ", ".join(f"{c}:{v}" for c, v in pairs)
    if not fitting:
        raise HarnessError(f"'{ref}': no candidate/variant {candidate or '*'}:{variant or '*'} (it has {listed})")
    raise HarnessError(f"'{ref}': holds several candidate/variant pairs ({listed}); "
                       f"name one as {ref}:CANDIDATE:VARIANT")


def select_rows(ref: str, frame: pd.DataFrame, candidate: str | None, variant: str | None) -> pd.DataFrame:
    """The rows of the named candidate and/or variant (all rows when neither is named)."""
    if frame.empty:
        raise HarnessError(f"'{ref}': holds no per-example results; did the run finish any item?")
    keep = pd.Series(True, index=frame.index)
    if candidate:
        keep &= frame["candidate"] == candidate
    if variant:
        keep &= frame["variant"] == variant
    if not keep.any():
        listed = ", ".join(f"{c}:{v}" for c, v in pairs_in(frame)) or "none"
        raise HarnessError(f"'{ref}': no candidate/variant {candidate or '*'}:{variant or '*'} (it has {listed})")
    return frame[keep]


def result_set(ref: str, header: dict, frame: pd.DataFrame, candidate: str | None = None,
               variant: str | None = None, prefer: tuple[str, str] | None = None) -> ResultSet:
    """Pick one candidate/variant out of a run's rows and group them into metric entries."""
    cand, var = choose_pair(ref, frame, candidate, variant, prefer)
    rows = frame[(frame["candidate"] == cand) & (frame["variant"] == var)]
    entries = {}
    for (suite, metric, options), group in rows.groupby(["suite", "metric", "options_json"], sort=True):
        ids = tuple(str(i) for i in group["example_id"])
        if len(set(ids)) != len(ids):
            raise HarnessError(f"'{ref}': suite {suite} metric {metric} repeats example ids; re-export the run")
        entries[(suite, metric, options)] = MetricEntry(
            suite, metric, options, tuple(group["stat_names"].iloc[0]), ids,
            np.vstack([np.asarray(s, dtype=np.float64) for s in group["stats"]]))
    fingerprints = {str(s): (None if pd.isna(f) else str(f)) for s, f in
                    rows.groupby("suite", sort=True)["dataset_fingerprint"].first().items()}
    model = rows["model_fingerprint"].dropna()
    return ResultSet(source=ref, run_id=str(header.get("run_id") or rows["run_id"].iloc[0]), candidate=cand,
                     variant=var, fingerprints=fingerprints, entries=entries,
                     model_fingerprint=str(model.iloc[0]) if len(model) else None, header=dict(header))
