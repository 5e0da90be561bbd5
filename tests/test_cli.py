"""The `harness` command: help, one-line errors with exit 2, run/runs/show/tag, suites, score."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from cli_helper import cli, error_line
from tiny_models import write_jsonl, write_suite


def test_help_from_the_console_script():
    harness = Path(sys.executable).parent / "harness"
    result = subprocess.run([str(harness), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for command in ("run", "runs", "show", "tag", "score", "suites"):
        assert command in result.stdout
    result = subprocess.run([str(harness), "no-such-command"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "No such command" in result.stderr and "Traceback" not in result.stderr


def write_experiment(tmp_path: Path, model: str, suite: str, extra: str = "") -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(f"name: cli\ndevice: cpu\ncandidates:\n  - {{name: tiny, model: '{model}'}}\nvariants: [base]\n"
                    f"suites: ['{suite}']\nevaluation: {{bootstrap_resamples: 20}}\n{extra}")
    return path


def test_run_bad_experiment_is_one_error_line(tmp_path, capsys, monkeypatch):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ncandidates:\n  - name: a\n    model: m/n\n    lora: {rnk: 4}\nsuites: [sentiment]\n"
                    "evaluaton: {}\n")
    code, out, err = cli(capsys, monkeypatch, "run", str(path), "--db", str(tmp_path / "db.duckdb"))
    assert error_line(code, out, err) == f"error: {path}:7: evaluaton: unknown key; did you mean 'evaluation'?"


def test_run_missing_file(tmp_path, capsys, monkeypatch):
    code, out, err = cli(capsys, monkeypatch, "run", str(tmp_path / "nope.yaml"))
    assert "nope.yaml: file not found" in error_line(code, out, err)


def test_run_unknown_suite(tmp_path, capsys, monkeypatch, causal_dir):
    path = write_experiment(tmp_path, str(causal_dir), "no-such-suite")
    code, out, err = cli(capsys, monkeypatch, "run", str(path))
    assert "suite 'no-such-suite': not a built-in suite" in error_line(code, out, err)


def test_run_unknown_metric_in_a_suite(tmp_path, capsys, monkeypatch, causal_dir):
    suite = write_suite(tmp_path / "s", "multiple_choice")
    suite.write_text(suite.read_text().replace("metrics: [accuracy]", "metrics: [acuracy]"))
    path = write_experiment(tmp_path, str(causal_dir), str(suite))
    code, out, err = cli(capsys, monkeypatch, "run", str(path))
    line = error_line(code, out, err)
    assert f"{suite}: metrics[0]: unknown metric 'acuracy'" in line and "did you mean accuracy" in line


def test_run_bad_model_ref(tmp_path, capsys, monkeypatch):
    path = write_experiment(tmp_path, str(tmp_path / "missing-model"), "sentiment")
    code, out, err = cli(capsys, monkeypatch, "run", str(path))
    assert "missing-model': no such file or directory" in error_line(code, out, err)
    path = write_experiment(tmp_path, "pack:nope", "sentiment")
    code, out, err = cli(capsys, monkeypatch, "run", str(path))
    assert "unknown pack" in error_line(code, out, err)


def test_run_then_runs_show_and_tag(tmp_path, capsys, monkeypatch, causal_dir):
    monkeypatch.setattr("harness.runner.gc", SimpleNamespace(collect=lambda: 0))
    suite = write_suite(tmp_path / "s", "classification")
    path = write_experiment(tmp_path, str(causal_dir), str(suite))
    db = str(tmp_path / "cli.duckdb")
    code, out, err = cli(capsys, monkeypatch, "run", str(path), "--db", db)
    assert code == 0, err
    run_line = out.splitlines()[0]
    assert run_line.startswith("run cli-")
    run_id = run_line.removeprefix("run ")
    assert "tiny_cls accuracy" in out and "tiny_cls f1" in out and "base" in out

    code, out, _ = cli(capsys, monkeypatch, "runs", "--db", db)
    assert code == 0 and run_id in out and "finished" in out

    code, shown, _ = cli(capsys, monkeypatch, "show", run_id[:10], "--db", db)
    assert code == 0 and shown.splitlines()[0] == f"run {run_id}" and "tiny_cls accuracy" in shown

    code, out, _ = cli(capsys, monkeypatch, "tag", run_id, "baseline", "--db", db)
    assert code == 0 and out.strip() == f"tagged {run_id} as baseline"
    code, by_tag, _ = cli(capsys, monkeypatch, "show", "baseline", "--db", db)
    assert by_tag == shown

    code, out, err = cli(capsys, monkeypatch, "show", "nope", "--db", db)
    assert "run 'nope' not found" in error_line(code, out, err)


def test_runs_on_an_empty_store(tmp_path, capsys, monkeypatch):
    from harness.store import Store

    db = tmp_path / "empty.duckdb"
    Store(db).runs()  # a store with no runs yet (reading commands never create one)
    code, out, _ = cli(capsys, monkeypatch, "runs", "--db", str(db))
    assert code == 0 and out.strip() == "no runs yet"


def test_suites_list(capsys, monkeypatch):
    code, out, _ = cli(capsys, monkeypatch, "suites", "list")
    assert code == 0
    rows = out.strip().splitlines()
    assert [r.split()[0] for r in rows] == ["mcqa", "sentiment", "summarise", "translate"]
    assert "classification" in rows[1] and "test 200" in rows[1] and "rouge" in rows[2]


def test_suites_validate_ok_and_failing(tmp_path, capsys, monkeypatch):
    good = write_suite(tmp_path / "good", "generation")
    code, out, _ = cli(capsys, monkeypatch, "suites", "validate", "sentiment", str(good))
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("ok  ") for line in lines)
    assert str(good) in lines[1] and "generation; train 6, validation 3, test 4" in lines[1]

    bad = write_suite(tmp_path / "bad", "classification")
    bad.write_text(bad.read_text().replace("labels: [negative, positive]", "labels: [neg, pos]"))
    code, out, err = cli(capsys, monkeypatch, "suites", "validate", str(bad))
    assert "is outside the label set ['neg', 'pos']" in error_line(code, out, err)


def test_score_with_compare(tmp_path, capsys, monkeypatch):
    refs = ["the cat sat on the mat", "a dog ran in the park", "it rains today", "he reads a book"]
    system = ["the cat sat on a mat", "a dog ran in a park", "it rains today", "he reads a book"]
    baseline = ["a cat", "the dog", "rain", "he reads"]
    preds = write_jsonl(tmp_path / "preds.jsonl", [{"prediction": p, "reference": r} for p, r in zip(
        system, refs, strict=True)])
    base = write_jsonl(tmp_path / "base.jsonl", [{"prediction": p, "reference": r} for p, r in zip(
        baseline, refs, strict=True)])
    code, out, err = cli(capsys, monkeypatch, "score", "--predictions", str(preds), "--metric", "bleu",
                         "--metric", "rouge:types=[\"rougeL\"]", "--compare", str(base), "--resamples", "100")
    assert code == 0, err
    result = json.loads(out)
    assert result["n"] == 4
    for name in ("bleu", "rougeL"):
        entry = result["metrics"][name]
        assert entry["low"] <= entry["value"] <= entry["high"]
        comparison = result["comparison"][name]
        assert comparison["difference"] == pytest.approx(comparison["value_b"] - comparison["value_a"])
        assert comparison["difference"] > 0 and 0 < comparison["p_value"] <= 1
    assert result["metrics"]["bleu"]["value"] > 40


def test_score_unknown_metric_is_one_error_line(tmp_path, capsys, monkeypatch):
    preds = write_jsonl(tmp_path / "p.jsonl", [{"prediction": "a", "reference": "a"}])
    code, out, err = cli(capsys, monkeypatch, "score", "--predictions", str(preds), "--metric", "blue")
    assert "unknown metric 'blue'" in error_line(code, out, err)
