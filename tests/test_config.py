"""Experiment and suite schemas: every user mistake is one HarnessError naming file, line and field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness.config import ExperimentConfig, load_experiment, load_suite_config
from harness.errors import HarnessError

ROOT = Path(__file__).resolve().parents[1]

GOOD = """\
name: exp
seed: 3
candidates:
  - name: a
    model: some/model
  - name: b
    model: other/model
    lora:
      rank: 4
      steps: 7
lora:
  rank: 8
  learning_rate: 0.001
  epochs: 2
suites: [sentiment]
"""


def write(tmp_path: Path, text: str, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def error_of(fn, *args) -> str:
    with pytest.raises(HarnessError) as info:
        fn(*args)
    message = str(info.value)
    assert "\n" not in message, "errors are one line"
    return message


def test_good_experiment_loads(tmp_path):
    cfg = load_experiment(write(tmp_path, GOOD))
    assert [c.name for c in cfg.candidates] == ["a", "b"]
    assert cfg.variants == ["base", "lora"] and cfg.suites == ["sentiment"]
    assert cfg.lora.epochs == 2 and cfg.lora.steps is None


def test_missing_file(tmp_path):
    message = error_of(load_experiment, tmp_path / "nope.yaml")
    assert "nope.yaml" in message and "not found" in message


def test_malformed_yaml_names_file_and_line(tmp_path):
    path = write(tmp_path, "name: exp\ncandidates:\n  - name: a\n    model: [unclosed\nsuites: [x]\n")
    message = error_of(load_experiment, path)
    assert message.startswith(f"{path}:")
    assert "malformed YAML" in message
    line = int(re.match(rf"{re.escape(str(path))}:(\d+):", message).group(1))
    assert line in (4, 5)  # the flow sequence opened on line 4 is never closed; the parser notices on 5


def test_top_level_must_be_mapping(tmp_path):
    assert "expected a mapping" in error_of(load_experiment, write(tmp_path, "- a\n- b\n"))


def test_unknown_key_suggests_and_names_line(tmp_path):
    path = write(tmp_path, GOOD.replace("  learning_rate: 0.001", "  learnin_rate: 0.001"))
    message = error_of(load_experiment, path)
    assert message == f"{path}:13: lora.learnin_rate: unknown key; did you mean 'learning_rate'?"


def test_unknown_key_in_candidate_list(tmp_path):
    path = write(tmp_path, GOOD.replace("    model: other/model", "    modle: other/model"))
    message = error_of(load_experiment, path)
    assert message.startswith(f"{path}:7: candidates[1].modle: unknown key; did you mean 'model'?")


def test_unknown_top_level_key_without_close_match_lists_allowed(tmp_path):
    message = error_of(load_experiment, write(tmp_path, GOOD + "zzzzzz: 1\n"))
    assert "zzzzzz: unknown key; allowed keys:" in message and "candidates" in message


def test_wrong_type_names_field_and_line(tmp_path):
    path = write(tmp_path, GOOD.replace("seed: 3", "seed: three"))
    message = error_of(load_experiment, path)
    assert message.startswith(f"{path}:2: seed:") and "integer" in message


def test_missing_required_field(tmp_path):
    path = write(tmp_path, GOOD.replace("    model: some/model\n", ""))
    message = error_of(load_experiment, path)
    assert "candidates[0].model: required field is missing" in message


def test_steps_and_epochs_together(tmp_path):
    path = write(tmp_path, GOOD.replace("  epochs: 2", "  epochs: 2\n  steps: 5"))
    message = error_of(load_experiment, path)
    assert f"{path}:11: lora: give either steps or epochs, not both" == message


def test_duplicate_candidate_names(tmp_path):
    path = write(tmp_path, GOOD.replace("name: b", "name: a"))
    message = error_of(load_experiment, path)
    assert "candidates" in message and "unique" in message and "repeated: a" in message


def test_nothing_to_run(tmp_path):
    message = error_of(load_experiment, write(tmp_path, GOOD.replace("suites: [sentiment]\n", "")))
    assert "at least one suite" in message


def test_lora_override_merge(tmp_path):
    cfg = load_experiment(write(tmp_path, GOOD))
    a, b = cfg.candidates
    plain = cfg.lora_for(a)
    assert (plain.rank, plain.learning_rate, plain.epochs, plain.steps) == (8, 0.001, 2, None)
    merged = cfg.lora_for(b)
    # b's own steps replace the experiment's epochs (not both), its rank wins, the rest is inherited
    assert (merged.rank, merged.learning_rate, merged.steps, merged.epochs) == (4, 0.001, 7, None)


def test_lora_override_is_validated_at_load(tmp_path):
    path = write(tmp_path, GOOD.replace("rank: 4", "rank: 0"))
    message = error_of(load_experiment, path)
    assert message.startswith(f"{path}:")
    assert message.endswith("candidate 'b': lora.rank: Input should be greater than or equal to 1")
    path = write(tmp_path, GOOD.replace("steps: 7", "steps: 7\n      epochs: 1"))
    assert "candidate 'b': lora: give either steps or epochs, not both" in error_of(load_experiment, path)


def test_lora_override_unknown_key(tmp_path):
    path = write(tmp_path, GOOD.replace("      rank: 4", "      rnk: 4"))
    message = error_of(load_experiment, path)
    assert message == f"{path}:8: candidates[1].lora: unknown LoRA setting 'rnk'; did you mean 'rank'?"


def test_lora_defaults_to_one_epoch():
    cfg = ExperimentConfig.model_validate({"name": "x", "candidates": [{"name": "a", "model": "m/n"}],
                                           "suites": ["s"]})
    assert cfg.lora.epochs == 1.0 and cfg.lora.steps is None


def test_config_hash_stable_and_sensitive(tmp_path):
    first = load_experiment(write(tmp_path, GOOD, "one.yaml"))
    # same content, different formatting and key order -> same hash
    reordered = GOOD.replace("name: exp\nseed: 3\n", "seed: 3\nname: exp\n").replace("suites: [sentiment]",
                                                                                        "suites:\n  - sentiment")
    second = load_experiment(write(tmp_path, reordered, "two.yaml"))
    assert first.config_hash() == second.config_hash()
    assert len(first.config_hash()) == 16
    changed = load_experiment(write(tmp_path, GOOD.replace("seed: 3", "seed: 4"), "three.yaml"))
    assert changed.config_hash() != first.config_hash()


SUITE = """\
name: s
kind: classification
data: {test: test.jsonl}
labels: [neg, pos]
template: "{{ text }}"
metrics: [accuracy, {name: f1, average: macro}]
"""


def test_suite_config_metric_shorthand(tmp_path):
    cfg = load_suite_config(write(tmp_path, SUITE, "s.yaml"))
    assert [(m.name, m.options) for m in cfg.metrics] == [("accuracy", {}), ("f1", {"average": "macro"})]
    assert cfg.fields["label"] == "label"


def test_classification_suite_without_labels(tmp_path):
    path = write(tmp_path, SUITE.replace("labels: [neg, pos]\n", ""), "s.yaml")
    message = error_of(load_suite_config, path)
    assert message.startswith(f"{path}:2: kind: a classification suite needs 'labels' (the label names, in index order")


def test_suite_yaml_booleans_as_labels_are_boolean_values(tmp_path):
    # YAML reads bare no/yes as booleans: labels are values as the data has them (tests/test_labels_references.py
    # shows the string data this then refuses, with a hint to quote them)
    path = write(tmp_path, SUITE.replace("[neg, pos]", "[no, yes]"), "s.yaml")
    config = load_suite_config(path)
    assert config.labels == ["false", "true"] and config.label_values == [False, True]


def test_suite_unknown_kind(tmp_path):
    path = write(tmp_path, SUITE.replace("kind: classification", "kind: ranking"), "s.yaml")
    message = error_of(load_suite_config, path)
    assert message.startswith(f"{path}:2: kind:")


def test_suite_without_data_source(tmp_path):
    path = write(tmp_path, SUITE.replace("data: {test: test.jsonl}", "data: {split_seed: 1}"), "s.yaml")
    message = error_of(load_suite_config, path)
    assert message.startswith(f"{path}:3: data:") and "'test'" in message


def test_suite_bad_extract_regex(tmp_path):
    text = SUITE.replace("kind: classification", "kind: generation") + "generation: {extract: '(unclosed'}\n"
    message = error_of(load_suite_config, write(tmp_path, text, "s.yaml"))
    assert "generation.extract" in message and "invalid regular expression" in message


def test_shipped_experiments_validate():
    paths = sorted((ROOT / "experiments").glob("*.yaml"))
    assert paths, "the project ships at least the demo experiment"
    for path in paths:
        load_experiment(path)
