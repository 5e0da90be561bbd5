"""The store: round trips, idempotent writes, migrations, run references (on both back-ends: the `store`
fixture is tests/pg_server.py's any_store), and lock retry (about the DuckDB file, file-only)."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from harness.errors import HarnessError
from harness.records import CandidateInfo, ItemResult, MetricStats, Prediction, RunRecord, Score, TrainingResult
from harness.store import Store
from harness.store import connection as store_connection
from harness.store import team as store_team
from harness.store.connection import retrying
from harness.store.migrations import MIGRATIONS


def run_record(run_id: str, config_hash: str = "h1") -> RunRecord:
    return RunRecord(run_id, "exp", "exp.yaml", "{}", config_hash, 7, "abc123", True, '{"python": "3"}',
                     "harness run exp.yaml")


def item(run_id: str = "r1", variant: str = "base", status: str = "done") -> ItemResult:
    preds = [
        Prediction("e1", "prompt 1", "positive", "positive", 1, [-2.0, -0.5], 0.01),
        Prediction("e2", "prompt 2", "negative", "", None, None, 0.02, error="RuntimeError: boom"),
    ]
    stats = [MetricStats("accuracy", "{}", ["correct"], np.array([[1.0], [0.0]]))]
    scores = [Score("accuracy", "{}", "accuracy", 0.5, 0.0, 1.0, 2, "percentile", 0.95, None)]
    return ItemResult(run_id, "tiny", variant, "suite", status, None, "fp1", preds, stats, scores, 1.5, 1.0)


@pytest.fixture
def store(any_store) -> Store:
    """A new store, a DuckDB file or a team store: each test taking it runs on both back-ends."""
    return any_store


@pytest.fixture
def file_store(tmp_path) -> Store:
    """A DuckDB file store, for the tests about the file itself (another process holding its lock)."""
    return Store(tmp_path / "store.duckdb")


def test_default_path_comes_from_harness_db(tmp_path):
    assert Store().path == tmp_path / "harness.duckdb"  # conftest points HARNESS_DB into tmp_path
    assert Store(tmp_path / "x.duckdb").path == tmp_path / "x.duckdb"


def test_run_round_trip_and_status(store):
    store.start_run(run_record("r1"))
    row = store.run("r1")
    assert (row["name"], row["config_hash"], row["seed"], row["git_dirty"], row["status"]) == (
        "exp", "h1", 7, True, "running")
    assert store.find_unfinished_run("h1") == "r1" and store.find_unfinished_run("other") is None
    store.set_run_status("r1", "finished")
    row = store.run("r1")
    assert row["status"] == "finished" and row["finished_at"] is not None
    assert store.find_unfinished_run("h1") is None


def test_item_round_trip_is_idempotent(store):
    store.start_run(run_record("r1"))
    store.write_item(item(), {"fingerprint": "fp1", "suite": "suite", "path": "s.yaml", "n_train": 1,
                              "n_validation": 0, "n_test": 2})
    store.write_item(item(), {"fingerprint": "fp1", "suite": "suite", "path": "s.yaml", "n_train": 1,
                              "n_validation": 0, "n_test": 2})
    items = store.table("items", ["r1"])
    assert len(items) == 1
    row = items.iloc[0]
    assert (row["status"], row["n_examples"], row["n_failed"], row["dataset_fingerprint"]) == ("done", 2, 1, "fp1")
    preds = store.table("predictions").sort_values("example_id")
    assert list(preds["example_id"]) == ["e1", "e2"]
    assert list(preds.iloc[0]["choice_scores"]) == [-2.0, -0.5] and preds.iloc[0]["choice_index"] == 1
    assert preds.iloc[1]["error"] == "RuntimeError: boom" and pd.isna(preds.iloc[1]["choice_scores"])
    stats = store.table("example_stats").sort_values("example_id")
    assert [list(s) for s in stats["stats"]] == [[1.0], [0.0]] and list(stats.iloc[0]["stat_names"]) == ["correct"]
    scores = store.scores("r1")
    assert len(scores) == 1 and (scores.iloc[0]["value"], scores.iloc[0]["low"], scores.iloc[0]["high"]) == (
        0.5, 0.0, 1.0)
    assert len(store.table("datasets")) == 1
    assert store.done_items("r1") == {("tiny", "base", "suite")}


def test_items_of_other_keys_are_kept(store):
    store.write_item(item(variant="base"))
    store.write_item(item(variant="lora", status="failed"))
    store.write_item(item(run_id="r2"))
    assert len(store.table("items")) == 3 and len(store.table("predictions", ["r1"])) == 4
    assert store.done_items("r1") == {("tiny", "base", "suite")}  # a failed item is redone on resume


def test_candidate_and_training_round_trip(store):
    store.write_candidate(CandidateInfo("r1", "tiny", "some/ref", "causal", "fp", 1000))
    store.write_candidate(CandidateInfo("r1", "tiny", "some/ref", "causal", "fp2", 1000))
    log = [{"step": 1, "split": "train", "loss": 2.0, "elapsed_s": 0.1},
           {"step": 1, "split": "validation", "loss": 1.9, "elapsed_s": 0.2}]
    training = TrainingResult("r1", "tiny", "suite", "/a/adapter", "hash", 10, 1000, 1, 50, 500.0, 0.1, 10.0,
                              2.0, 1.9, log)
    store.write_training(training)
    store.write_training(training)
    assert list(store.table("candidates")["fingerprint"]) == ["fp2"]
    adapter = store.adapter("r1", "tiny", "suite")
    assert adapter["adapter_hash"] == "hash" and adapter["final_val_loss"] == 1.9
    assert store.adapter("r1", "tiny", "other") is None
    assert sorted(store.table("training_log")["split"]) == ["train", "validation"]


def test_migrations_applied_once(store):
    store.runs()
    store_connection._schemas.clear()  # as a new process would: check the store's version again
    store_team._schemas.clear()
    store.runs()
    versions = store.query("SELECT version FROM schema_version ORDER BY version")
    assert list(versions["version"]) == sorted(n for n, _ in MIGRATIONS)  # each exactly once


def test_tag_and_resolve_run(store):
    for run_id in ("exp_a-1", "exp_a-10", "exp_b-2"):
        store.start_run(run_record(run_id))
    assert store.resolve_run("exp_a-1") == "exp_a-1"  # exact id, though it prefixes exp_a-10
    assert store.resolve_run("exp_b") == "exp_b-2"
    with pytest.raises(HarnessError, match="ambiguous"):
        store.resolve_run("exp_a")
    with pytest.raises(HarnessError, match="not found"):
        store.resolve_run("nope")
    with pytest.raises(HarnessError, match="not found"):
        store.resolve_run("exp%a")  # no LIKE wildcards
    assert store.tag("baseline", "exp_b") == "exp_b-2"
    assert store.resolve_run("baseline") == "exp_b-2" and store.run("baseline")["run_id"] == "exp_b-2"
    store.tag("baseline", "exp_a-10")  # moving a tag
    assert store.resolve_run("baseline") == "exp_a-10" and len(store.table("tags")) == 1
    with pytest.raises(HarnessError, match="not found"):
        store.tag("x", "missing")


HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("ready", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def hold(path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_write_waits_while_another_process_holds_the_file(file_store):  # file-only: DuckDB's own file lock
    store = file_store
    store.runs()  # create the file
    proc = hold(store.path, 1.0)
    try:
        started = time.monotonic()
        store.write_item(item())
        waited = time.monotonic() - started
    finally:
        proc.wait(timeout=30)
    assert waited > 0.3, "the write should have waited for the other process"
    assert len(store.table("items")) == 1


def test_lock_that_stays_is_a_clear_error(file_store):  # file-only: DuckDB's own file lock
    store = file_store
    store.runs()
    proc = hold(store.path, 3.0)
    try:
        with pytest.raises(HarnessError, match="stayed locked by another process"):
            retrying(lambda con: con.execute("SELECT 1").fetchall(), store.path, timeout_s=0.3)
    finally:
        proc.kill()
        proc.wait(timeout=30)
