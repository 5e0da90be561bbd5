"""The suite docs and the examples written from them: they validate, run, and the CLI names mistakes.

examples/suites/ holds two suites written from docs/suites.md alone (a generation suite with a regex
answer extractor, a multiple-choice suite with three demonstrations). They must validate through
`harness suites validate`, run end to end on a tiny in-process causal model, and match the copies
printed in the docs. Every YAML example in docs/suites.md and docs/experiments.md must validate.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cli_helper import cli, error_line

from harness.config import ExperimentConfig, SuiteConfig
from harness.store import Store

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "suites"
EXTRACT = EXAMPLES / "extract_answer.yaml"
CAPITALS = EXAMPLES / "capitals_fewshot.yaml"


def one_error(capsys, monkeypatch, path: Path) -> str:
    line = error_line(*cli(capsys, monkeypatch, "suites", "validate", str(path)))
    assert line.startswith(f"error: {path}"), line  # the file is named first
    return line


def yaml_blocks(doc: Path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", doc.read_text(encoding="utf-8"), flags=re.DOTALL)


# ---------------------------------------------------------------------------------------------------
# the examples


def test_examples_validate_with_the_console_script():
    harness = Path(sys.executable).parent / "harness"
    result = subprocess.run([str(harness), "suites", "validate", str(EXTRACT), str(CAPITALS)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"ok  {EXTRACT}  (generation; test 12; fingerprint ")
    assert lines[1].startswith(f"ok  {CAPITALS}  (multiple_choice; train 6, test 10; fingerprint ")


def test_examples_render_as_the_docs_say():
    from harness.predict import extract
    from harness.suites import load_suite

    capitals = load_suite(str(CAPITALS))
    prompt = capitals.examples("test", 1)[0].prompt
    assert prompt.count("Q: What is the capital of") == 4  # three demonstrations and the question
    assert prompt.endswith("\n\nQ: What is the capital of Portugal?\nA:")
    demos = prompt.split("\n\n")[:3]
    assert all(re.fullmatch(r"Q: What is the capital of [A-Za-z ]+\?\nA: [A-Za-z ]+", d) for d in demos), demos
    example = capitals.examples("test")[7]
    assert example.choices[example.answer] == "Wellington"  # an answer given as the choice's text

    problems = load_suite(str(EXTRACT))
    pattern = problems.config.generation.extract
    assert extract("She has 3 + 4 = 7 apples. The answer is 7.", pattern) == "7"
    assert extract("5 - 8 gives minus three, so the answer is -3.", pattern) == "-3"
    assert extract("I do not know.", pattern) == "I do not know."


def test_examples_are_printed_in_the_docs():
    blocks = [yaml.safe_load(b) for b in yaml_blocks(ROOT / "docs" / "suites.md")]
    for path in (EXTRACT, CAPITALS):
        assert yaml.safe_load(path.read_text(encoding="utf-8")) in blocks, f"{path.name} differs from docs/suites.md"


def test_examples_run_end_to_end(tmp_path, causal_dir):
    from harness.runner import run_experiment

    experiment = tmp_path / "exp.yaml"
    experiment.write_text(f"""\
name: docs-examples
device: cpu
candidates:
  - name: tiny
    model: {causal_dir}
variants: [base]
suites: [{EXTRACT}, {CAPITALS}]
evaluation:
  max_examples: 4
  bootstrap_resamples: 50
""", encoding="utf-8")
    store = Store(tmp_path / "h.duckdb")
    run_id, status = run_experiment(experiment, store)
    assert status == "finished"
    items = store.table("items", [run_id]).set_index("suite")
    assert items.loc["extract_answer", "status"] == "done" and items.loc["extract_answer", "n_examples"] == 4
    assert items.loc["capitals_fewshot", "status"] == "done" and items.loc["capitals_fewshot", "n_examples"] == 4
    preds = store.table("predictions", [run_id])
    capitals = preds[preds.suite == "capitals_fewshot"]
    assert all(p.count("Q: What is the capital of") == 4 for p in capitals.input)
    assert all(len(s) == 4 for s in capitals.choice_scores)
    problems = preds[preds.suite == "extract_answer"]
    assert problems.input.str.endswith("\nSolution:").all() and problems.error.isna().all()
    scores = store.scores(run_id).set_index("suite")
    assert scores.loc["extract_answer", "score"] == "exact_match"
    assert scores.loc["capitals_fewshot", "score"] == "accuracy"


# ---------------------------------------------------------------------------------------------------
# every YAML example in the docs is a valid configuration


def test_suite_doc_examples_are_valid_suites():
    blocks = [yaml.safe_load(b) for b in yaml_blocks(ROOT / "docs" / "suites.md")]
    suites = [b for b in blocks if isinstance(b, dict) and "kind" in b]
    assert len(suites) >= 4
    for block in suites:
        SuiteConfig.model_validate(block)


def test_experiment_doc_examples_are_valid_experiments():
    blocks = yaml_blocks(ROOT / "docs" / "experiments.md")  # lm-eval task YAMLs there use tags like !function
    experiments = [yaml.safe_load(b) for b in blocks if b.startswith("name:") and "\ncandidates:" in b]
    assert experiments
    for block in experiments:
        cfg = ExperimentConfig.model_validate(block)
        assert cfg.lmeval.adapter_from in {Path(s).stem for s in cfg.suites}


# ---------------------------------------------------------------------------------------------------
# `harness suites validate` names the file and the field of each mistake

GOOD = """\
name: reviews
kind: classification
data:
  test: test.jsonl
fields:
  label: sentiment
labels: [negative, positive]
template: "Review: {{ text }}\\nAnswer:"
metrics: [accuracy]
"""
ROWS = '{"text": "great", "sentiment": "positive"}\n{"text": "awful", "sentiment": 0}\n'


def write(tmp_path: Path, suite: str = GOOD, rows: str = ROWS) -> Path:
    (tmp_path / "test.jsonl").write_text(rows, encoding="utf-8")
    path = tmp_path / "suite.yaml"
    path.write_text(suite, encoding="utf-8")
    return path


def test_a_good_suite_validates(tmp_path, capsys, monkeypatch):
    path = write(tmp_path)
    code, out, err = cli(capsys, monkeypatch, "suites", "validate", str(path))
    assert code == 0, err
    assert out.startswith(f"ok  {path}  (classification; test 2; fingerprint ")


def test_missing_field(tmp_path, capsys, monkeypatch):
    path = write(tmp_path, GOOD.replace('template: "Review: {{ text }}\\nAnswer:"\n', ""))
    assert one_error(capsys, monkeypatch, path) == f"error: {path}:1: template: required field is missing"


def test_missing_labels_for_classification(tmp_path, capsys, monkeypatch):
    path = write(tmp_path, GOOD.replace("labels: [negative, positive]\n", ""))
    line = one_error(capsys, monkeypatch, path)
    assert "needs 'labels'" in line


def test_template_naming_an_unknown_field(tmp_path, capsys, monkeypatch):
    path = write(tmp_path, GOOD.replace("{{ text }}", "{{ review }}"))
    line = one_error(capsys, monkeypatch, path)
    assert line.startswith(f"error: {path}: test split, row 1 (")
    assert ":1): field(s) review missing (columns: sentiment, text)" in line


def test_label_field_missing_from_the_data(tmp_path, capsys, monkeypatch):
    path = write(tmp_path, GOOD.replace("label: sentiment", "label: stars"))
    assert "field(s) stars missing" in one_error(capsys, monkeypatch, path)


def test_unknown_metric(tmp_path, capsys, monkeypatch):
    path = write(tmp_path, GOOD.replace("metrics: [accuracy]", "metrics: [accuracy, acurracy]"))
    line = one_error(capsys, monkeypatch, path)
    assert line.startswith(f"error: {path}: metrics[1]: unknown metric 'acurracy'; did you mean accuracy?")


def test_unknown_metric_option(tmp_path, capsys, monkeypatch):
    path = write(tmp_path, GOOD.replace("metrics: [accuracy]", "metrics: [{name: f1, averag: macro}]"))
    line = one_error(capsys, monkeypatch, path)
    assert line.startswith(f"error: {path}: metrics[0]: metric 'f1': unknown option 'averag'")


@pytest.mark.parametrize("rows", ["", "\n\n"])
def test_empty_split(tmp_path, capsys, monkeypatch, rows):
    path = write(tmp_path, rows=rows)
    assert one_error(capsys, monkeypatch, path) == f"error: {path}: data: the test split is empty"


def test_few_shot_without_train_split(tmp_path, capsys, monkeypatch):
    path = write(tmp_path, GOOD + "few_shot: {k: 2}\n")
    assert one_error(capsys, monkeypatch, path) == f"error: {path}: few_shot: k=2 needs a non-empty train split"


def test_label_outside_the_label_set(tmp_path, capsys, monkeypatch):
    path = write(tmp_path, rows=ROWS + '{"text": "meh", "sentiment": "neutral"}\n')
    line = one_error(capsys, monkeypatch, path)
    assert line.startswith(f"error: {path}: test split, row 3 ({tmp_path / 'test.jsonl'}:3): field 'sentiment': "
                           "value 'neutral' is outside the label set ['negative', 'positive']; fix the data")


def test_answer_outside_the_choices(tmp_path, capsys, monkeypatch):
    suite = GOOD.replace("kind: classification", "kind: multiple_choice").replace(
        "fields:\n  label: sentiment\nlabels: [negative, positive]\n", "")
    path = write(tmp_path, suite, rows='{"text": "a", "choices": ["x", "y"], "answer": 2}\n')
    assert "field 'answer': value 2 is outside the label set ['x', 'y']" in one_error(capsys, monkeypatch, path)


def test_unknown_key_gets_a_suggestion(tmp_path, capsys, monkeypatch):
    path = write(tmp_path, GOOD.replace("template:", "tempalte:"))
    line = one_error(capsys, monkeypatch, path)
    assert line == f"error: {path}:8: tempalte: unknown key; did you mean 'template'?"
