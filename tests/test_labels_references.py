"""Labels as the data has them (booleans, integers, strings, a mapping) and several references per example.

Parity: a suite over real rows (../shared/data) with boolean labels scores exactly as scikit-learn does,
and one with two reference columns (or a list-valued column) exactly as sacreBLEU (both reference
streams) and rouge-score (best of the references) do. Row numbers in errors are the file's own lines.
"""

from __future__ import annotations

import json
import random
import re
import shlex
from pathlib import Path

import pytest
import yaml
from cli_helper import cli

from harness.errors import HarnessError
from harness.evaluation import compute_stats
from harness.records import Prediction
from harness.suites import label_summary, load_suite

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def _real(name: str, limit: int) -> list[dict]:
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (real data lives in ../shared/data beside the project)")
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()][:limit]


def _write(tmp_path: Path, suite: dict, rows: list[dict], name: str = "test.jsonl") -> Path:
    (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False), encoding="utf-8")
    return path


def _classification(labels, **extra) -> dict:
    return {"name": "bools", "kind": "classification", "data": {"test": "test.jsonl"}, "labels": labels,
            "template": "Review: {{ text }}\nSentiment:", "metrics": ["accuracy", {"name": "f1", "average": "macro"}],
            **extra}


def _corpus(suite, outputs: list[str]) -> dict[str, float]:
    examples = suite.examples("test")
    preds = [Prediction(e.id, e.prompt, str(e.reference), o) for e, o in zip(examples, outputs, strict=True)]
    out = {}
    for metric, stats in compute_stats(suite, examples, preds):
        out |= metric.corpus(stats.stats)
    return out


# ---------------------------------------------------------------------------------------------------
# labels


def test_boolean_labels_with_a_mapping_score_as_scikit_learn(tmp_path):
    from sklearn.metrics import accuracy_score, f1_score

    rows = [{"id": r["id"], "text": r["text"], "label": bool(r["label"])} for r in _real("sst2_dev.jsonl", 120)]
    path = _write(tmp_path, _classification({"negative": False, "positive": True}), rows)
    suite = load_suite(str(path))
    gold = [e.reference for e in suite.examples("test")]
    assert gold == ["positive" if r["label"] else "negative" for r in rows]  # never inverted
    rnd = random.Random(0)
    outputs = [g if rnd.random() < 0.7 else ("negative" if g == "positive" else "positive") for g in gold]
    scores = _corpus(suite, outputs)
    assert scores["accuracy"] == pytest.approx(accuracy_score(gold, outputs), abs=1e-12)
    assert scores["f1_macro"] == pytest.approx(f1_score(gold, outputs, average="macro"), abs=1e-12)
    counts = sum(r["label"] for r in rows)
    assert label_summary(suite) == [f"test: negative {len(rows) - counts}, positive {counts}"]


def test_boolean_labels_as_a_plain_list_keep_their_order(tmp_path):
    rows = [{"text": "a", "label": True}, {"text": "b", "label": False}, {"text": "c", "label": True}]
    suite = load_suite(str(_write(tmp_path, _classification([False, True]), rows)))
    assert suite.config.labels == ["false", "true"]
    assert [e.answer for e in suite.examples("test")] == [1, 0, 1]


@pytest.mark.parametrize("labels, data, expect", [
    ([1, 2, 3, 4], [4, 1, 2], [3, 0, 1]),  # integer labels (AG News's 1..4) match by value, not position
    (["neg", "pos"], [1, 0, 1], [1, 0, 1]),  # string names over 0/1 data: positions, as SST-2 has them
    ({"world": 0, "sport": "S"}, ["S", 0], [1, 0]),  # a mapping may mix types
])
def test_labels_match_the_data_by_value(tmp_path, labels, data, expect):
    rows = [{"text": str(i), "label": v} for i, v in enumerate(data)]
    suite = load_suite(str(_write(tmp_path, _classification(labels), rows)))
    assert [e.answer for e in suite.examples("test")] == expect


def test_boolean_data_with_string_labels_is_refused_naming_the_row(tmp_path):
    # what used to validate ok and invert every gold label: booleans read as list positions
    rows = [{"text": "good", "label": True}, {"text": "bad", "label": False}]
    path = _write(tmp_path, _classification(["True", "False"]), rows)
    with pytest.raises(HarnessError) as info:
        load_suite(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}: test split, row 1 ({tmp_path / 'test.jsonl'}:1): field 'label': value True")
    assert 'labels: {"True": true, "False": false}' in message


def test_unquoted_yaml_yes_no_labels_over_string_data_say_to_quote(tmp_path):
    rows = [{"text": "x", "label": "no"}]
    path = _write(tmp_path, _classification(["x"]), rows)
    path.write_text(path.read_text().replace("- x\n", "- no\n- yes\n", 1))
    with pytest.raises(HarnessError, match="YAML reads unquoted yes/no"):
        load_suite(str(path))


def test_a_label_outside_the_set_names_its_file_line_after_the_shuffle(tmp_path):
    rows = [{"id": f"r{i}", "text": f"t{i}", "label": "pos" if i % 2 else "neg"} for i in range(40)]
    rows[33]["label"] = "neutral"
    (tmp_path / "all.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    suite = _classification(["neg", "pos"])
    suite["data"] = {"source": "all.jsonl"}
    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite), encoding="utf-8")
    with pytest.raises(HarnessError) as info:
        load_suite(str(path))
    assert f"({tmp_path / 'all.jsonl'}:34): field 'label': value 'neutral'" in str(info.value)


def test_a_yaml_boolean_label_name_is_refused(tmp_path):
    path = _write(tmp_path, _classification(["x"]), [{"text": "a", "label": True}])
    path.write_text(re.sub(r"labels:\n- x\n", "labels: {no: false, yes: true}\n", path.read_text()))
    with pytest.raises(HarnessError, match="label name False is not a string.*quote it"):
        load_suite(str(path))


# ---------------------------------------------------------------------------------------------------
# several references


def _generation(reference) -> dict:
    return {"name": "two_refs", "kind": "generation", "data": {"test": "test.jsonl"},
            "fields": {"reference": reference}, "template": "English: {{ source }}\nGerman:",
            "metrics": ["bleu", "chrf", {"name": "rouge", "types": ["rouge1", "rougeL"]}]}


def _perturb(text: str, rnd: random.Random) -> str:
    words = [w for w in text.split() if rnd.random() > 0.2]
    if len(words) > 2:
        i = rnd.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words) or text


@pytest.fixture(scope="module")
def two_refs() -> tuple[list[dict], list[str]]:
    rnd = random.Random(1)
    rows = [{"id": r["id"], "source": r["source"], "target": r["target"], "target_alt": _perturb(r["target"], rnd)}
            for r in _real("multi30k_test2016_en_de.jsonl", 150)]
    hyps = [_perturb(r["target"], rnd) for r in rows]
    return rows, hyps


@pytest.mark.parametrize("layout", ["two columns", "a list-valued column"])
def test_two_references_score_as_sacrebleu_and_rouge_score(tmp_path, two_refs, layout):
    import sacrebleu
    from rouge_score import rouge_scorer

    rows, hyps = two_refs
    if layout == "two columns":
        path = _write(tmp_path, _generation(["target", "target_alt"]), rows)
    else:
        listed = [{"id": r["id"], "source": r["source"], "refs": [r["target"], r["target_alt"]]} for r in rows]
        path = _write(tmp_path, _generation("refs"), listed)
    suite = load_suite(str(path))
    assert suite.examples("test")[0].reference == [rows[0]["target"], rows[0]["target_alt"]]
    scores = _corpus(suite, hyps)
    streams = [[r["target"] for r in rows], [r["target_alt"] for r in rows]]
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, streams).score, abs=1e-9)
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, streams).score, abs=1e-9)
    single = sacrebleu.corpus_bleu(hyps, streams[:1]).score
    assert scores["bleu"] != pytest.approx(single, abs=1e-6)  # the second stream counts
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=True)
    best = [scorer.score_multi([a, b], h) for a, b, h in zip(*streams, hyps, strict=True)]
    for kind in ("rouge1", "rougeL"):
        assert scores[kind] == pytest.approx(sum(s[kind].fmeasure for s in best) / len(best), abs=1e-12)


def test_a_null_second_reference_is_skipped_and_none_at_all_is_refused(tmp_path):
    rows = [{"source": "a", "target": "x", "target_alt": None}, {"source": "b", "target": "y", "target_alt": "z"}]
    suite = load_suite(str(_write(tmp_path, _generation(["target", "target_alt"]), rows)))
    assert [e.reference for e in suite.examples("test")] == [["x"], ["y", "z"]]
    rows.append({"source": "c", "target": None, "target_alt": None})
    with pytest.raises(HarnessError, match=r"test split, row 3 \(.*test.jsonl:3\): field .*no reference"):
        load_suite(str(_write(tmp_path, _generation(["target", "target_alt"]), rows)))


def test_comma_joined_columns_get_a_hint_and_lists_only_for_reference(tmp_path):
    rows = [{"source": "a", "target": "x", "target_alt": "y"}]
    with pytest.raises(HarnessError, match=r"give a list: \[target, target_alt\]"):
        load_suite(str(_write(tmp_path, _generation("target, target_alt"), rows)))
    suite = _generation("target")
    suite["fields"]["id"] = ["a", "b"]
    with pytest.raises(HarnessError, match="fields.id: give one column name; only 'reference' takes a list"):
        load_suite(str(_write(tmp_path, suite, rows)))


# ---------------------------------------------------------------------------------------------------
# the worked examples in README.md and docs/suites.md, run exactly as printed

FILE = re.compile(r"<!-- file: (\S+) -->\n```\w*\n(.*?)```", re.DOTALL)
OUTPUT = re.compile(r"<!-- output: (.+?) -->\n```text\n\$ \1\n(.*?)```", re.DOTALL)
FINGERPRINT = re.compile(r"fingerprint [0-9a-f]{16}")


def _cli(capsys, monkeypatch, command: str) -> str:
    """A command line as printed in the docs (`harness ...`), run in-process: its stdout then its stderr."""
    program, *args = shlex.split(command)
    assert program == "harness", command
    _, out, err = cli(capsys, monkeypatch, *args)
    return out + err


@pytest.mark.parametrize("doc", ["docs/suites.md", "README.md"])
def test_the_worked_examples_run_as_printed(tmp_path, capsys, monkeypatch, doc):
    files = dict(FILE.findall((ROOT / "docs" / "suites.md").read_text(encoding="utf-8")))
    text = (ROOT / doc).read_text(encoding="utf-8")
    files |= dict(FILE.findall(text))
    assert {"yes_no.yaml", "captions.yaml", "yes_no.jsonl", "captions.jsonl", "tickets.yaml"} <= set(files)
    for name, content in files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    outputs = OUTPUT.findall(text)
    assert {c.split()[1] for c, _ in outputs} == {"suites", "data"}, outputs
    for command, expected in outputs:
        got = _cli(capsys, monkeypatch, command)
        assert FINGERPRINT.sub("fingerprint F", got) == FINGERPRINT.sub("fingerprint F", expected), command
    assert "labels test: no 1, yes 2" in text and "[target, target_alt]" in text and "fail_overlap" in files[
        "tickets.yaml"]


def test_the_documented_inverted_labels_error_is_what_validate_says(tmp_path, capsys, monkeypatch):
    text = (ROOT / "docs" / "suites.md").read_text(encoding="utf-8")
    files = dict(FILE.findall(text))
    printed = next(line for line in text.splitlines() if line.startswith("error: yes_no.yaml: test split"))
    (tmp_path / "yes_no.jsonl").write_text(files["yes_no.jsonl"], encoding="utf-8")
    (tmp_path / "yes_no.yaml").write_text(files["yes_no.yaml"].replace('{"no": false, "yes": true}',
                                                                       '["True", "False"]'), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert _cli(capsys, monkeypatch, "harness suites validate yes_no.yaml").strip() == printed


def test_several_references_are_stored_and_exported_as_a_list(tmp_path, causal_dir):
    from harness.gate.results_file import read_results, write_results
    from harness.runner import run_experiment
    from harness.store import Store
    from harness.store.gates import run_results

    rows = [{"id": f"r{i}", "source": f"word {i}", "target": f"Wort {i}", "target_alt": f"Begriff {i}"}
            for i in range(4)]
    rows[3]["target_alt"] = None
    suite = _write(tmp_path, _generation(["target", "target_alt"]), rows)
    experiment = tmp_path / "exp.yaml"
    experiment.write_text(f"name: refs\ndevice: cpu\ncandidates:\n  - {{name: tiny, model: '{causal_dir}'}}\n"
                          f"variants: [base]\nsuites: ['{suite}']\nevaluation: {{bootstrap_resamples: 10}}\n"
                          , encoding="utf-8")
    store = Store(tmp_path / "h.duckdb")
    run_id, status = run_experiment(experiment, store)
    assert status == "finished"
    stored = store.table("predictions", [run_id]).sort_values("example_id")
    assert [list(x) for x in stored.reference_list] == [["Wort 0", "Begriff 0"], ["Wort 1", "Begriff 1"],
                                                         ["Wort 2", "Begriff 2"], ["Wort 3"]]
    header, frame = run_results(store, run_id)
    for out in (tmp_path / "r.jsonl", tmp_path / "r.parquet"):
        write_results(out, header, frame)
        _, back = read_results(out)
        by_id = {e: list(r) for e, r in zip(back.example_id, back.reference_list, strict=True)}
        assert by_id["r1"] == ["Wort 1", "Begriff 1"] and by_id["r3"] == ["Wort 3"]
