"""The `ray` executor on a real two-node Ray cluster on loopback: same results as `local`, a node lost mid-run,
the driver killed mid-run, and items scheduled by (logical) GPUs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'harness[ray]')")

import ray  # noqa: E402
from test_runner import harness_command, wait_for_done_item, write_experiment  # noqa: E402

from harness.config import ExecutorConfig  # noqa: E402
from harness.executors.ray import task_options  # noqa: E402
from harness.progress import SilentReporter  # noqa: E402
from harness.runner import run_experiment  # noqa: E402
from harness.store import Store  # noqa: E402

RAY = str(Path(sys.executable).parent / "ray")
QUIET = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
         "RAY_DEDUP_LOGS": "0",
         "RAY_health_check_period_ms": "500", "RAY_health_check_failure_threshold": "3",
         "RAY_health_check_initial_delay_ms": "0", "RAY_enable_metrics_collection": "0"}
KEY = ["candidate", "variant", "suite"]


@dataclass
class Cluster:
    address: str
    second_node: set[int]  # the second node's daemon pids (its workers are their children)


@pytest.fixture(autouse=True)
def _quiet_ray(monkeypatch):
    """The drivers this test starts see the cluster's settings (no auth token written to ~/.ray, no usage stats)."""
    for name, value in QUIET.items():
        monkeypatch.setenv(name, value)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pids_mentioning(text: str) -> set[int]:
    pids = set()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and text in (proc / "cmdline").read_bytes().decode(errors="replace"):
                pids.add(int(proc.name))
        except OSError:
            continue
    return pids


def _children(pids: set[int]) -> set[int]:
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) in pids:
                found.add(int(proc.name))
        except (OSError, IndexError, ValueError):
            continue
    return found


def _ray(*args: str) -> None:
    done = subprocess.run([RAY, *args], capture_output=True, text=True, env={**os.environ, **QUIET}, timeout=120)
    assert done.returncode == 0, f"ray {' '.join(args)} failed: {done.stderr[-2000:]}"


@pytest.fixture(scope="module")
def cluster():
    """A head and a second node on 127.0.0.1, one CPU each; `ray stop --force` at the end, pass or fail."""
    port, temp = _free_port(), tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: ray's socket paths are capped
    common = ["--num-cpus=1", "--num-gpus=0", "--node-ip-address=127.0.0.1", "--disable-usage-stats"]
    try:
        _ray("start", "--head", f"--port={port}", "--include-dashboard=false", f"--temp-dir={temp}", *common)
        before = _pids_mentioning(temp) | _pids_mentioning(f"127.0.0.1:{port}")
        _ray("start", f"--address=127.0.0.1:{port}", '--resources={"second_node": 1}', *common)
        second = (_pids_mentioning(temp) | _pids_mentioning(f"127.0.0.1:{port}")) - before
        yield Cluster(f"127.0.0.1:{port}", second)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        subprocess.run([RAY, "stop", "--force"], capture_output=True, env={**os.environ, **QUIET}, timeout=120)


def _experiment(tmp_path: Path, causal_dir: Path, encoder_dir: Path, **kwargs) -> Path:
    return write_experiment(tmp_path, {"llama": causal_dir, "bert": encoder_dir}, ["cls", "gen"], **kwargs)


def _results(store: Store, run_id: str) -> dict:
    """Every stored result of a run without its run id or timings, in a fixed order."""
    out = {}
    for table in ("predictions", "example_stats", "scores", "items"):
        frame = store.table(table, [run_id]).drop(columns=["run_id", "wall_s", "model_s", "latency_s", "finished_at"],
                                                  errors="ignore")
        out[table] = frame.sort_values(list(frame.columns[:6])).reset_index(drop=True)
    return out


def _assert_same(got: dict, want: dict) -> None:
    for table, frame in want.items():
        assert got[table].to_json() == frame.to_json(), f"{table} differs between ray and local"


class _Notes(SilentReporter):
    def __init__(self):
        self.notes: list[str] = []

    def item_finished(self, label: str, status: str, note: str = "") -> None:
        self.notes.append(note)


def test_two_gpu_items_run_together_and_a_third_waits():
    ray.init(address="local", num_cpus=3, num_gpus=2, include_dashboard=False, log_to_driver=False)
    try:
        options = task_options(ExecutorConfig(kind="ray", gpus_per_item="auto", max_retries=0))
        assert options["num_gpus"] == 1  # auto: the cluster has GPUs

        def hold() -> tuple[float, float, list]:
            start = time.time()
            time.sleep(1.5)
            return start, time.time(), ray.get_gpu_ids()

        spans = sorted(ray.get([ray.remote(hold).options(**options).remote() for _ in range(3)]))
    finally:
        ray.shutdown()
    (s1, e1, g1), (s2, e2, g2), (s3, _, _) = spans
    assert s2 < e1 and s1 < e2, f"the first two items should overlap: {spans}"
    assert sorted(g1 + g2) == [0, 1], "each of the two runs on its own GPU"
    assert s3 >= min(e1, e2) - 0.05, f"the third item should wait for a GPU: {spans}"


def test_ray_equals_local_on_a_two_node_cluster(tmp_path, cluster, causal_dir, encoder_dir):
    path = _experiment(tmp_path, causal_dir, encoder_dir)
    local = Store(tmp_path / "local.duckdb")
    local_id, local_status = run_experiment(path, local)
    store = Store(tmp_path / "ray.duckdb")
    executor = ExecutorConfig(kind="ray", address=cluster.address, gpus_per_item="auto", max_retries=2)
    reporter = _Notes()
    run_id, status = run_experiment(path, store, reporter, executor=executor, artifacts=tmp_path / "artifacts")
    assert (status, local_status) == ("finished", "finished")
    nodes = {note.split(" ")[2] for note in reporter.notes if note.startswith("on ")}  # "on IP NODE_ID ..."
    assert len(nodes) == 2, f"the items should have run on both nodes: {reporter.notes}"
    _assert_same(_results(store, run_id), _results(local, local_id))
    adapters = store.table("adapters", [run_id])
    trained = ["candidate", "suite", "steps", "train_tokens", "final_train_loss", "final_val_loss"]
    local_adapters = local.table("adapters", [local_id])
    assert adapters.sort_values(trained)[trained].to_json(orient="records") == \
        local_adapters.sort_values(trained)[trained].to_json(orient="records"), "training is seeded per item"
    # the weights byte for byte (adapter_config.json lists target modules in a per-process set order)
    weights = {(r.candidate, r.suite): (Path(r.adapter_path) / "adapter_model.safetensors").read_bytes()
               for r in adapters.itertuples()}
    assert weights == {(r.candidate, r.suite): (Path(r.adapter_path) / "adapter_model.safetensors").read_bytes()
                       for r in local_adapters.itertuples()}
    log = ["candidate", "suite", "split", "step", "loss"]
    assert store.table("training_log", [run_id])[log].sort_values(log[:4]).to_json(orient="records") == \
        local.table("training_log", [local_id])[log].sort_values(log[:4]).to_json(orient="records")
    assert len(adapters) == 3  # llama cls + gen, bert cls (an encoder has no generation adapter)
    for folder in adapters["adapter_path"]:
        assert Path(folder).is_relative_to(tmp_path / "artifacts" / run_id) and any(Path(folder).iterdir())
    assert set(store.table("candidates", [run_id])["candidate"]) == {"llama", "bert"}


def test_driver_killed_mid_run_resumes_from_the_store(tmp_path, cluster, causal_dir):
    # base items are submitted first and the adapters train for many steps: a wide window for the kill
    path = write_experiment(tmp_path, {"llama": causal_dir}, ["cls", "gen"], lora="steps: 80")
    db = tmp_path / "resume.duckdb"
    env = {**os.environ, **QUIET, "HARNESS_DB_LOCK_TIMEOUT": "60"}
    proc = subprocess.Popen([harness_command(), "run", str(path), "--db", str(db), "--executor", "ray",
                             "--address", cluster.address], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        wait_for_done_item(db, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    store = Store(db)
    (run_id,) = store.runs()["run_id"]
    before = store.table("items", [run_id]).set_index(KEY)["finished_at"]
    assert 1 <= len(before) < 4, "the kill should land part-way through the run"

    executor = ExecutorConfig(kind="ray", address=cluster.address)
    resumed, status = run_experiment(path, store, executor=executor)
    assert (resumed, status) == (run_id, "finished")
    after = store.table("items", [run_id]).set_index(KEY)
    assert len(after) == 4 and set(after["status"]) == {"done"}
    for key, finished_at in before.items():
        assert after.loc[key, "finished_at"] == finished_at, f"{key} was redone"
    uninterrupted = Store(tmp_path / "whole.duckdb")
    whole_id, _ = run_experiment(path, uninterrupted)  # local: the same results wherever items ran
    _assert_same(_results(store, run_id), _results(uninterrupted, whole_id))


class _CtrlC(SilentReporter):
    """Ctrl-C at the driver when the first item comes back."""

    def item_finished(self, label: str, status: str, note: str = "") -> None:
        raise KeyboardInterrupt


def test_ctrl_c_cancels_the_runs_tasks_and_leaves_a_resumable_run(tmp_path, cluster, causal_dir, monkeypatch):
    path = write_experiment(tmp_path, {"llama": causal_dir}, ["cls", "gen"], lora="steps: 20")
    store = Store(tmp_path / "ctrl-c.duckdb")
    cancelled, cancel = [], ray.cancel
    monkeypatch.setattr(ray, "cancel", lambda ref, **kw: (cancelled.append(kw), cancel(ref, **kw)))
    executor = ExecutorConfig(kind="ray", address=cluster.address)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(path, store, _CtrlC(), executor=executor)
    assert len(cancelled) == 5 and all(kw == {"force": True} for kw in cancelled)  # 6 tasks, 1 came back
    (run_id,) = store.runs()["run_id"]
    assert store.run(run_id)["status"] == "failed"
    assert len(store.table("items", [run_id])) <= 1
    resumed, status = run_experiment(path, store, executor=executor)
    assert (resumed, status) == (run_id, "finished") and len(store.table("items", [run_id])) == 4


class _KillSecondNode(SilentReporter):
    """Kills the second node's processes (and its workers) when the first item comes back."""

    def __init__(self, pids: set[int]):
        self.pids, self.killed = pids, False

    def item_finished(self, label: str, status: str, note: str = "") -> None:
        if not self.killed:
            self.killed = True
            for pid in self.pids | _children(self.pids):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def test_a_node_killed_mid_run_the_run_still_finishes(tmp_path, cluster, causal_dir, encoder_dir):
    assert cluster.second_node, "the second node's processes were not found"
    path = _experiment(tmp_path, causal_dir, encoder_dir, lora="steps: 20")
    store = Store(tmp_path / "ray.duckdb")
    reporter = _KillSecondNode(cluster.second_node)
    executor = ExecutorConfig(kind="ray", address=cluster.address, max_retries=3)
    run_id, status = run_experiment(path, store, reporter, executor=executor)
    assert reporter.killed
    items = store.table("items", [run_id])
    assert len(items) == 8 and not items.duplicated(KEY).any()
    assert status == "finished", items[["candidate", "variant", "suite", "status", "reason"]].to_string()
    assert set(items["status"]) == {"done", "not_applicable"}
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        alive = [n for n in ray.nodes() if n["Alive"]]
    finally:
        ray.shutdown()
    assert len(alive) == 1 and "second_node" not in alive[0]["Resources"], "the second node should be gone"


def test_on_ray_reused_items_are_not_sent_and_stored_adapters_are_not_trained_again(tmp_path, cluster, causal_dir,
                                                                                     encoder_dir):
    """A local run, then the same experiment on the cluster with one evaluation setting changed: every item is
    computed again (its fingerprint changed) with the adapters the local run trained (their recipe did not)."""
    path = _experiment(tmp_path, causal_dir, encoder_dir)
    store = Store(tmp_path / "both.duckdb")
    local_id, status = run_experiment(path, store)
    assert status == "finished"
    path.write_text(path.read_text().replace("bootstrap_resamples: 50", "bootstrap_resamples: 60"))
    executor = ExecutorConfig(kind="ray", address=cluster.address)
    run_id, status = run_experiment(path, store, executor=executor)
    assert status == "finished" and run_id != local_id
    assert store.table("items", [run_id])["reused_from"].isna().all()
    adapters = store.table("adapters", [run_id]).set_index(["candidate", "suite"])
    trained = store.table("adapters", [local_id]).set_index(["candidate", "suite"])
    assert len(adapters) == len(trained) == 3  # llama cls + gen, bert cls
    assert set(adapters["reused_from"]) == {local_id}
    assert adapters["adapter_path"].equals(trained["adapter_path"].loc[adapters.index])
    same, status = run_experiment(path, store, executor=executor, fresh=True)  # unchanged: nothing sent at all
    assert status == "finished" and set(store.table("items", [same])["reused_from"].dropna()) == {run_id}
