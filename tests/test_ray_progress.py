"""Ray progress: the tracker actor sees each task start, progress and end; a task whose worker died and that Ray
ran again counts as retried; the progress line shows running (on which node), done, queued and retried."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from harness.executors.tracker import Attempts, state

A, B, C = "llama / base / cls", "train LoRA llama / cls", "llama / lora / cls"
NODE1, NODE2 = ("10.0.0.1", "1111111122222222"), ("10.0.0.2", "3333333344444444")


def test_running_queued_and_retried_from_what_the_tasks_told():
    seen = Attempts()
    seen.started(A, *NODE1)
    seen.progressed(A, 8, 20)
    seen.started(B, *NODE2)
    got = state(seen, pending={A, B, C}, done=0, alive={NODE1[1], NODE2[1]})
    assert got.running == [(A, "10.0.0.1 11111111", "8/20"), (B, "10.0.0.2 33333333", "")]
    assert (got.queued, got.retried) == (1, 0)
    assert got.note() == ("done 0 · running 2 (llama / base / cls on 10.0.0.1 11111111 8/20; "
                          "train LoRA llama / cls on 10.0.0.2 33333333) · queued 1 · retried 0")
    # the second node dies: its task is resubmitted (retried), waiting to start again; not running
    lost = state(seen, pending={A, B, C}, done=0, alive={NODE1[1]})
    assert [r[0] for r in lost.running] == [A] and (lost.queued, lost.retried) == (2, 1)
    seen.started(B, *NODE1)  # Ray ran it again on the first node
    again = state(seen, pending={A, B, C}, done=0, alive={NODE1[1]})
    assert (B, "10.0.0.1 11111111", "") in again.running and again.retried == 1
    seen.ended(A)
    seen.ended(B)
    done = state(seen, pending={C}, done=2, alive={NODE1[1]})
    assert (done.running, done.queued, done.retried) == ([], 1, 1)


def test_a_task_that_ends_before_the_driver_collects_it_is_not_running():
    seen = Attempts()
    seen.started(A, *NODE1)
    seen.ended(A)
    assert state(seen, pending={A}, done=0, alive={NODE1[1]}).running == []


@pytest.fixture
def local_ray(monkeypatch):
    ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'harness[ray]')")
    for name, value in {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}.items():
        monkeypatch.setenv(name, value)
    ray.init(address="local", num_cpus=1, num_gpus=0, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def test_a_task_whose_worker_is_killed_is_retried_and_counted(local_ray, tmp_path):
    """A real worker killed mid-task: Ray runs the task again (max_retries), the tracker sees two starts."""
    ray = local_ray
    from harness.executors.ray import start_tracker

    tracker = start_tracker()
    assert tracker is not None

    def work(tracker, label: str, folder: str) -> int:
        from harness.executors.ray import tell_started

        tell_started(tracker, label)
        first = Path(folder) / "first"
        if not first.exists():
            first.write_text(str(os.getpid()))
            time.sleep(60)  # killed here
        tracker.ended.remote(label)
        return os.getpid()

    ref = ray.remote(work).options(max_retries=1, num_cpus=1).remote(tracker, A, str(tmp_path))
    queued = ray.remote(lambda: 1).options(num_cpus=1).remote()  # waits for the only CPU
    node = ray.get_runtime_context().get_node_id()
    deadline = time.monotonic() + 60
    while not (tmp_path / "first").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    seen = ray.get(tracker.snapshot.remote())
    while A not in seen.starts and time.monotonic() < deadline:
        seen = ray.get(tracker.snapshot.remote())
    first = state(seen, pending={A, "other"}, done=0, alive={node})
    assert [(label, where.split()[1]) for label, where, _ in first.running] == [(A, node[:8])]
    assert (first.queued, first.retried) == (1, 0)

    os.kill(int((tmp_path / "first").read_text()), signal.SIGKILL)
    second_pid = ray.get(ref, timeout=60)
    assert second_pid != int((tmp_path / "first").read_text()) and ray.get(queued, timeout=60) == 1
    seen = ray.get(tracker.snapshot.remote())
    while seen.ends.get(A) != 1 and time.monotonic() < deadline + 60:  # a task's messages arrive as they may
        time.sleep(0.1)
        seen = ray.get(tracker.snapshot.remote())
    assert len(seen.starts[A]) == 2 and seen.ends[A] == 1
    after = state(seen, pending=set(), done=2, alive={node})
    assert after.retried == 1 and after.note() == "done 2 · running 0 · queued 0 · retried 1"


class _Notes:
    def __init__(self):
        self.notes: list[str] = []
        self.finished: list[tuple[str, str]] = []

    def plan_started(self, items, warning=None, estimate_s=None):
        pass

    def item_started(self, label, total):
        pass

    def item_progress(self, done, total, note=""):
        self.notes.append(note)

    def item_finished(self, label, status, note=""):
        self.finished.append((label, status))


def _kill_first_training_worker(stop) -> list[int]:
    """Watch for a Ray worker running `_train` (its process title is `ray::_train`) and SIGKILL it once."""
    killed: list[int] = []
    while not stop.is_set() and not killed:
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and (proc / "cmdline").read_bytes().startswith(b"ray::_train"):
                    time.sleep(0.5)  # mid-training
                    os.kill(int(proc.name), signal.SIGKILL)
                    killed.append(int(proc.name))
                    break
            except OSError:
                continue
        time.sleep(0.05)
    return killed


@pytest.mark.slow
def test_a_run_whose_training_worker_dies_shows_the_retry(local_ray, tmp_path, causal_dir):
    import threading

    from test_runner import write_experiment

    from harness.config import ExecutorConfig
    from harness.runner import run_experiment
    from harness.store import Store

    path = write_experiment(tmp_path, {"llama": causal_dir}, ["cls"], lora="steps: 60")
    reporter, stop, killed = _Notes(), threading.Event(), []
    watcher = threading.Thread(target=lambda: killed.extend(_kill_first_training_worker(stop)), daemon=True)
    watcher.start()
    try:
        run_id, status = run_experiment(path, Store(tmp_path / "r.duckdb"), reporter,
                                        executor=ExecutorConfig(kind="ray", gpus_per_item=0, max_retries=2))
    finally:
        stop.set()
        watcher.join(timeout=5)
    assert killed, "no training worker was seen"
    assert status == "finished" and ("train LoRA llama / tiny_cls", "done") in reporter.finished
    assert any("running 1 (" in n and " on " in n for n in reporter.notes), reporter.notes
    assert reporter.notes[-1].startswith("done 3 · running 0 · queued 0 · retried 1"), reporter.notes
