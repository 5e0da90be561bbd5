"""The DuckDB store: the only place that speaks SQL. Each call opens the file for one short transaction.

`Store(path)` writes: it may create the file and upgrade its schema. `Store(path, create=False)` only reads:
it opens the file read-only and refuses a missing one. Either refuses a file it did not create (another
application's DuckDB file, SQLite, text, a truncated file) and a schema newer than the code
(harness/store/schema.py). Transactions take the store in turn (harness/store/filelock.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from harness.errors import HarnessError
from harness.records import CandidateInfo, ItemResult, RunRecord, TrainingResult
from harness.store import results, reuse_sql, team
from harness.store.address import TeamAddress, is_team, parse
from harness.store.connection import FOREVER, connect, default_path, is_busy, lock_timeout, retrying
from harness.store.filelock import Wait


def address_of(path: str | os.PathLike | TeamAddress | None = None) -> Path | TeamAddress:
    """The store `--db` / HARNESS_DB names: a DuckDB file path, or a team store (harness/store/address.py)."""
    if isinstance(path, TeamAddress):
        return path
    raw = path if path is not None else os.environ.get("HARNESS_DB")
    if raw is not None and is_team(raw):
        return parse(raw)
    return default_path(path)


class Store:
    def __init__(self, path: str | os.PathLike | None = None, *, create: bool = True,
                 timeout_s: float | None = None):
        """create: False for reading commands (never create, migrate or write); timeout_s: the longest wait
        for a busy store (None: HARNESS_DB_LOCK_TIMEOUT, default 60 s; FOREVER: a run's writes)."""
        self.path = address_of(path)
        self.create = create
        self.timeout_s = timeout_s

    def transaction(self, fn):
        """Run fn(connection) in one short transaction (waiting its turn while another process holds the file).

        Modules under harness/store/ use this; nothing outside harness/store/ writes SQL or holds a
        connection: callers use the module functions per table family (harness/store/reviews.py, claims.py,
        report_queries.py, gates.py) or the methods below, each one short transaction.
        """
        if isinstance(self.path, TeamAddress):
            wait = Wait(self.path, lock_timeout() if self.timeout_s is None else self.timeout_s)
            return team.retrying(fn, self.path, wait, self.create)
        if self.timeout_s is None:
            return retrying(fn, self.path, create=self.create)
        return retrying(fn, self.path, self.timeout_s, create=self.create)

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

    def find_finished_run(self, config_hash: str) -> str | None:
        return self._write(lambda con: results.find_finished_run(con, config_hash))

    def runs(self) -> pd.DataFrame:
        return self._read("SELECT * FROM runs ORDER BY started_at DESC")

    def run(self, run_ref: str) -> dict:
        """A run by id, unique id prefix or tag name."""
        run_id = self.resolve_run(run_ref)
        return self._read("SELECT * FROM runs WHERE run_id = ?", [run_id]).iloc[0].to_dict()

    def resolve_run(self, run_ref: str) -> str:
        """An exact run id first, then a tag, then a unique id prefix."""
        run_id = self.transaction(lambda con: results.resolve_run(con, run_ref))
        if isinstance(run_id, str):
            return run_id
        if run_id:
            raise HarnessError(f"run '{run_ref}' is ambiguous ({run_id} runs match); give more of the id")
        raise HarnessError(f"run '{run_ref}' not found in {self.path}; `harness runs` lists the runs")

    def tag(self, name: str, run_ref: str) -> str:
        """Tag a run; a tag may not equal, or be the start of, a run id (it would hide that run)."""
        run_id = self.resolve_run(run_ref)

        def write(con):
            shadowed = results.runs_starting_with(con, name)
            if shadowed:
                raise HarnessError(f"tag '{name}' would hide run '{shadowed[0]}' (a run id that is or starts with "
                                   "the tag); choose another tag name")
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

    # reuse by content (harness/reuse/) ---------------------------------------------------------------
    def item_source(self, fingerprint: str, exclude_run: str) -> str | None:
        """The newest other run holding a done item with this fingerprint."""
        return self._write(lambda con: reuse_sql.item_source(con, fingerprint, exclude_run))

    def copy_item(self, source: str, target: str, key: tuple[str, str, str], with_adapter: bool = False) -> None:
        """One item (candidate, variant, suite) copied from run `source` into `target` in one transaction;
        `with_adapter`: also the adapter row of (candidate, suite) when `target` has none."""
        def copy(con):
            reuse_sql.copy_item(con, source, target, key)
            if with_adapter and not results.has_adapter(con, target, key[0], key[2]):
                reuse_sql.copy_adapter(con, source, target, key[0], key[2])

        self._write(copy)

    def adapter_sources(self, recipe: str, exclude_run: str) -> list[dict]:
        return self._write(lambda con: reuse_sql.adapter_sources(con, recipe, exclude_run))

    def copy_adapter(self, source: str, target: str, candidate: str, suite: str) -> None:
        self._write(lambda con: reuse_sql.copy_adapter(con, source, target, candidate, suite))

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

    # data checks (harness/store/datachecks.py) ------------------------------------------------------
    def write_data_checks(self, run_id: str, findings) -> int:
        """Replace a run's data check findings (harness.datacheck Finding objects) in one transaction."""
        from harness.store import datachecks

        return self._write(lambda con: datachecks.write(con, run_id, findings))

    def data_checks(self, run_ids: list[str]) -> pd.DataFrame:
        """The runs' data check findings: run_id, suite, check_kind, severity, message, rows, created_at."""
        from harness.store import datachecks

        return self.transaction(lambda con: datachecks.read(con, run_ids))


__all__ = ["FOREVER", "Store", "TeamAddress", "address_of", "connect", "default_path", "is_busy"]
