"""The team store (DuckLake with its catalog in PostgreSQL): addresses, the same store API on both back-ends,
one grade per reviewer and item under concurrency, `harness store copy` and `harness store maintain`.

The PostgreSQL server comes from tests/pg_server.py (a real PostgreSQL 15 on loopback, skipped with a reason
when it or the extension wheels are missing).
"""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pg_server as pg
import pytest
from cli_helper import cli, error_line
from review_seed import CANDIDATES, RUN_ID, SUITE, item_result, seed_store

from harness import review
from harness.errors import HarnessError
from harness.records import RunRecord
from harness.review.auth import add_account
from harness.review.rubrics import load_rubric
from harness.store import Store, TeamAddress, address_of
from harness.store.address import parse
from harness.store.team import team_statement

why_not = pg.why_not  # the fixtures (pg_server, team_address, any_store, ...) come through tests/conftest.py
needs_team = pytest.mark.skipif(why_not() is not None, reason=why_not() or "")


# addresses (no server needed) ------------------------------------------------------------------------------
def test_an_address_gives_postgres_fields_and_a_data_path_and_hides_the_password():
    found = parse("ducklake:postgres:host=db.internal port=5433 dbname=evals user=ci password=s3cret "
                  "data_path=s3:/bucket/lake")  # s3:/ as pathlib leaves it: put back
    assert found.dsn == "host=db.internal port=5433 dbname=evals user=ci password=s3cret"
    assert found.data_path == "s3://bucket/lake"
    assert "s3cret" not in str(found) and "password=***" in str(found)
    assert isinstance(address_of(str(Path("ducklake:postgres:dbname=x"))), TeamAddress)
    assert isinstance(address_of("harness.duckdb"), Path)
    assert address_of(found) is found  # a parsed address keeps its password (str() hides it)
    assert parse(found.full()) == found


@pytest.mark.parametrize(("text", "names"), [
    ("ducklake:postgres:host=h user=u", "dbname"),
    ("ducklake:postgres:host=h dbname=x colour=red", "colour"),
    ("ducklake:postgres:host dbname=x", "'host'"),
    ("ducklake:sqlite:x.db", "ducklake:postgres:"),
])
def test_a_bad_address_is_one_error_naming_what_to_fix(text, names):
    with pytest.raises(HarnessError, match=names):
        parse(text)


def test_keyed_tables_go_to_postgres_and_the_rest_to_ducklake_without_primary_keys():
    where, sql = team_statement("CREATE TABLE review_grades (queue_id VARCHAR, item_id VARCHAR, "
                                "PRIMARY KEY (queue_id, item_id))")
    assert where == "pg" and sql.startswith("CREATE TABLE IF NOT EXISTS pg.public.review_grades")
    where, sql = team_statement("CREATE TABLE runs (run_id VARCHAR PRIMARY KEY, seed BIGINT, PRIMARY KEY (seed))")
    assert where == "lake" and "PRIMARY KEY" not in sql and "run_id VARCHAR" in sql
    where, sql = team_statement("ALTER TABLE reviewers ADD COLUMN must_change_password BOOLEAN DEFAULT false")
    assert where == "pg" and "ADD COLUMN IF NOT EXISTS must_change_password" in sql


@needs_team
def test_an_unreachable_server_is_one_error_line(capsys, monkeypatch):
    address = f"ducklake:postgres:host=127.0.0.1 port={pg._free_port()} dbname=nowhere user=postgres"
    error_line(*cli(capsys, monkeypatch, "runs", "--db", address), "cannot reach PostgreSQL", "port=")


# the same API on both back-ends (any_store: tests/pg_server.py) -------------------------------------------
def _run(store: Store, run_id: str = RUN_ID) -> None:
    store.start_run(RunRecord(run_id, "t", "x.yaml", "{}", "hash", 0, None, None, "{}", "test"))


def test_runs_items_and_tags_round_trip(any_store):
    _run(any_store)
    any_store.write_item(item_result(CANDIDATES[0], "base"))
    any_store.write_item(item_result(CANDIDATES[0], "base"))  # rewritten, not doubled
    any_store.set_run_status(RUN_ID, "finished")
    assert any_store.done_items(RUN_ID) == {(CANDIDATES[0], "base", SUITE)}
    assert len(any_store.table("predictions", [RUN_ID])) == 12
    assert any_store.tag("best", RUN_ID[:8]) == RUN_ID
    assert any_store.run("best")["status"] == "finished"
    reader = Store(any_store.path, create=False)
    assert list(reader.runs()["run_id"]) == [RUN_ID]


def test_one_grade_per_reviewer_and_item_under_concurrent_submits(any_store):
    _seed(any_store)
    queue, items = review.create_queue(any_store, review.QueueRequest(
        RUN_ID, SUITE, load_rubric("pass_fail"), sample=4, overlap=3, candidates=[f"{CANDIDATES[0]}:base"]))
    add_account(any_store, "alice")
    outcomes: list[str] = []

    def grade():
        outcomes.append(review.submit(any_store, queue, items[0].item_id, "alice", {"overall": "pass"}))

    threads = [threading.Thread(target=grade) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = any_store.query("SELECT reviewer FROM review_grades WHERE item_id = ?", [items[0].item_id])
    assert list(stored["reviewer"]) == ["alice"]
    assert sorted(outcomes).count("stored") == 1


def _seed(store: Store) -> None:
    _run(store)
    for candidate in CANDIDATES:
        store.write_item(item_result(candidate, "base"))
    store.set_run_status(RUN_ID, "finished")


@needs_team
def test_a_reader_never_creates_a_team_store(pg_server, tmp_path, capsys, monkeypatch):
    address = pg_server.address(pg_server.new_database(), tmp_path)
    error_line(*cli(capsys, monkeypatch, "runs", "--db", address), "no team store")
    fresh = pg_server.address(pg_server.new_database())
    monkeypatch.delenv("HARNESS_DATA_PATH", raising=False)
    with pytest.raises(HarnessError, match="data path"):
        Store(fresh).runs()


# moving up ---------------------------------------------------------------------------------------------------
def test_store_copy_gives_the_same_show_table_and_leaderboard(team_address, tmp_path, capsys, monkeypatch):
    from reports.leaderboard import leaderboard_frame

    source = seed_store(tmp_path / "demo.duckdb")
    queue, items = review.create_queue(source, review.QueueRequest(RUN_ID, SUITE, load_rubric("pass_fail"),
                                                                   sample=3, overlap=1))
    add_account(source, "bob")
    review.submit(source, queue, items[0].item_id, "bob", {"overall": "fail"})
    code, out, err = cli(capsys, monkeypatch, "store", "copy", "--from", str(source.path), "--to", team_address)
    assert code == 0, err
    assert "review_grades 1" in out
    shows = [cli(capsys, monkeypatch, "show", RUN_ID, "--db", db) for db in (str(source.path), team_address)]
    assert shows[0][0] == 0 and shows[0][1] == shows[1][1]
    frames = [leaderboard_frame(store, [RUN_ID], n_resamples=200) for store in (source, Store(team_address))]
    key = ["candidate", "variant", "suite"]
    pd.testing.assert_frame_equal(*(f.sort_values(key).reset_index(drop=True) for f in frames), check_dtype=False)
    team = Store(team_address)
    assert len(team.query("SELECT * FROM review_grades")) == 1
    code, out, err = cli(capsys, monkeypatch, "store", "copy", "--from", str(source.path), "--to", team_address)
    error_line(code, out, err, "runs.run_id", "nothing was copied")
    assert len(team.table("predictions")) == len(source.table("predictions"))


def test_store_maintain_keeps_every_row(team_address, capsys, monkeypatch):
    store = Store(team_address)
    _seed(store)
    before = len(store.table("example_stats"))
    code, out, err = cli(capsys, monkeypatch, "store", "maintain", "--db", team_address)
    assert code == 0, err
    assert "merged adjacent files" in out
    assert len(store.table("example_stats")) == before > 0


def test_the_report_server_gets_the_whole_team_address(team_address):
    from harness.cli.report_commands import server_env

    _seed(Store(team_address))
    env = server_env(address_of(team_address).resolve())
    assert address_of(env["HARNESS_DB"]) == address_of(team_address)
    assert env["HARNESS_AUTH"] == "open"  # no accounts yet
    assert len(Store(env["HARNESS_DB"], create=False).runs()) == 1


@pytest.mark.slow  # about a minute (three processes load torch at once); see also tests/test_team_concurrency.py
def test_three_runs_write_one_team_store_at_once(team_address, tmp_path, causal_dir):
    """Three `harness run` processes on three tiny experiments, one team store: every run finishes, and every
    item holds exactly its examples' rows (none partial, none doubled)."""
    import subprocess

    from test_runner import harness_command, write_experiment

    procs = []
    for n in range(3):
        folder = tmp_path / f"exp{n}"
        folder.mkdir()
        path = write_experiment(folder, {"llama": causal_dir}, ["cls", "gen"], variants="[base]", name=f"exp{n}")
        procs.append(subprocess.Popen([harness_command(), "run", str(path), "--db", team_address, "--no-reuse"],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    errors = [line for out in outputs for line in out.splitlines() if "rror" in line]
    assert [proc.returncode for proc in procs] == [0, 0, 0], errors
    store = Store(team_address, create=False)
    runs = store.runs()
    assert sorted(runs["name"]) == ["exp0", "exp1", "exp2"] and set(runs["status"]) == {"finished"}
    items = store.query("SELECT i.run_id, i.suite, i.n_examples, count(p.example_id) AS rows FROM items i "
                        "LEFT JOIN predictions p USING (run_id, candidate, variant, suite) "
                        "GROUP BY ALL ORDER BY ALL")
    assert len(items) == 6 and (items["rows"] == items["n_examples"]).all(), items


def test_a_writer_killed_mid_run_leaves_nothing_half_written_and_resumes(team_address, tmp_path, causal_dir):
    import signal
    import subprocess
    import time

    from test_runner import N_TEST, harness_command, write_experiment

    from harness.runner import run_experiment

    path = write_experiment(tmp_path, {"llama": causal_dir}, ["cls", "gen"], lora="steps: 40")
    proc = subprocess.Popen([harness_command(), "run", str(path), "--db", team_address], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    store = Store(team_address)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            found = store.query("SELECT count(*) AS n FROM items WHERE status = 'done'") \
                if len(store.runs()) else pd.DataFrame({"n": [0]})
            if int(found["n"].iloc[0]) >= 1:
                break
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    (run_id,) = store.runs()["run_id"]
    before = store.table("items", [run_id])
    assert 1 <= len(before) < 4 and store.run(run_id)["status"] == "running", before
    for row in before.itertuples():  # every item there is whole: all its examples' rows
        rows = store.query("SELECT count(*) AS n FROM predictions WHERE run_id = ? AND candidate = ? AND variant = ? "
                           "AND suite = ?", [run_id, row.candidate, row.variant, row.suite])
        assert int(rows["n"].iloc[0]) == N_TEST
    assert run_experiment(path, store) == (run_id, "finished")
    assert len(store.table("items", [run_id])) == 4 and len(store.table("predictions", [run_id])) == 4 * N_TEST
