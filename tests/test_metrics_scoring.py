"""`score_records` and `read_jsonl_pairs`: what `harness score` calls."""

from __future__ import annotations

import json

import pytest

from harness.errors import HarnessError
from harness.metrics.scoring import read_jsonl_pairs, score_records

REFS = ["the cat sat on the mat", "a dog ran in the park", "it rains today", "he reads a book"]
SYSTEM = ["the cat sat on a mat", "a dog ran in a park", "it rains", "he reads a book"]
BASELINE = ["a cat", "the dog", "rain", "he reads"]


def test_score_records_with_intervals_and_comparison():
    result = score_records(
        SYSTEM, REFS, [("bleu", {}), ("chrf", {"word_order": 2}), "exact_match"], 200, 0.9, 1, compare=BASELINE
    )
    json.dumps(result, allow_nan=False)  # plain JSON
    assert result["n"] == 4 and set(result["metrics"]) == {"bleu", "chrf", "exact_match"}
    bleu = result["metrics"]["bleu"]
    assert bleu["low"] <= bleu["value"] <= bleu["high"] and bleu["method"] == "percentile"
    assert bleu["signature"].startswith("nrefs:1|")
    assert result["metrics"]["exact_match"]["value"] == 0.25
    cmp = result["comparison"]["bleu"]
    assert cmp["difference"] == pytest.approx(cmp["value_b"] - cmp["value_a"]) and cmp["difference"] > 0
    assert cmp["test"] == "bootstrap" and 0 < cmp["p_value"] <= 1


def test_score_records_labels_mcnemar_and_duplicate_names():
    preds, refs = ["pos", "neg", "pos", "pos"], ["pos", "neg", "neg", "pos"]
    result = score_records(
        preds,
        refs,
        [
            ("accuracy", {}),
            ("f1", {"average": "macro"}),
            ("f1", {"average": "binary", "pos_label": "pos"}),
            ("bleu", {}),
            ("bleu", {"tokenize": "char"}),
        ],
        0,
        labels=["neg", "pos"],
        compare=["neg"] * 4,
    )
    assert result["metrics"]["accuracy"]["value"] == 0.75 and result["metrics"]["accuracy"]["low"] is None
    assert {"f1_macro", "f1_binary", "bleu", "bleu(tokenize=char)"} <= set(result["metrics"])
    assert result["comparison"]["accuracy"]["p_value"] is None
    mc = score_records(preds, refs, ["accuracy"], 100, compare=["neg"] * 4, test="mcnemar")
    assert mc["comparison"]["accuracy"]["test"] == "mcnemar"
    with pytest.raises(HarnessError, match="McNemar"):
        score_records(preds, refs, ["bleu"], 100, compare=["neg"] * 4, test="mcnemar")
    with pytest.raises(HarnessError, match="listed twice"):
        score_records(preds, refs, ["bleu", "bleu"], 0)
    with pytest.raises(HarnessError, match="4 predictions but 3 baseline"):
        score_records(preds, refs, ["accuracy"], compare=["a", "b", "c"])


def _write(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_read_jsonl_pairs(tmp_path):
    one = _write(
        tmp_path / "p.jsonl", [{"prediction": "a", "reference": ["x", "y"]}, "", {"prediction": 3, "reference": "z"}]
    )
    pairs = read_jsonl_pairs(one)
    assert pairs.predictions == ["a", "3"] and pairs.references == [["x", "y"], "z"]
    preds, refs = read_jsonl_pairs(
        _write(tmp_path / "o.jsonl", [{"out": "a"}, {"out": "b"}]),
        _write(tmp_path / "r.jsonl", [{"target": "A"}, {"target": "B"}]),
        prediction_field="out",
        reference_field="target",
    )
    assert (preds, refs) == (["a", "b"], ["A", "B"])


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (['{"prediction": "a", "reference": "b"}', "{not json"], r"bad.jsonl:2: not valid JSON"),
        (['["a", "b"]'], r"bad.jsonl:1: expected a JSON object"),
        ([{"prediction": "a"}], r"bad.jsonl:1: no field 'reference' \(fields: prediction\)"),
        ([{"prediction": None, "reference": "b"}], r"bad.jsonl:1: field 'prediction' must be a string, got null"),
        ([{"prediction": "a", "reference": []}], r"field 'reference' must be a string or a non-empty list"),
        ([], r"bad.jsonl: no records"),
    ],
)
def test_read_jsonl_pairs_errors(tmp_path, rows, message):
    with pytest.raises(HarnessError, match=message):
        read_jsonl_pairs(_write(tmp_path / "bad.jsonl", rows))


def test_read_jsonl_pairs_file_errors(tmp_path):
    with pytest.raises(HarnessError, match="predictions file .*missing.jsonl: no such file"):
        read_jsonl_pairs(tmp_path / "missing.jsonl")
    preds = _write(tmp_path / "p.jsonl", [{"prediction": "a"}, {"prediction": "b"}])
    refs = _write(tmp_path / "r.jsonl", [{"reference": "a"}])
    with pytest.raises(HarnessError, match="has 2 predictions but .*r.jsonl has 1 references"):
        read_jsonl_pairs(preds, refs)


def test_read_jsonl_pairs_encoding(tmp_path):
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes('{"prediction": "caf\u00e9", "reference": "x"}\n'.encode("latin-1"))
    with pytest.raises(HarnessError, match="latin.jsonl: not UTF-8 text"):
        read_jsonl_pairs(latin)
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes('{"prediction": "caf\u00e9", "reference": "x"}\n'.encode("utf-8-sig"))
    assert read_jsonl_pairs(bom).predictions == ["caf\u00e9"]
