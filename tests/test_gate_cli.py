"""`harness gate` and `harness export` end to end on a real store: exit codes, Markdown, JUnit, JSON,
byte-for-byte reproducible outputs, exported files as REFs, and the stored gate history."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from cli_helper import cli
from gate_helpers import flip, planted, sst2_labels
from junitparser import JUnitXml

from harness.gate.results_file import load_ref, read_results
from harness.metrics import get_metric
from harness.records import CandidateInfo, ItemResult, MetricStats, Prediction, RunRecord
from harness.store import Store
from harness.store.gates import gate_history, run_results

LABELS = sst2_labels()
T0 = datetime(2026, 1, 1, 12, 0, 0)


def write_run(store: Store, run_id: str, wrong: dict[tuple[str, str], np.ndarray], fingerprint: str = "fp-sst2",
              minutes: int = 0) -> None:
    """A finished run with one SST-2-sized suite per candidate/variant, predictions wrong where `wrong` says."""
    store.start_run(RunRecord(run_id, "exp", "exp.yaml", "{}", f"hash-{run_id}", 0, None, None, "{}", "harness run",
                              status="finished", started_at=T0 + timedelta(minutes=minutes)))
    metric = get_metric("accuracy")
    for (candidate, variant), mask in wrong.items():
        store.write_candidate(CandidateInfo(run_id, candidate, "pack:x", "causal", f"model-{candidate}", 1))
        outputs = flip(LABELS, mask)
        preds = [Prediction(f"sst2-{i}", f"text {i}", y, o)
                 for i, (y, o) in enumerate(zip(LABELS, outputs, strict=True))]
        stats = metric.example_stats(outputs, LABELS, labels=["0", "1"])
        store.write_item(ItemResult(run_id, candidate, variant, "sst2", "done", dataset_fingerprint=fingerprint,
                                    predictions=preds, stats=[MetricStats("accuracy", "{}", metric.stat_names, stats)]))


@pytest.fixture(scope="module")
def built_store(tmp_path_factory) -> Path:
    store = Store(tmp_path_factory.mktemp("gate_store") / "gate.duckdb")
    base, drop = planted(len(LABELS), 131, 60, 16)
    write_run(store, "base-run", {("m", "base"): base, ("m", "lora"): base}, minutes=0)
    write_run(store, "same-run", {("m", "base"): base.copy()}, minutes=1)
    write_run(store, "drop-run", {("m", "base"): drop}, minutes=2)
    write_run(store, "moved-run", {("m", "base"): base.copy()}, fingerprint="fp-other", minutes=3)
    store.tag("baseline", "base-run")
    return store.path


@pytest.fixture
def store(built_store, tmp_path) -> Store:
    """A copy of the module's store: base-run (tag baseline; m:base and m:lora), same-run, drop-run (-5 points),
    moved-run (another dataset fingerprint)."""
    shutil.copy(built_store, tmp_path / "gate.duckdb")
    return Store(tmp_path / "gate.duckdb")


def harness(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    return cli(capsys, monkeypatch, *args)


def gate(monkeypatch, capsys, store, candidate, *extra, baseline="baseline:m:base"):
    return harness(monkeypatch, capsys, "gate", "--db", str(store.path), "--baseline", baseline,
                   "--candidate", candidate, *extra)


def test_exit_codes(store, monkeypatch, capsys, tmp_path):
    assert gate(monkeypatch, capsys, store, "same-run")[0] == 0
    code, out, _ = gate(monkeypatch, capsys, store, "drop-run")
    assert code == 1 and "❌ Gate failed: regression" in out
    code, out, _ = gate(monkeypatch, capsys, store, "moved-run")
    assert code == 2 and "dataset fingerprint differs (baseline fp-sst2, candidate fp-other)" in out
    code, _, err = gate(monkeypatch, capsys, store, "no-such-run")
    assert code == 2 and "run 'no-such-run' not found" in err
    code, _, err = gate(monkeypatch, capsys, store, "same-run", baseline="base-run")
    assert code == 2 and "several candidate/variant pairs (m:base, m:lora)" in err
    rules = tmp_path / "gates.yaml"
    rules.write_text("rules:\n  - suite: sst2\n    tset: mcnemar\n")
    code, _, err = gate(monkeypatch, capsys, store, "same-run", "--rules", str(rules))
    assert code == 2 and "gates.yaml:3: rules[0].tset: unknown key; did you mean 'test'?" in err


def test_candidate_pair_follows_the_baseline(store, monkeypatch, capsys):
    """A candidate run with several pairs is gated on the pair named like the baseline's."""
    code, out, _ = gate(monkeypatch, capsys, store, "base-run", baseline="same-run")
    assert code == 0 and "(run `base-run`, m:base)" in out


def test_outputs_junit_json_markdown_and_step_summary(store, monkeypatch, capsys, tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    rules = tmp_path / "gates.yaml"
    rules.write_text("rules:\n  - {suite: sst2, metric: accuracy}\n  - {suite: sst2, metric: accuracy, test: bootstrap,"
                     " blocking: false}\n  - {suite: news, metric: accuracy}\n")
    junit, out_json = tmp_path / "gate.xml", tmp_path / "gate.json"
    code, out, _ = gate(monkeypatch, capsys, store, "drop-run", "--rules", str(rules), "--junit", str(junit),
                        "--json", str(out_json))
    assert code == 2  # no blocking regression (rule 2 makes sst2 warn-only), but rule 3 is not comparable
    suite = next(iter(JUnitXml.fromfile(str(junit))))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (2, 0, 1, 1)
    data = json.loads(out_json.read_text())
    assert data["verdict"] == "not_comparable" and data["exit_code"] == 2
    assert data["counts"] == {"checks": 2, "passed": 0, "failed": 0, "warned": 1, "not_comparable": 1}
    warn = data["checks"][0]
    assert warn["test"] == "bootstrap" and warn["status"] == "warn" and warn["difference"] == pytest.approx(-44 / 872)
    assert "⚠️ warn (warn-only) | sst2 / accuracy / accuracy | 0.8498 | 0.7993 | -0.05046" in out
    assert summary.read_text() == "earlier step\n" + out


def test_not_comparable_is_an_error_in_junit(store, monkeypatch, capsys, tmp_path):
    junit = tmp_path / "gate.xml"
    assert gate(monkeypatch, capsys, store, "moved-run", "--junit", str(junit))[0] == 2
    suite = next(iter(JUnitXml.fromfile(str(junit))))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (1, 0, 1, 0)
    assert gate(monkeypatch, capsys, store, "drop-run", "--junit", str(junit))[0] == 1
    suite = next(iter(JUnitXml.fromfile(str(junit))))
    assert (suite.tests, suite.failures, suite.errors, suite.skipped) == (1, 1, 0, 0)
    case = next(iter(suite))
    assert case.classname == "gate.sst2" and case.name == "accuracy / accuracy"
    assert "dropped 0.05046 (allowed 0)" in case.result[0].message


def test_same_inputs_same_bytes(store, monkeypatch, capsys, tmp_path):
    outputs = []
    for attempt in ("a", "b"):
        paths = [tmp_path / f"{attempt}.{ext}" for ext in ("xml", "json", "md")]
        code, out, _ = gate(monkeypatch, capsys, store, "drop-run", "--junit", str(paths[0]), "--json", str(paths[1]),
                            "--markdown", str(paths[2]), "--seed", "3")
        outputs.append([p.read_bytes() for p in paths] + [out.encode()])
    assert outputs[0] == outputs[1]
    assert outputs[0][2] + b"\n" == outputs[0][3]  # the printed summary is the Markdown file


def test_export_files_are_refs(store, monkeypatch, capsys, tmp_path):
    for ext in ("parquet", "jsonl"):
        path = tmp_path / f"baseline.{ext}"
        code, out, _ = harness(monkeypatch, capsys, "export", "baseline", "--out", str(path), "--db", str(store.path))
        assert code == 0 and f"wrote {2 * len(LABELS)} rows of run base-run (m:base, m:lora)" in out
        header, frame = read_results(path)
        assert header["run_id"] == "base-run" and header["config_hash"] == "hash-base-run"
        assert set(frame["model_fingerprint"]) == {"model-m"} and set(frame["dataset_fingerprint"]) == {"fp-sst2"}
        from_file = load_ref(f"{path}:m:base", lambda ref: pytest.fail("read the store"))
        from_store = load_ref("base-run:m:base", lambda ref: run_results(store, ref))
        key = ("sst2", "accuracy", "{}")
        assert from_file.entries[key].example_ids == from_store.entries[key].example_ids
        np.testing.assert_array_equal(from_file.entries[key].stats, from_store.entries[key].stats)
        assert frame.loc[frame["example_id"] == "sst2-0", "reference"].iloc[0] == LABELS[0]
        assert gate(monkeypatch, capsys, store, "drop-run", baseline=f"{path}:m:base")[0] == 1
        assert gate(monkeypatch, capsys, store, "same-run", baseline=f"{path}:m:base")[0] == 0
    one = tmp_path / "one.jsonl"
    assert harness(monkeypatch, capsys, "export", "base-run:m:lora", "--out", str(one), "--db", str(store.path))[0] == 0
    assert gate(monkeypatch, capsys, store, "same-run", baseline=str(one))[0] == 0  # a single pair needs no name


def test_bad_results_files(store, monkeypatch, capsys, tmp_path):
    code, _, err = gate(monkeypatch, capsys, store, "same-run", baseline=str(tmp_path / "missing.parquet"))
    assert code == 2 and "missing.parquet: results file not found" in err
    other = tmp_path / "other.jsonl"
    other.write_text('{"prediction": "x"}\n')
    code, _, err = gate(monkeypatch, capsys, store, "same-run", baseline=str(other))
    assert code == 2 and "not a harness results file" in err
    code, _, err = harness(monkeypatch, capsys, "export", "baseline", "--out", str(tmp_path / "x.csv"),
                           "--db", str(store.path))
    assert code == 2 and "results files end in .parquet or .jsonl" in err


def test_latest_is_the_newest_run(store):
    from harness.store.gates import resolve

    assert resolve(store, "latest") == "moved-run"


def test_decisions_are_stored(store, monkeypatch, capsys):
    gate(monkeypatch, capsys, store, "same-run")
    gate(monkeypatch, capsys, store, "drop-run")
    gate(monkeypatch, capsys, store, "drop-run", "--no-record")
    history = gate_history(store)
    assert list(history["verdict"]) == ["fail", "pass"]
    assert list(history["candidate_run_id"]) == ["drop-run", "same-run"]
    assert list(history["baseline_run_id"]) == ["base-run", "base-run"]
    newest = history.iloc[0]
    assert (newest["n_checks"], newest["n_failed"], newest["exit_code"]) == (1, 1, 1)
    checks = json.loads(newest["checks_json"])
    assert checks[0]["status"] == "fail" and checks[0]["name"] == "sst2 / accuracy / accuracy"


def test_run_with_gate_checks_its_inputs_before_running(monkeypatch, capsys, tmp_path):
    exp = tmp_path / "exp.yaml"
    exp.write_text("name: x\ncandidates: [{name: a, model: pack:nope}]\nsuites: [sentiment]\n")
    code, _, err = harness(monkeypatch, capsys, "run", str(exp), "--gate", str(tmp_path / "gates.yaml"))
    assert code == 2 and "--gate needs --baseline" in err
    code, _, err = harness(monkeypatch, capsys, "run", str(exp), "--baseline", str(tmp_path / "base.jsonl"))
    assert code == 2 and "base.jsonl: results file not found" in err


def test_run_then_gate_in_one_command(monkeypatch, capsys, tmp_path, causal_dir):
    import tiny_models

    suite = tiny_models.write_suite(tmp_path / "suite", "classification")
    exp = tmp_path / "exp.yaml"
    exp.write_text(f"name: tiny\ndevice: cpu\ncandidates: [{{name: tiny, model: '{causal_dir}'}}]\nvariants: [base]\n"
                   f"suites: ['{suite}']\nevaluation: {{bootstrap_resamples: 100}}\n")
    db, baseline = str(tmp_path / "run.duckdb"), tmp_path / "baseline.jsonl"
    assert harness(monkeypatch, capsys, "run", str(exp), "--db", db)[0] == 0
    assert harness(monkeypatch, capsys, "export", "latest", "--db", db, "--out", str(baseline))[0] == 0
    code, out, _ = harness(monkeypatch, capsys, "run", str(exp), "--db", db, "--new", "--baseline", str(baseline))
    assert code == 0 and "✅ Gate passed" in out
    history = gate_history(Store(db))
    assert len(history) == 1 and history.iloc[0]["candidate_run_id"] != history.iloc[0]["baseline_run_id"]
