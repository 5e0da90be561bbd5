"""Running experiments end to end on tiny models: every item, resume after SIGKILL, failure threshold."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from tiny_models import suite_rows, write_suite

import harness.predict.predictor as predict_module
from harness.errors import HarnessError
from harness.runner import run_experiment
from harness.store import Store

SUITES = {"cls": "classification", "mc": "multiple_choice", "gen": "generation"}
N_TEST = 4  # rows in each tiny suite's test split
TEST_IDS = {f"tiny_{short}": sorted(r["id"] for r in suite_rows(kind)[2:]) for short, kind in SUITES.items()}


@pytest.fixture(autouse=True)
def _no_gc_between_items(monkeypatch):
    """The runner collects garbage after every item (for big models); with tiny ones it only costs time."""
    monkeypatch.setattr("harness.runner.gc", SimpleNamespace(collect=lambda: 0))


def write_experiment(tmp_path: Path, candidates: dict[str, Path], suites: list[str], lora: str = "steps: 2",
                     evaluation: str = "", variants: str = "[base, lora]", name: str = "tiny") -> Path:
    refs = []
    for short in suites:
        refs.append(str(write_suite(tmp_path / short, SUITES[short]).relative_to(tmp_path)))
    lines = [f"name: {name}", "seed: 1", "device: cpu", "candidates:"]
    lines += [f"  - {{name: {c}, model: '{path}'}}" for c, path in candidates.items()]
    lines += [
        f"variants: {variants}",
        f"lora: {{{lora}, batch_size: 2, eval_every: 1, max_length: 64, max_eval_examples: 2, rank: 4,"
        " learning_rate: 0.01}",
        f"suites: [{', '.join(refs)}]",
        f"evaluation: {{batch_size: 4, bootstrap_resamples: 50{', ' + evaluation if evaluation else ''}}}",
    ]
    path = tmp_path / "experiment.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_full_run_of_causal_and_encoder(tmp_path, causal_dir, encoder_dir):
    path = write_experiment(tmp_path, {"llama": causal_dir, "bert": encoder_dir}, ["cls", "mc", "gen"])
    store = Store(tmp_path / "run.duckdb")
    run_id, status = run_experiment(path, store)
    assert status == "finished" and store.run(run_id)["status"] == "finished"

    items = store.table("items", [run_id])
    keys = {(r.candidate, r.variant, r.suite) for r in items.itertuples()}
    assert keys == {(c, v, s) for c in ("llama", "bert") for v in ("base", "lora")
                    for s in ("tiny_cls", "tiny_mc", "tiny_gen")}
    assert len(items) == 12
    not_applicable = items[items["status"] == "not_applicable"]
    assert {(r.candidate, r.suite) for r in not_applicable.itertuples()} == {("bert", "tiny_gen")}
    assert len(not_applicable) == 2 and all("cannot generate" in r for r in not_applicable["reason"])
    done = items[items["status"] == "done"]
    assert len(done) == 10 and set(done["n_examples"]) == {N_TEST} and set(done["n_failed"]) == {0}

    predictions = store.table("predictions", [run_id])
    stats = store.table("example_stats", [run_id])
    scores = store.scores(run_id)
    n_metrics = {"tiny_cls": 2, "tiny_mc": 1, "tiny_gen": 1}
    for r in done.itertuples():
        key = (predictions["candidate"] == r.candidate) & (predictions["variant"] == r.variant) & (
            predictions["suite"] == r.suite)
        assert sorted(predictions[key]["example_id"]) == TEST_IDS[r.suite]
        skey = (stats["candidate"] == r.candidate) & (stats["variant"] == r.variant) & (stats["suite"] == r.suite)
        assert skey.sum() == N_TEST * n_metrics[r.suite]
        mine = scores[(scores["candidate"] == r.candidate) & (scores["variant"] == r.variant)
                      & (scores["suite"] == r.suite)]
        assert len(mine) >= n_metrics[r.suite]
        assert ((mine["low"] <= mine["value"] + 1e-9) & (mine["value"] <= mine["high"] + 1e-9)).all()
        assert set(mine["n"]) == {N_TEST}
    assert scores[(scores["candidate"] == "bert") & (scores["suite"] == "tiny_gen")].empty

    adapters = store.table("adapters", [run_id])
    assert {(r.candidate, r.suite) for r in adapters.itertuples()} == {
        ("llama", "tiny_cls"), ("llama", "tiny_mc"), ("llama", "tiny_gen"), ("bert", "tiny_cls"), ("bert", "tiny_mc")}
    assert all(Path(p).is_dir() for p in adapters["adapter_path"])
    assert set(store.table("candidates", [run_id])["kind"]) == {"causal", "encoder"}
    assert len(store.table("datasets")) == 3
    # the lora variant really differs from the base on the causal model
    llama = predictions[(predictions["candidate"] == "llama") & (predictions["suite"] == "tiny_mc")]
    base = llama[llama["variant"] == "base"].sort_values("example_id")["choice_scores"].map(list).tolist()
    lora = llama[llama["variant"] == "lora"].sort_values("example_id")["choice_scores"].map(list).tolist()
    assert base != lora


def harness_command() -> str:
    return str(Path(sys.executable).parent / "harness")


def wait_for_done_item(db: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    # returns at the first done item; the limit only bounds a stuck run (a loaded 2-core machine took over 120 s)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read()}"
        if db.exists():
            found = Store(db).query("SELECT count(*) AS n FROM items WHERE status = 'done'")
            if int(found["n"].iloc[0]) >= 1:
                return
        time.sleep(0.2)
    raise AssertionError("no item finished in time")


def test_resume_after_sigkill(tmp_path, causal_dir):
    # the lora item after the first done item trains for many steps: a wide window for the kill
    path = write_experiment(tmp_path, {"llama": causal_dir}, ["cls", "gen"], lora="steps: 40")
    db = tmp_path / "resume.duckdb"
    env = {**os.environ, "HARNESS_DB_LOCK_TIMEOUT": "60"}
    proc = subprocess.Popen([harness_command(), "run", str(path), "--db", str(db)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_for_done_item(db, proc)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    store = Store(db)
    (run_id,) = store.runs()["run_id"]
    assert store.run(run_id)["status"] == "running"
    before = store.table("items", [run_id]).set_index(["candidate", "variant", "suite"])["finished_at"]
    assert 1 <= len(before) < 4, "the kill should land part-way through the run"

    resumed, status = run_experiment(path, store)
    assert (resumed, status) == (run_id, "finished")
    after = store.table("items", [run_id]).set_index(["candidate", "variant", "suite"])
    assert len(after) == 4 and set(after["status"]) == {"done"}
    for key, finished_at in before.items():
        assert after.loc[key, "finished_at"] == finished_at, f"{key} was redone"
    assert len(store.table("predictions", [run_id])) == 4 * N_TEST
    assert store.run(run_id)["status"] == "finished" and len(store.runs()) == 1


def test_failure_threshold_fails_the_item_and_the_run(tmp_path, causal_dir, monkeypatch):
    path = write_experiment(tmp_path, {"llama": causal_dir}, ["cls", "mc"], variants="[base]",
                            evaluation="max_failure_rate: 0.3")
    bad = {"s2", "s3", "q2"}  # 2 of 4 in the classification suite (> 0.3), 1 of 4 in multiple choice (<= 0.3)
    original = predict_module._choices_batch

    def flaky(predictor, suite, examples, prompts):
        if any(ex.id in bad for ex in examples):
            raise RuntimeError("injected failure")
        return original(predictor, suite, examples, prompts)

    monkeypatch.setattr(predict_module, "_choices_batch", flaky)
    store = Store(tmp_path / "fail.duckdb")
    run_id, status = run_experiment(path, store)
    assert status == "failed" and store.run(run_id)["status"] == "failed"
    items = store.table("items", [run_id]).set_index("suite")
    assert items.loc["tiny_cls", "status"] == "failed" and items.loc["tiny_cls", "n_failed"] == 2
    assert "2 of 4 examples failed" in items.loc["tiny_cls", "reason"]
    assert items.loc["tiny_mc", "status"] == "done" and items.loc["tiny_mc", "n_failed"] == 1
    errors = store.table("predictions", [run_id]).dropna(subset=["error"])
    assert sorted(errors["example_id"]) == ["q2", "s2", "s3"]
    assert all(e == "RuntimeError: injected failure" for e in errors["error"])

    # the failed item is redone when the run is resumed; the done one is kept
    monkeypatch.setattr(predict_module, "_choices_batch", original)
    mc_finished = items.loc["tiny_mc", "finished_at"]
    resumed, status = run_experiment(path, store)
    assert (resumed, status) == (run_id, "finished")
    items = store.table("items", [run_id]).set_index("suite")
    assert items.loc["tiny_cls", "status"] == "done" and items.loc["tiny_cls", "n_failed"] == 0
    assert items.loc["tiny_mc", "finished_at"] == mc_finished


def test_bad_model_reference_fails_before_any_model_runs(tmp_path, causal_dir):
    path = write_experiment(tmp_path, {"llama": causal_dir, "ghost": tmp_path / "nowhere"}, ["cls"])
    store = Store(tmp_path / "x.duckdb")
    with pytest.raises(HarnessError, match="model '.*nowhere': no such file or directory"):
        run_experiment(path, store)
    assert not store.path.exists() or store.runs().empty


def test_rerunning_a_finished_experiment_prints_its_table_and_starts_nothing(tmp_path, causal_dir):
    path = write_experiment(tmp_path, {"llama": causal_dir}, ["cls"], variants="[base]")
    db = tmp_path / "again.duckdb"
    first = subprocess.run([harness_command(), "run", str(path), "--db", str(db)], capture_output=True, text=True,
                           timeout=600)
    assert first.returncode == 0, first.stderr[-2000:]
    again = subprocess.run([harness_command(), "run", str(path), "--db", str(db)], capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    (run_id,) = Store(db, create=False).runs()["run_id"]
    assert f"already finished as run {run_id}" in again.stderr and "--new" in again.stderr
    assert f"run {run_id}" in again.stdout and "llama" in again.stdout  # its table
    fresh = subprocess.run([harness_command(), "run", str(path), "--db", str(db), "--new"], capture_output=True,
                           text=True, timeout=600)
    assert fresh.returncode == 0 and len(Store(db, create=False).runs()) == 2


def test_with_output_redirected_a_progress_line_comes_at_least_every_interval(tmp_path, causal_dir):
    """No terminal (CI, nohup): plain timestamped lines, a heartbeat at least every HARNESS_PROGRESS_EVERY_S
    (30 s by default; 1 s here) through loading, training and evaluation. The test reads the log file."""
    path = write_experiment(tmp_path, {"llama": causal_dir}, ["cls"], lora="steps: 1500")
    log = tmp_path / "run.log"
    env = {**os.environ, "HARNESS_PROGRESS_EVERY_S": "1"}
    with log.open("w") as out:
        done = subprocess.run([harness_command(), "run", str(path), "--db", str(tmp_path / "p.duckdb")],
                              stdout=out, stderr=out, text=True, env=env, timeout=600)
    text = log.read_text()
    assert done.returncode == 0, text[-2000:]
    stamps = [line[1:9] for line in text.splitlines() if re.match(r"^\[\d\d:\d\d:\d\d\] ", line)]
    seconds = [int(h) * 3600 + int(m) * 60 + int(s) for h, m, s in (t.split(":") for t in stamps)]
    assert len(seconds) >= 6 and "train LoRA" in text and "\x1b[" not in text  # plain text, no terminal codes
    gaps = [b - a for a, b in zip(seconds, seconds[1:], strict=False)]
    assert max(gaps) <= 3, gaps  # 1 s heartbeat; a second of slack for a loaded machine
    assert any("… train LoRA" in line and "/1500" in line for line in text.splitlines())  # counts while training
