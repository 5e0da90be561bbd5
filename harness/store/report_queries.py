"""The report's reads (and the benchmark's bulk write): every SQL statement the Streamlit report needs.

Each function opens the store for one short transaction through `Store.transaction`, so a report
never holds the file while a run wants to write. Functions return pandas frames, except
`example_stats`, which returns Arrow (its list column of statistics flattens to numpy cheaply).
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from harness.store import Store
from harness.store.results import insert_arrow

_RUN_FILTER = "run_id IN (SELECT unnest(?::VARCHAR[]))"
_TABLES = {"runs", "candidates", "adapters", "training_log", "items", "predictions", "example_stats", "scores",
           "datasets"}


def _frame(store: Store, sql: str, params: list | None = None) -> pd.DataFrame:
    return store.transaction(lambda con: con.execute(sql, params or []).df())


def runs(store: Store) -> pd.DataFrame:
    """Every run, newest first, with how many candidates and work items it has so far."""
    return _frame(store, """
        SELECT r.run_id, r.name, r.status, r.started_at, r.finished_at, r.seed, r.config_hash, r.git_commit,
               r.git_dirty, r.experiment_path, r.command, r.config_json, r.versions_json,
               (SELECT count(*) FROM candidates c WHERE c.run_id = r.run_id) AS n_candidates,
               (SELECT count(*) FROM items i WHERE i.run_id = r.run_id AND i.status = 'done') AS n_items_done,
               (SELECT count(*) FROM items i WHERE i.run_id = r.run_id AND i.status = 'failed') AS n_items_failed
        FROM runs r ORDER BY r.started_at DESC, r.run_id""")


def candidate_names(store: Store) -> list[str]:
    """Every candidate name in the store (the colour palette is assigned over these)."""
    frame = _frame(store, "SELECT DISTINCT candidate FROM candidates UNION SELECT DISTINCT candidate FROM items")
    return sorted(frame["candidate"].astype(str))


def scores(store: Store, run_ids: list[str]) -> pd.DataFrame:
    """Scores of the runs; `position` orders a suite's scores as the suite lists its metrics."""
    return _frame(store, f"""
        SELECT s.*, s.rowid AS position FROM scores s WHERE {_RUN_FILTER}
        ORDER BY run_id, suite, position""", [run_ids])


def items(store: Store, run_ids: list[str]) -> pd.DataFrame:
    return _frame(store, f"SELECT * FROM items WHERE {_RUN_FILTER} ORDER BY run_id, candidate, variant, suite",
                  [run_ids])


def candidates(store: Store, run_ids: list[str]) -> pd.DataFrame:
    return _frame(store, f"SELECT * FROM candidates WHERE {_RUN_FILTER} ORDER BY run_id, candidate", [run_ids])


def adapters(store: Store, run_ids: list[str]) -> pd.DataFrame:
    return _frame(store, f"SELECT * FROM adapters WHERE {_RUN_FILTER} ORDER BY run_id, candidate, suite", [run_ids])


def training_log(store: Store, run_ids: list[str]) -> pd.DataFrame:
    return _frame(store, f"""
        SELECT * FROM training_log WHERE {_RUN_FILTER} ORDER BY run_id, candidate, suite, split, step""", [run_ids])


def datasets(store: Store, run_ids: list[str]) -> pd.DataFrame:
    """The datasets the runs' work items read, with their fingerprints."""
    return _frame(store, f"""
        SELECT DISTINCT d.* FROM datasets d JOIN items i ON i.dataset_fingerprint = d.fingerprint
        WHERE i.{_RUN_FILTER} ORDER BY d.suite""", [run_ids])


def latency(store: Store, run_ids: list[str]) -> pd.DataFrame:
    """Mean and 95th-percentile prediction latency per run, candidate, variant and suite."""
    return _frame(store, f"""
        SELECT run_id, candidate, variant, suite, avg(latency_s) AS latency_s,
               quantile_cont(latency_s, 0.95) AS latency_p95_s, count(*) AS n
        FROM predictions WHERE {_RUN_FILTER} AND error IS NULL
        GROUP BY ALL ORDER BY run_id, candidate, variant, suite""", [run_ids])


def example_stats(store: Store, run_ids: list[str], suites: list[str], metrics: list[str]) -> pa.Table:
    """Per-example statistics (run_id, candidate, variant, suite, metric, options_json, example_id, stats)."""
    sql = f"""
        SELECT run_id, candidate, variant, suite, metric, options_json, example_id, stats
        FROM example_stats
        WHERE {_RUN_FILTER} AND suite IN (SELECT unnest(?::VARCHAR[])) AND metric IN (SELECT unnest(?::VARCHAR[]))
        ORDER BY run_id, candidate, variant, suite, metric, options_json, example_id"""
    return store.transaction(lambda con: con.sql(sql, params=[run_ids, suites, metrics]).to_arrow_table())


def predictions(store: Store, run_id: str, suite: str, candidate: str, variant: str) -> pd.DataFrame:
    """One work item's predictions, in example order."""
    return _frame(store, """
        SELECT example_id, input, reference, output, raw_output, extracted, latency_s, error FROM predictions
        WHERE run_id = ? AND suite = ? AND candidate = ? AND variant = ? ORDER BY example_id""",
                  [run_id, suite, candidate, variant])


def bulk_insert(store: Store, tables: dict[str, pa.Table]) -> None:
    """Append Arrow tables (name -> rows) in one transaction; used to build benchmark stores."""

    unknown = set(tables) - _TABLES
    if unknown:
        raise ValueError(f"unknown table(s) {sorted(unknown)}")

    def write(con):
        for name, rows in tables.items():
            insert_arrow(con, name, rows)

    store.transaction(write)
