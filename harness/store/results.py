"""SQL for runs, candidates, training and per-example results. Every write is one bulk transaction."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import duckdb
import pandas as pd
import pyarrow as pa

from harness.records import CandidateInfo, ItemResult, RunRecord, TrainingResult

ITEM_KEY = "run_id = ? AND candidate = ? AND variant = ? AND suite = ?"


def changed(result: duckdb.DuckDBPyConnection) -> bool:
    """Whether an INSERT/UPDATE/DELETE just executed touched a row (its count; PostgreSQL tables of a team
    store have no RETURNING)."""
    row = result.fetchone()
    return bool(row and row[0])


def insert_arrow(con: duckdb.DuckDBPyConnection, table: str, rows: pa.Table) -> None:
    if rows.num_rows == 0:
        return
    con.register("_incoming", rows)
    try:
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _incoming")
    finally:
        con.unregister("_incoming")


def write_run(con: duckdb.DuckDBPyConnection, run: RunRecord) -> None:
    con.execute("DELETE FROM runs WHERE run_id = ?", [run.run_id])
    insert_arrow(con, "runs", pa.Table.from_pylist([dataclasses.asdict(run)]))


def set_run_status(con: duckdb.DuckDBPyConnection, run_id: str, status: str) -> None:
    finished = datetime.now() if status in {"finished", "failed"} else None
    con.execute("UPDATE runs SET status = ?, finished_at = ? WHERE run_id = ?", [status, finished, run_id])


def write_candidate(con: duckdb.DuckDBPyConnection, info: CandidateInfo) -> None:
    con.execute("DELETE FROM candidates WHERE run_id = ? AND candidate = ?", [info.run_id, info.candidate])
    insert_arrow(con, "candidates", pa.Table.from_pylist([dataclasses.asdict(info)]))


def write_training(con: duckdb.DuckDBPyConnection, result: TrainingResult) -> None:
    key = [result.run_id, result.candidate, result.suite]
    where = "run_id = ? AND candidate = ? AND suite = ?"
    con.execute(f"DELETE FROM adapters WHERE {where}", key)
    con.execute(f"DELETE FROM training_log WHERE {where}", key)
    row = {k: v for k, v in dataclasses.asdict(result).items() if k != "log"}
    insert_arrow(con, "adapters", pa.Table.from_pylist([row]))
    log = [{"run_id": key[0], "candidate": key[1], "suite": key[2], **entry} for entry in result.log]
    insert_arrow(con, "training_log", pa.Table.from_pylist(log))


def write_item(con: duckdb.DuckDBPyConnection, item: ItemResult, dataset_row: dict | None) -> None:
    """Replace everything stored for one work item; idempotent on (run, candidate, variant, suite)."""
    key = [item.run_id, item.candidate, item.variant, item.suite]
    for table in ("predictions", "example_stats", "scores", "items"):
        con.execute(f"DELETE FROM {table} WHERE {ITEM_KEY}", key)
    base = {"run_id": key[0], "candidate": key[1], "variant": key[2], "suite": key[3]}
    insert_arrow(con, "predictions", _predictions_table(item, base))
    insert_arrow(con, "example_stats", _stats_table(item, base))
    insert_arrow(con, "scores", pa.Table.from_pylist([{**base, **dataclasses.asdict(s)} for s in item.scores]))
    n_failed = sum(1 for p in item.predictions if p.error)
    n_missed = sum(1 for p in item.predictions if p.extracted is False)
    summary = {**base, "status": item.status, "reason": item.reason,
               "dataset_fingerprint": item.dataset_fingerprint, "n_examples": len(item.predictions),
               "n_failed": n_failed, "n_extract_missed": n_missed, "wall_s": item.wall_s, "model_s": item.model_s,
               "finished_at": datetime.now(), "fingerprint": item.fingerprint, "reused_from": item.reused_from,
               "n_truncated": item.n_truncated, "n_near_ties": item.n_near_ties}
    insert_arrow(con, "items", pa.Table.from_pylist([summary]))
    if dataset_row:
        con.execute("DELETE FROM datasets WHERE fingerprint = ?", [dataset_row["fingerprint"]])
        insert_arrow(con, "datasets", pa.Table.from_pylist([dataset_row]))


def _predictions_table(item: ItemResult, base: dict) -> pa.Table:
    columns = {f.name: [getattr(p, f.name) for p in item.predictions] for f in dataclasses.fields(
        item.predictions[0])} if item.predictions else {}
    if not columns:
        return pa.table({})
    n = len(item.predictions)
    for key, value in base.items():
        columns[key] = [value] * n
    columns["choice_scores"] = pa.array(columns["choice_scores"], type=pa.list_(pa.float64()))
    columns["reference_list"] = pa.array(columns["reference_list"], type=pa.list_(pa.string()))
    return pa.table(columns)


def _stats_table(item: ItemResult, base: dict) -> pa.Table:
    ids = [p.example_id for p in item.predictions]
    parts = []
    for ms in item.stats:
        n = len(ids)
        parts.append(pa.table({
            **{k: [v] * n for k, v in base.items()},
            "example_id": ids,
            "metric": [ms.metric] * n,
            "options_json": [ms.options_json] * n,
            "stat_names": [ms.stat_names] * n,
            "stats": pa.array(list(ms.stats.astype("float64")), type=pa.list_(pa.float64())),
        }))
    return pa.concat_tables(parts) if parts else pa.table({})


def has_adapter(con: duckdb.DuckDBPyConnection, run_id: str, candidate: str, suite: str) -> bool:
    row = con.execute("SELECT count(*) FROM adapters WHERE run_id = ? AND candidate = ? AND suite = ?",
                      [run_id, candidate, suite]).fetchone()
    return bool(row and row[0])


def done_items(con: duckdb.DuckDBPyConnection, run_id: str) -> set[tuple[str, str, str]]:
    rows = con.execute(
        "SELECT candidate, variant, suite FROM items WHERE run_id = ? AND status IN ('done', 'not_applicable')",
        [run_id],
    ).fetchall()
    return {tuple(r) for r in rows}


def find_unfinished_run(con: duckdb.DuckDBPyConnection, config_hash: str) -> str | None:
    row = con.execute(
        "SELECT run_id FROM runs WHERE config_hash = ? AND status <> 'finished' ORDER BY started_at DESC LIMIT 1",
        [config_hash],
    ).fetchone()
    return row[0] if row else None


def find_finished_run(con: duckdb.DuckDBPyConnection, config_hash: str) -> str | None:
    """The newest finished run of this configuration, when no run of it is unfinished."""
    row = con.execute(
        "SELECT run_id, status FROM runs WHERE config_hash = ? ORDER BY started_at DESC LIMIT 1", [config_hash],
    ).fetchone()
    return row[0] if row and row[1] == "finished" else None


def runs_starting_with(con: duckdb.DuckDBPyConnection, prefix: str) -> list[str]:
    """Run ids equal to or starting with `prefix` (starts_with, not LIKE: run ids contain '_'), exact first."""
    rows = con.execute("SELECT run_id FROM runs WHERE starts_with(run_id, ?) ORDER BY run_id <> ?, run_id",
                       [prefix, prefix]).fetchall()
    return [r[0] for r in rows]


def resolve_run(con: duckdb.DuckDBPyConnection, run_ref: str) -> str | int:
    """The run id `run_ref` names: an exact run id, else a tag, else the only id it prefixes; when there
    is no such run, how many ids it prefixes (0 or more than one)."""
    found = runs_starting_with(con, run_ref)
    if run_ref in found:
        return run_ref
    tagged = con.execute("SELECT run_id FROM tags WHERE name = ?", [run_ref]).fetchone()
    if tagged:
        return str(tagged[0])
    return found[0] if len(found) == 1 else len(found)


def frame(con: duckdb.DuckDBPyConnection, sql: str, params: list | None = None) -> pd.DataFrame:
    return con.execute(sql, params or []).df()
