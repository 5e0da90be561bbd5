"""The DuckDB store: the only place that speaks SQL. Each call opens the file for one short transaction."""

from __future__ import annotations

import os

import pandas as pd

from harness.errors import HarnessError
from harness.records import CandidateInfo, ItemResult, RunRecord, TrainingResult
from harness.store import results
from harness.store.connection import connect, default_path, retrying


class Store:
    def __init__(self, path: str | os.PathLike | None = None):
        self.path = default_path(path)

    def transaction(self, fn):
        """Run fn(connection) in one short transaction (retried while another process holds the file).

        Modules under harness/store/ use this; nothing outside harness/store/ writes SQL.
        """
        return retrying(fn, self.path)

    def query(self, sql: str, params: list | None = None) -> pd.DataFrame:
        return self.transaction(lambda con: results.frame(con, sql, params))

    _write = transaction
    _read = query

    # runs -------------------------------------------------------------------------------------------
    def start_run(self, run: RunRecord) -> None:
        self._write(lambda con: results.write_run(con, run))

    def set_run_status(self, run_id: str, status: str) -> None:
        self._write(lambda con: results.set_run_status(con, run_id, status))

    def find_unfinished_run(self, config_hash: str) -> str | None:
        return self._write(lambda con: results.find_unfinished_run(con, config_hash))

    def runs(self) -> pd.DataFrame:
        return self._read("SELECT * FROM runs ORDER BY started_at DESC")

    def run(self, run_ref: str) -> dict:
        """A run by id, unique id prefix or tag name."""
        run_id = self.resolve_run(run_ref)
        return self._read("SELECT * FROM runs WHERE run_id = ?", [run_id]).iloc[0].to_dict()

    def resolve_run(self, run_ref: str) -> str:
        tagged = self._read("SELECT run_id FROM tags WHERE name = ?", [run_ref])
        if len(tagged):
            return str(tagged.iloc[0, 0])
        # starts_with, not LIKE: run ids contain '_' (a LIKE wildcard); an exact id wins over longer ids it prefixes
        found = self._read("SELECT run_id FROM runs WHERE starts_with(run_id, ?)", [run_ref])
        if run_ref in set(found["run_id"]):
            return run_ref
        if len(found) == 1:
            return str(found.iloc[0, 0])
        if len(found) > 1:
            raise HarnessError(f"run '{run_ref}' is ambiguous ({len(found)} runs match); give more of the id")
        raise HarnessError(f"run '{run_ref}' not found in {self.path}; `harness runs` lists the runs")

    def tag(self, name: str, run_ref: str) -> str:
        run_id = self.resolve_run(run_ref)

        def write(con):
            con.execute("DELETE FROM tags WHERE name = ?", [name])
            con.execute("INSERT INTO tags VALUES (?, ?, now())", [name, run_id])

        self._write(write)
        return run_id

    # results ----------------------------------------------------------------------------------------
    def write_candidate(self, info: CandidateInfo) -> None:
        self._write(lambda con: results.write_candidate(con, info))

    def write_training(self, result: TrainingResult) -> None:
        self._write(lambda con: results.write_training(con, result))

    def write_item(self, item: ItemResult, dataset_row: dict | None = None) -> None:
        self._write(lambda con: results.write_item(con, item, dataset_row))

    def done_items(self, run_id: str) -> set[tuple[str, str, str]]:
        return self._write(lambda con: results.done_items(con, run_id))

    def adapter(self, run_id: str, candidate: str, suite: str) -> dict | None:
        df = self._read("SELECT * FROM adapters WHERE run_id = ? AND candidate = ? AND suite = ?",
                        [run_id, candidate, suite])
        return df.iloc[0].to_dict() if len(df) else None

    def table(self, name: str, run_ids: list[str] | None = None) -> pd.DataFrame:
        """A whole result table, optionally limited to some runs."""
        if name not in {"items", "scores", "predictions", "example_stats", "adapters", "training_log",
                        "candidates", "datasets", "runs", "tags"}:
            raise ValueError(f"unknown table {name}")
        if run_ids is None:
            return self._read(f"SELECT * FROM {name}")
        return self._read(f"SELECT * FROM {name} WHERE run_id IN (SELECT unnest(?))", [list(run_ids)])

    def scores(self, run_id: str) -> pd.DataFrame:
        return self._read(
            "SELECT * FROM scores WHERE run_id = ? ORDER BY suite, metric, score, candidate, variant", [run_id]
        )


__all__ = ["Store", "connect", "default_path"]
