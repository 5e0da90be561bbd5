"""A team as it works at once on one team store (issue 14): three `harness run` processes on three small
experiments (the session's tiny in-process-built llama), and thirty reviewers on two report servers grading
while they write; one writer is killed with SIGKILL inside an item's commit and resumed.

The grading page is Streamlit, which talks only over its websocket protocol, so the reviewers do not click
through it. Each report server is a real `harness report` server (reports/server.py through
`streamlit_command`, on the team store through `server_env`), started in a process that also runs its 15
reviewers as threads: the page's own calls (review.desk, which claims the next item, then review.submit),
on the store the page would use (HARNESS_DB), sharing that process's DuckDB database and writer turn with
the server's own sessions, as a Streamlit server's script threads do. Every reviewer first logs in over
HTTP on its server (the login form, then a websocket handshake with the session cookie is accepted).

The queue has 400 items, each to be graded by 3 of the 30 reviewers (overlap < reviewers, so over-grading
has room to happen): 1,200 grades, 40 per reviewer on average (each grades what the claims give them).
Every tenth grade a reviewer also sends one for a random item, as a page left open does; it must be stored
only into a free slot. The killed writer stops inside the transaction that writes its second finished item:
every row sent (DuckLake may have written the Parquet files), COMMIT not yet; its resume is the same
`harness run` command.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from review_seed import CANDIDATES, RUN_ID, item_result, own_password, seed_store
from test_auth_server import free_port, log_in, websocket_status
from test_runner import N_TEST, harness_command, write_experiment

from harness import review
from harness.cli.report_commands import server_env, streamlit_command
from harness.review.rubrics import load_rubric
from harness.store import Store, address_of

ROOT = Path(__file__).resolve().parents[1]
N_ITEMS, OVERLAP, PER_SERVER = 400, 3, 15  # 30 reviewers x 40 grades = 400 items x 3 = 1,200 grades
NAMES = [f"rev{i:02d}" for i in range(2 * PER_SERVER)]
STALE_EVERY = 10  # every 10th grade a reviewer also sends one for a random item (a page left open)

# `harness run ...` in a process whose store stops inside the transaction that writes its second finished
# item: that item's rows are all written (DuckLake may have its Parquet files already), its COMMIT not sent.
# The marker file says which item; the test SIGKILLs the process there.
HANG_IN_COMMIT = r"""
import json, sys, time
from pathlib import Path
from harness.store import results

marker, real, done = Path(sys.argv[1]), results.write_item, []

def write_item(con, item, dataset_row):
    real(con, item, dataset_row)
    if item.status == "done" and item.predictions:
        done.append(item)
        if len(done) == 2:
            marker.write_text(json.dumps([item.run_id, item.candidate, item.variant, item.suite]))
            time.sleep(600)

results.write_item = write_item
sys.argv = ["harness", *sys.argv[2:]]
from harness.cli import main
main()
"""

# A report server and its reviewers in one process: the reviewer threads wait for the go file, grade
# until the queue has nothing left for them, and write what the harness answered to the out file; the main
# thread runs the Streamlit server as `streamlit run` does.
SERVER_WITH_REVIEWERS = r"""
import json, os, random, sys, threading, time, traceback
from pathlib import Path

names, queue_id, out, stale_every = sys.argv[1].split(","), sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
go = out.with_suffix(".go")
record = {"submits": [], "errors": []}
lock = threading.Lock()

def grade(name):
    from harness import review
    from harness.records.review import Account
    from harness.store import Store, reviews

    store, account, rng = Store(os.environ["HARNESS_DB"]), Account(name, "reviewer"), random.Random(name)
    count, ids = 0, None
    while not go.exists():
        time.sleep(0.05)
    while True:
        desk = review.desk(store, account, queue_id)
        if desk.item is None:
            return
        outcome = review.submit(store, desk.queue, desk.item.item_id, name, {"overall": rng.choice(["pass", "fail"])})
        with lock:
            record["submits"].append([desk.item.item_id, name, outcome, "claimed"])
        count += 1
        if count % stale_every == 0:
            ids = ids or [i.item_id for i in reviews.items(store, queue_id)]
            stale = rng.choice(ids)
            outcome = review.submit(store, desk.queue, stale, name, {"overall": "pass"})
            with lock:
                record["submits"].append([stale, name, outcome, "stale"])

def work(name):
    try:
        grade(name)
    except BaseException:
        record["errors"].append(f"{name}: {traceback.format_exc()}")

def reviewers():
    threads = [threading.Thread(target=work, args=(name,), daemon=True) for name in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.with_suffix(".tmp").write_text(json.dumps(record))
    out.with_suffix(".tmp").rename(out)

threading.Thread(target=reviewers, daemon=True).start()
sys.argv = ["streamlit", *sys.argv[5:]]
from streamlit.web.cli import main
main(prog_name="streamlit")
"""


def _store_with_queue(address: str):
    """The seeded review run, a 400-example suite 'wide' for one candidate, 30 accounts, and the queue."""
    store = seed_store(address)
    store.write_item(item_result(CANDIDATES[0], "base", suite="wide", n=N_ITEMS, run_id=RUN_ID))
    passwords = {name: own_password(store, name) for name in NAMES}
    queue, items = review.create_queue(store, review.QueueRequest(
        RUN_ID, "wide", load_rubric("pass_fail"), sample=N_ITEMS, overlap=OVERLAP, candidates=[CANDIDATES[0]]))
    assert len(items) == N_ITEMS and OVERLAP < len(NAMES)  # over-grading has room to happen: it must not
    return store, queue, passwords


def _start_server(address: str, names: list[str], queue_id: str, out: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = server_env(address_of(address))
    assert env["HARNESS_AUTH"] == "accounts"
    command = [sys.executable, "-c", SERVER_WITH_REVIEWERS, ",".join(names), queue_id, str(out), str(STALE_EVERY),
               *streamlit_command(port)[3:]]
    with open(out.with_suffix(".log"), "w") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def _start_run(address: str, folder: Path, causal_dir: Path, name: str, hang: Path | None = None):
    folder.mkdir(exist_ok=True)
    path = write_experiment(folder, {"llama": causal_dir}, ["cls", "gen"], variants="[base]", name=name)
    args = ["run", str(path), "--db", address, "--no-reuse"]  # three writers: none copies another's items
    command = [sys.executable, "-c", HANG_IN_COMMIT, str(hang), *args] if hang else [harness_command(), *args]
    log = folder / f"{name}.log"
    with open(log, "a") as out:
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT), log


def _wait_until_up(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the report server exited {proc.returncode}"
        try:
            if requests.get(f"{url}/_stcore/health", timeout=2).text.strip() == "ok":
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise AssertionError(f"the report server at {url} did not come up in 120 s")


def _wait_for(path: Path, procs: list[subprocess.Popen], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} did not appear in {timeout_s:.0f} s"
        assert all(p.poll() is None for p in procs), f"a process ended before {path.name} appeared"
        time.sleep(0.1)


def _item_rows(store: Store, key: list[str]) -> tuple[int, int]:
    """(items rows, predictions rows) stored for one work item."""
    where = "run_id = ? AND candidate = ? AND variant = ? AND suite = ?"
    items = store.query(f"SELECT count(*) AS n FROM items WHERE {where}", key)["n"].iloc[0]
    preds = store.query(f"SELECT count(*) AS n FROM predictions WHERE {where}", key)["n"].iloc[0]
    return int(items), int(preds)


def _no_item_partial(store: Store) -> None:
    """Every item holds all its examples' rows, and no row belongs to an item that is not there."""
    items = store.query("SELECT i.run_id, i.candidate, i.variant, i.suite, i.n_examples, count(p.example_id) AS rows "
                        "FROM items i "
                        "LEFT JOIN predictions p USING (run_id, candidate, variant, suite) GROUP BY ALL")
    assert (items["rows"] == items["n_examples"]).all(), items
    orphans = store.query("SELECT count(*) AS n FROM predictions p ANTI JOIN items i "
                          "USING (run_id, candidate, variant, suite)")["n"].iloc[0]
    assert orphans == 0


def _grades_checked(store: Store, outs: list[Path]) -> dict:
    merged: dict = {"submits": [], "errors": []}
    for out in outs:
        for key, values in json.loads(out.read_text()).items():
            merged[key] += values
    assert not merged["errors"], merged["errors"][:2]
    stored = sorted((item, name) for item, name, outcome, _ in merged["submits"] if outcome == "stored")
    in_store = sorted(map(tuple, store.query("SELECT item_id, reviewer FROM review_grades").values.tolist()))
    assert stored == in_store  # every grade answered "stored" is there, and nothing else
    outcomes = {(kind, outcome) for *_, outcome, kind in merged["submits"]}
    assert outcomes <= {("claimed", "stored"), ("stale", "stored"), ("stale", "full"), ("stale", "duplicate")}
    return merged


def _kill_in_commit(store: Store, run: subprocess.Popen, marker: Path) -> tuple[list[str], dict, float]:
    """SIGKILL the writer hung inside its second item's commit; nothing of that item is there, the first one is
    whole, the run still `running`. (The killed item's key, the first item's row, when.)"""
    run.send_signal(signal.SIGKILL)
    assert run.wait(timeout=30) == -signal.SIGKILL
    killed_at = time.time()
    key = json.loads(marker.read_text())
    assert _item_rows(store, key) == (0, 0)
    (first,) = store.query("SELECT * FROM items WHERE run_id = ?", [key[0]]).to_dict("records")
    assert first["status"] == "done" and store.run(key[0])["status"] == "running"
    _no_item_partial(store)
    return key, first, killed_at


def _runs_checked(store: Store, key: list[str], first: dict, killed_at: float) -> None:
    """Every run finished with all its items; the killed item was redone by the resumed run, the rest kept."""
    finished = store.query("SELECT * FROM runs WHERE name LIKE 'exp%' ORDER BY name")
    assert list(finished["name"]) == ["exp0", "exp1", "exp2"] and set(finished["status"]) == {"finished"}
    assert key[0] in set(finished["run_id"])  # resumed, not started again
    items = store.query("SELECT * FROM items WHERE run_id IN (SELECT unnest(?))", [list(finished["run_id"])])
    assert len(items) == 6 and set(items["status"]) == {"done"} and set(items["n_examples"]) == {N_TEST}
    _no_item_partial(store)
    assert _item_rows(store, key) == (1, N_TEST)
    where = "run_id = ? AND candidate = ? AND variant = ? AND suite = ?"
    redone = store.query(f"SELECT finished_at FROM items WHERE {where}", key)["finished_at"].iloc[0]
    assert redone.to_pydatetime().timestamp() > killed_at - 1  # the runner's clock: local time, like time.time()
    kept = [first["run_id"], first["candidate"], first["variant"], first["suite"]]
    assert store.query(f"SELECT finished_at FROM items WHERE {where}", kept)["finished_at"].iloc[0] == \
        first["finished_at"]  # the whole first item was kept, not redone


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.slow
def test_three_runs_and_thirty_reviewers_on_two_servers_with_a_writer_killed_mid_commit(
        team_address, tmp_path, causal_dir):
    store, queue, passwords = _store_with_queue(team_address)
    outs = [tmp_path / f"server{n}.json" for n in (0, 1)]
    groups = [NAMES[:PER_SERVER], NAMES[PER_SERVER:]]
    servers, runs, marker = [], [], tmp_path / "hung.json"
    try:
        servers = [_start_server(team_address, names, queue.queue_id, out)
                   for names, out in zip(groups, outs, strict=True)]
        for (proc, url), names in zip(servers, groups, strict=True):  # every reviewer logs in on their server
            _wait_until_up(url, proc)
            for name in names:
                assert websocket_status(url, log_in(url, name, passwords[name])) == 101
        runs = [_start_run(team_address, tmp_path / f"exp{n}", causal_dir, f"exp{n}", marker if n == 0 else None)
                for n in range(3)]
        for out in outs:
            out.with_suffix(".go").touch()  # the reviewers start grading
        _wait_for(marker, [runs[0][0], *(p for p, _ in servers)], timeout_s=600)
        key, first, killed_at = _kill_in_commit(store, runs[0][0], marker)
        runs[0] = _start_run(team_address, tmp_path / "exp0", causal_dir, "exp0")  # resume: the same command
        for proc, log in runs:
            assert proc.wait(timeout=900) == 0, log.read_text()[-3000:]
        graded_beside_runs = int(store.query("SELECT count(*) AS n FROM review_grades")["n"].iloc[0])
        for out in outs:
            _wait_for(out, [p for p, _ in servers], timeout_s=900)
        assert all(proc.poll() is None for proc, _ in servers)  # the servers served throughout
    finally:
        _stop([p for p, _ in runs] + [p for p, _ in servers])
    _runs_checked(store, key, first, killed_at)
    merged = _grades_checked(store, outs)
    per_item = store.query("SELECT item_id, count(*) AS n FROM review_grades GROUP BY item_id")
    assert len(per_item) == N_ITEMS and set(per_item["n"]) == {OVERLAP}  # every item full, none over
    assert int(per_item["n"].sum()) == len(NAMES) * 40 == 1200
    assert {name for _, name, outcome, _ in merged["submits"] if outcome == "stored"} == set(NAMES)
    assert graded_beside_runs > 0, "no grade was stored while the runs wrote"
    print(f"\n{graded_beside_runs} grades stored by the time the runs finished; "
          f"{sum(1 for s in merged['submits'] if s[3] == 'stale')} stale grades sent")
