"""`harness data check` and the checks behind it: overlap (exact, near-duplicate), label balance, empty,
over-long and duplicated rows, thresholds that turn warnings into errors, rows named by file line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cli_helper import cli

from harness.datacheck import check_suites, load_targets
from harness.datacheck.text import normalise, shingles
from harness.suites import builtin_names, load_suite

WORDS = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
         "quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()


def _sentence(i: int) -> str:
    return " ".join(WORDS[(i * 7 + k * 3) % len(WORDS)] + str(i) for k in range(8))


def _suite(tmp_path: Path, train: list[dict], test: list[dict], **checks) -> Path:
    for name, rows in (("train", train), ("test", test)):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    suite = {"name": "leaky", "kind": "classification", "data": {"train": "train.jsonl", "test": "test.jsonl"},
             "labels": ["neg", "pos"], "template": "{{ text }} =>", "metrics": ["accuracy"]}
    if checks:
        suite["checks"] = checks
    path = tmp_path / "leaky.yaml"
    path.write_text(yaml.safe_dump(suite), encoding="utf-8")
    return path


def _rows(n: int, start: int = 0) -> list[dict]:
    return [{"text": _sentence(i), "label": ["neg", "pos"][i % 2]} for i in range(start, start + n)]


def test_normalised_text_and_shingles():
    assert normalise("  The CAT, sat!\n on\tthe mat. ") == "the cat sat on the mat"
    assert shingles("a b c d", 3) == {"a b c", "b c d"}
    assert shingles("a b", 3) == {"a b"} and shingles("", 3) == frozenset()


def test_overlap_with_the_train_split_names_the_file_lines(tmp_path, capsys, monkeypatch):
    train = _rows(10)
    test = _rows(6, start=100)
    test[2] = {"text": train[4]["text"].upper() + "!", "label": "pos"}  # the same row, case and punctuation aside
    near = train[7]["text"].split()
    near[-1] = "changed"
    test[4] = {"text": " ".join(near), "label": "neg"}  # 7 of 8 words: a near duplicate
    path = _suite(tmp_path, train, test, near_duplicate=0.7)  # 5 of 7 distinct 3-word shingles shared: 0.71
    code, out, err = cli(capsys, monkeypatch, "data", "check", str(path))
    assert code == 0, err
    line = next(x for x in out.splitlines() if " overlap: " in x)
    assert line.startswith("warning: suite leaky: overlap: 2 of 6 test rows also in the train split: ")
    assert f"test {tmp_path / 'test.jsonl'}:3 = {tmp_path / 'train.jsonl'}:5;" in line
    assert f"test {tmp_path / 'test.jsonl'}:5 = {tmp_path / 'train.jsonl'}:8 (near, Jaccard 0.71)" in line


def test_a_threshold_turns_the_warning_into_an_error(tmp_path, capsys, monkeypatch):
    train, test = _rows(10), _rows(5, start=100)
    test[0] = dict(train[0])
    path = _suite(tmp_path, train, test, fail_overlap=0.0)
    out_json = tmp_path / "checks.json"
    code, out, err = cli(capsys, monkeypatch, "data", "check", str(path), "--json", str(out_json))
    assert code == 2 and err.strip().splitlines() == [
        "error: data check: 1 error(s) (leaky overlap); fix the data, or raise the suite's checks.fail_* thresholds"]
    assert out.startswith("error: suite leaky: overlap: 1 of 5 test rows")
    found = json.loads(out_json.read_text())["findings"]
    assert found[0]["rows"] == [f"{tmp_path / 'test.jsonl'}:1"] and found[0]["severity"] == "error"
    # under the threshold it stays a warning
    path = _suite(tmp_path, train, test, fail_overlap=0.5)
    assert check_suites([load_suite(str(path))]).errors == []


def test_balance_empty_long_and_duplicated_rows(tmp_path):
    train = [{"text": _sentence(i), "label": "pos"} for i in range(9)] + [{"text": _sentence(50), "label": "neg"}]
    train[3] = {"text": "   ", "label": "pos"}
    train[5] = {"text": "x" * 300, "label": "pos"}
    train[8] = {"text": train[1]["text"], "label": "neg"}
    path = _suite(tmp_path, train, _rows(4, start=200), max_chars=200, max_label_share=0.7,
                  fail_label_share=0.9)
    report = check_suites([load_suite(str(path))])
    by_kind = {f.check: f for f in report.findings}
    assert set(by_kind) == {"label_share", "empty", "long", "duplicate"}
    assert by_kind["label_share"].message == "train split: label 'pos' is 80% of the rows (neg 2, pos 8)"
    assert by_kind["label_share"].severity == "warning"  # above max_label_share, not above fail_label_share
    assert by_kind["empty"].rows == [f"{tmp_path / 'train.jsonl'}:4"]
    assert by_kind["long"].rows == [f"{tmp_path / 'train.jsonl'}:6"]
    assert by_kind["duplicate"].message.endswith(f"{tmp_path / 'train.jsonl'}:9 = {tmp_path / 'train.jsonl'}:2 "
                                                 "(labels differ)")


def test_an_experiment_checks_each_suite_against_the_runs_lora_data(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    shared = _rows(1, start=500)[0]
    _suite(a, _rows(6), _rows(3, start=100) + [shared])
    path_b = _suite(b, _rows(6, start=300) + [shared], _rows(3, start=400))
    path_b.write_text(path_b.read_text().replace("name: leaky", "name: other"))
    experiment = {"name": "e", "candidates": [{"name": "m", "model": "hf:none"}], "suites": ["a/leaky.yaml",
                  "b/leaky.yaml"]}
    exp_path = tmp_path / "experiment.yaml"
    exp_path.write_text(yaml.safe_dump(experiment), encoding="utf-8")
    suites, lora = load_targets(str(exp_path))
    assert [s.name for s in suites] == ["leaky", "other"] and lora
    lines = check_suites(suites, lora_data=lora).lines()
    assert any(x.startswith("warning: suite leaky: overlap: 1 of 4 test rows also in the LoRA training data of "
                            f"suite other: test {a / 'test.jsonl'}:4 = {b / 'train.jsonl'}:7") for x in lines)
    assert "ok: suite other: no finding" in lines
    exp_path.write_text(yaml.safe_dump({**experiment, "variants": ["base"]}), encoding="utf-8")
    suites, lora = load_targets(str(exp_path))  # no LoRA variant: no LoRA training data to compare with
    assert lora is False and not any("LoRA" in x for x in check_suites(suites, lora_data=lora).lines())


@pytest.mark.parametrize("name", builtin_names())
def test_the_builtin_suites_have_warnings_only_and_say_which(name):
    """The built-in suites are small templated sets: the checks say which rows repeat, and nothing is an error."""
    report = check_suites([load_suite(name)])
    assert report.errors == []
    documented = {"sentiment", "mcqa", "summarise", "translate"}  # docs/suites.md names the leaky ones
    assert any(f.check == "overlap" for f in report.findings) == (name in documented)
    for finding in report.findings:
        assert all(":" in row and row.split(":")[-1].isdigit() for row in finding.rows), finding.rows
    if not report.findings:
        assert report.lines() == [f"ok: suite {name}: no finding"]


def _experiment(tmp_path: Path, model: Path, suite: Path) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(f"name: dc\ndevice: cpu\ncandidates:\n  - {{name: tiny, model: '{model}'}}\nvariants: [base]\n"
                    f"suites: ['{suite}']\nevaluation: {{bootstrap_resamples: 10}}\n", encoding="utf-8")
    return path


def test_harness_run_checks_the_data_records_it_and_refuses_on_an_error(tmp_path, capsys, monkeypatch, causal_dir):
    from types import SimpleNamespace

    monkeypatch.setattr("harness.runner.gc", SimpleNamespace(collect=lambda: 0))
    train, test = _rows(6), _rows(3, start=100)
    test[1] = {"text": train[2]["text"], "label": "pos"}
    (tmp_path / "s").mkdir()
    suite = _suite(tmp_path / "s", train, test)
    db = tmp_path / "dc.duckdb"
    code, out, err = cli(capsys, monkeypatch, "run", str(_experiment(tmp_path, causal_dir, suite)), "--db", str(db))
    assert code == 0, err
    assert "data checks: 1 finding(s) (leaky overlap)" in err
    run_id = out.splitlines()[0].removeprefix("run ")
    recorded = json.loads((tmp_path / "artifacts" / run_id / "data_checks.json").read_text())
    assert recorded["findings"][0]["rows"] == [f"{tmp_path / 's' / 'test.jsonl'}:2"]

    suite.write_text(suite.read_text() + "checks: {fail_overlap: 0.0}\n")
    other_db = tmp_path / "refused.duckdb"
    code, _, err = cli(capsys, monkeypatch, "run", str(tmp_path / "exp.yaml"), "--db", str(other_db))
    assert code == 2 and err.strip().splitlines()[-1].startswith("error: data check: 1 error(s) (leaky overlap)")
    assert not other_db.exists()  # refused before the store is touched
