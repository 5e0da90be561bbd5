"""The store touches only files it made, never migrates on a read, and a busy store never starves a writer.

Each refusal goes through the CLI: exit 2, one `error:` line, no traceback, the file byte-identical and no
new file beside it (a team store: no new DuckLake snapshot).

Most of these are about the DuckDB file itself (foreign, SQLite, truncated files, files that do not exist,
the lock file, byte-identical reads) and stay file-only; the refusals of a newer schema, tags that would
hide a run, exact ids over tags and the lock-timeout setting run on both back-ends (`any_harness_store`).
"""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import numpy as np
import pytest
from cli_helper import cli, error_line
from pg_server import address_text, lake_snapshot

from harness.errors import HarnessError
from harness.records import ItemResult, MetricStats, Prediction, RunRecord
from harness.store import Store, TeamAddress, filelock, team
from harness.store.connection import lock_timeout
from harness.store.filelock import lock_path


def snapshot(path: Path | TeamAddress) -> tuple:
    """(sha256 of the file or None, the names in its folder); a team store: its latest DuckLake snapshot."""
    if isinstance(path, TeamAddress):
        return ("lake snapshot", lake_snapshot(path))
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
    return digest, sorted(p.name for p in path.parent.iterdir())


def refused(capsys, monkeypatch, path: Path | TeamAddress, *args: str) -> str:
    """Run `harness ARGS --db path`; assert a one-line refusal that left the folder as it was; the line."""
    before = snapshot(path)
    line = error_line(*cli(capsys, monkeypatch, *args, "--db", address_text(path)))
    assert snapshot(path) == before, "the file or its folder changed"
    return line


def run_record(run_id: str) -> RunRecord:
    return RunRecord(run_id, "exp", "exp.yaml", "{}", "hash", 0, None, None, "{}", "test")


def item(run_id: str, variant: str = "base", n: int = 3) -> ItemResult:
    preds = [Prediction(f"e{i}", f"input {i}", "ref", f"out {i}") for i in range(n)]
    stats = [MetricStats("accuracy", "{}", ["correct"], np.arange(n, dtype=float).reshape(n, 1) % 2)]
    return ItemResult(run_id, "tiny", variant, "suite", "done", dataset_fingerprint="fp", predictions=preds,
                      stats=stats)


def _two_runs(store: Store) -> Store:
    for run_id in ("exp-1111", "exp-2222"):
        store.start_run(run_record(run_id))
        store.write_item(item(run_id))
    return store


@pytest.fixture
def harness_store(tmp_path) -> Store:
    """A DuckDB file store with two runs (for the tests about the file itself)."""
    return _two_runs(Store(tmp_path / "h.duckdb"))


@pytest.fixture
def any_harness_store(any_store) -> Store:
    """The same two runs in a store of either back-end (each test taking it runs on both)."""
    return _two_runs(any_store)


def test_another_applications_duckdb_file_is_refused(tmp_path, capsys, monkeypatch):
    db = tmp_path / "other.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE customers (id INTEGER, name VARCHAR)")
        con.execute("INSERT INTO customers VALUES (1, 'a')")
    line = refused(capsys, monkeypatch, db, "runs")
    assert "another application" in line and "customers" in line and str(db) in line
    refused(capsys, monkeypatch, db, "review", "add-reviewer", "bob")  # a writing command neither


def test_a_foreign_file_with_its_own_runs_table_is_refused(tmp_path, capsys, monkeypatch):
    db = tmp_path / "theirs.duckdb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE runs (run_id VARCHAR, owner VARCHAR)")
        con.execute("INSERT INTO runs VALUES ('exp-1', 'them')")
    assert "another application" in refused(capsys, monkeypatch, db, "runs")
    refused(capsys, monkeypatch, db, "show", "exp-1")
    refused(capsys, monkeypatch, db, "tag", "exp-1", "mine")


def test_a_sqlite_file_is_refused_before_duckdb_opens_it(tmp_path, capsys, monkeypatch):
    db = tmp_path / "app.duckdb"
    with sqlite3.connect(db) as con:
        con.execute("CREATE TABLE runs (id INTEGER)")
    con.close()
    assert "SQLite" in refused(capsys, monkeypatch, db, "runs")
    refused(capsys, monkeypatch, db, "review", "add-reviewer", "bob")


@pytest.mark.parametrize("content", [b"run_id,status\nexp-1,finished\n", bytes(range(256)) * 64, b""],
                         ids=["text", "garbage", "empty"])
def test_a_file_that_is_not_duckdb_is_refused(tmp_path, capsys, monkeypatch, content):
    db = tmp_path / "notes.duckdb"
    db.write_bytes(content)
    line = refused(capsys, monkeypatch, db, "runs")
    assert str(db) in line and ("not a DuckDB file" in line or "empty" in line)
    refused(capsys, monkeypatch, db, "review", "add-reviewer", "bob")


@pytest.mark.parametrize("fraction", [0.002, 0.5])  # (a cut DuckDB never reads past goes unnoticed, harmlessly)
def test_a_truncated_store_read_by_show(harness_store, capsys, monkeypatch, fraction):
    data = harness_store.path.read_bytes()
    harness_store.path.write_bytes(data[:int(len(data) * fraction)])
    line = refused(capsys, monkeypatch, harness_store.path, "show", "exp-1111")
    assert "truncated" in line and str(harness_store.path) in line


def test_a_store_of_a_newer_schema_is_refused(any_harness_store, capsys, monkeypatch):
    harness_store = any_harness_store
    harness_store.transaction(lambda con: con.execute("INSERT INTO schema_version VALUES (99, now())"))
    monkeypatch.setattr(team, "RECHECK_S", 0.0)  # a team store's schema is looked at again every RECHECK_S seconds
    line = refused(capsys, monkeypatch, harness_store.path, "runs")
    assert "schema 99" in line and "newer than this harness" in line and "upgrade harness" in line
    refused(capsys, monkeypatch, harness_store.path, "tag", "exp-1111", "baseline")


@pytest.mark.parametrize("command", [["runs"], ["show", "exp-1"], ["export", "exp-1", "--out", "x.parquet"],
                                     ["gate", "--baseline", "a", "--candidate", "b"], ["review", "queues"],
                                     ["review", "reviewers"], ["run", "--resume", "exp-1"]],
                         ids=lambda c: "-".join(c[:2]))
def test_a_read_command_on_a_missing_store_creates_nothing(tmp_path, capsys, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "typo.duckdb"
    line = refused(capsys, monkeypatch, db, *command)
    assert "does not exist" in line and not db.exists() and not lock_path(db).exists()


def test_a_writing_command_into_a_missing_folder_is_one_line(tmp_path, capsys, monkeypatch):
    db = tmp_path / "no-such-folder" / "h.duckdb"
    error_line(*cli(capsys, monkeypatch, "review", "add-reviewer", "bob", "--db", str(db)), "does not exist")
    assert not db.parent.exists()


def test_a_read_command_never_migrates(harness_store, capsys, monkeypatch):
    """A store of an older schema (no store_meta yet): reading leaves it byte-identical; writing upgrades it."""
    def downgrade(con):
        con.execute("DROP TABLE store_meta")
        con.execute("DELETE FROM schema_version WHERE version = 6")

    harness_store.transaction(downgrade)
    before = snapshot(harness_store.path)
    code, out, err = cli(capsys, monkeypatch, "runs", "--db", str(harness_store.path))
    assert code == 0 and "exp-1111" in out, err
    assert snapshot(harness_store.path) == before
    assert Store(harness_store.path).query("SELECT value FROM store_meta")["value"].tolist() == ["harness"]


def test_a_tag_may_not_equal_or_shadow_a_run_id(any_harness_store, capsys, monkeypatch):
    harness_store = any_harness_store
    line = refused(capsys, monkeypatch, harness_store.path, "tag", "exp-1111", "exp-2222")
    assert "exp-2222" in line and "would hide run" in line
    refused(capsys, monkeypatch, harness_store.path, "tag", "exp-1111", "exp-2")  # a prefix of a run id
    code, out, _ = cli(capsys, monkeypatch, "tag", "exp-1111", "baseline", "--db", address_text(harness_store.path))
    assert code == 0 and "tagged exp-1111 as baseline" in out


def test_an_exact_run_id_wins_over_a_tag_of_the_same_name(any_harness_store, capsys, monkeypatch, tmp_path):
    """A store tagged before tags were checked: the tag `exp-2222` points at exp-1111."""
    harness_store = any_harness_store
    harness_store.transaction(lambda con: con.execute("INSERT INTO tags VALUES ('exp-2222', 'exp-1111', now())"))
    assert harness_store.resolve_run("exp-2222") == "exp-2222"
    code, out, err = cli(capsys, monkeypatch, "show", "exp-2222", "--db", address_text(harness_store.path))
    assert code == 0 and out.startswith("run exp-2222"), err
    out_file = tmp_path / "r.jsonl"
    code, out, err = cli(capsys, monkeypatch, "export", "exp-2222", "--out", str(out_file),
                         "--db", address_text(harness_store.path))
    assert code == 0 and "run exp-2222" in out, err


def test_a_bad_lock_timeout_is_one_clear_error(monkeypatch, any_harness_store):
    harness_store = any_harness_store
    monkeypatch.setenv("HARNESS_DB_LOCK_TIMEOUT", "abc")
    with pytest.raises(HarnessError, match="HARNESS_DB_LOCK_TIMEOUT='abc' is not a number of seconds"):
        harness_store.runs()
    for good, seconds in (("5", 5.0), ("inf", float("inf")), ("", 60.0)):
        monkeypatch.setenv("HARNESS_DB_LOCK_TIMEOUT", good)
        assert lock_timeout() == seconds


HOLD_LOCK_FILE = """
import fcntl, sys, time
with open(sys.argv[1], "a") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def hold_lock_file(store: Store, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK_FILE, str(lock_path(store.path)), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_wait_is_shown_and_a_bounded_wait_ends_in_one_line(harness_store, monkeypatch, capsys):
    monkeypatch.setattr(filelock, "NOTE_EVERY_S", 0.2)
    proc = hold_lock_file(harness_store, 1.0)
    try:
        harness_store.write_item(item("exp-1111", "lora"))  # waits the holder out (60 s bound)
    finally:
        proc.wait(timeout=30)
    assert "waiting for the store" in capsys.readouterr().err
    assert len(harness_store.table("items", ["exp-1111"])) == 2
    proc = hold_lock_file(harness_store, 5.0)
    try:
        with pytest.raises(HarnessError, match="stayed locked by another process"):
            Store(harness_store.path, timeout_s=0.3).runs()
    finally:
        proc.kill()
        proc.wait(timeout=30)


HAMMER = """
import sys, threading
from pathlib import Path
from harness.records import CandidateInfo
from harness.store import Store

store, stop, done = Store(sys.argv[1]), Path(sys.argv[2]), []

def work(i):
    while not stop.exists():
        store.write_candidate(CandidateInfo(f"hammer-{i}", "c", "ref", "causal", str(len(done)), 1))
        done.append(1)
        if len(done) == 20:
            print("busy", flush=True)

threads = [threading.Thread(target=work, args=(i,)) for i in range(int(sys.argv[3]))]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(len(done), flush=True)
"""


def test_a_writer_gets_the_store_while_another_process_writes_without_pause(harness_store, tmp_path):
    stop = tmp_path / "stop"
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(HAMMER), str(harness_store.path), str(stop), "12"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "busy", proc.stderr.read()
        writer = Store(harness_store.path, timeout_s=120)  # a generous bound: a fair store needs a fraction of it
        for n in range(5):
            writer.write_item(item("exp-2222", f"v{n}"))
    finally:
        stop.touch()
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert int(out.split()[-1]) > 20, "the other process kept writing meanwhile"
    assert len(Store(harness_store.path).table("items", ["exp-2222"])) == 6
