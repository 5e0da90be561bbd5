"""Hand-computed cases for every built-in metric, and the errors users see."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.metrics import get_metric, list_metrics


def test_accuracy_by_hand():
    m = get_metric("accuracy")
    stats = m.example_stats(["a", "b ", "c", "a"], ["a", "b", "a", "b"])
    assert m.kind == "label" and m.stat_names == ["accuracy", "count"]
    assert stats.tolist() == [[1, 1], [1, 1], [0, 1], [0, 1]]
    assert m.corpus(stats) == {"accuracy": 0.5}
    assert m.example_values(stats)["accuracy"].tolist() == [1, 1, 0, 0]


def test_accuracy_int_labels_and_label_check():
    m = get_metric("accuracy")
    assert m.corpus(m.example_stats(["1", "0"], [1, 1]))["accuracy"] == 0.5
    with pytest.raises(HarnessError, match="reference 1 is 'x'"):
        m.example_stats(["a", "b"], ["a", "x"], labels=["a", "b"])


def test_f1_by_hand():
    # refs a a b b c ; preds a b b b a -> a: tp1 fp1 fn1, b: tp2 fp1 fn0, c: tp0 fp0 fn1
    preds, refs, labels = ["a", "b", "b", "b", "a"], ["a", "a", "b", "b", "c"], ["a", "b", "c"]
    f1 = {"a": 0.5, "b": 0.8, "c": 0.0}
    expected = {
        "macro": sum(f1.values()) / 3,
        "micro": 3 / 5,
        "weighted": (2 * 0.5 + 2 * 0.8 + 1 * 0.0) / 5,
    }
    for average, value in expected.items():
        m = get_metric("f1", average=average)
        assert m.score_names == [f"f1_{average}"]
        assert m.corpus(m.example_stats(preds, refs, labels=labels))[f"f1_{average}"] == pytest.approx(value)
    prf = get_metric("prf", average="macro")
    scores = prf.corpus(prf.example_stats(preds, refs, labels=labels))
    assert scores["precision_macro"] == pytest.approx((0.5 + 2 / 3 + 0) / 3)
    assert scores["recall_macro"] == pytest.approx((0.5 + 1 + 0) / 3)


def test_f1_binary_pos_label():
    m = get_metric("f1", average="binary", pos_label="pos")
    stats = m.example_stats(["pos", "pos", "neg", "neg"], ["pos", "neg", "pos", "neg"], labels=["neg", "pos"])
    assert m.stat_names == ["tp[pos]", "fp[pos]", "fn[pos]", "correct"]
    assert m.corpus(stats) == {"f1_binary": 0.5}
    assert get_metric("precision", average="binary", pos_label=1).options.pos_label == "1"


def test_f1_needs_labels_and_known_references():
    m = get_metric("f1")
    with pytest.raises(HarnessError, match="needs the label set"):
        m.example_stats(["a"], ["a"])
    with pytest.raises(HarnessError, match="not in the label set"):
        m.example_stats(["a"], ["z"], labels=["a", "b"])
    with pytest.raises(HarnessError, match="average"):
        get_metric("f1", average="samples")
    with pytest.raises(HarnessError, match="pos_label"):
        get_metric("f1", average="binary").example_stats(["a"], ["a"], labels=["a", "b"])


def test_exact_match_options():
    preds, refs = ["The Cat!", "dog", " Paris "], [["the cat"], ["cat", "dog"], ["paris"]]
    plain = get_metric("exact_match")
    assert plain.corpus(plain.example_stats(preds, refs))["exact_match"] == pytest.approx(1 / 3)
    case = get_metric("exact_match", ignore_case=True)
    assert case.example_values(case.example_stats(["PARIS"], ["paris"]))["exact_match"].tolist() == [1.0]
    norm = get_metric("exact_match", normalize="true")
    assert norm.corpus(norm.example_stats(preds, refs))["exact_match"] == 1.0


def test_bleu_by_hand():
    m = get_metric("bleu")
    stats = m.example_stats(["the cat sat on the mat"], ["the cat sat on the mat"])
    assert m.stat_names[:2] == ["sys_len", "ref_len"] and stats.shape == (1, 10)
    assert stats[0].tolist() == [6, 6, 6, 5, 4, 3, 6, 5, 4, 3]
    assert m.corpus(stats)["bleu"] == pytest.approx(100.0)
    # 4-word hypothesis, one 5-word reference: precisions 100, bp = exp(1 - 5/4)
    short = m.example_stats(["a b c d"], [["a b c d e"]])
    assert m.corpus(short)["bleu"] == pytest.approx(100 * math.exp(1 - 5 / 4))
    assert m.corpus(m.example_stats(["x y"], ["a b"]))["bleu"] == 0.0
    assert m.signature.startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp")


def test_bleu_multi_reference_uses_closest_length():
    m = get_metric("bleu")
    stats = m.example_stats(["a b c d"], [["a b c d e f g", "a b c d e"]])
    assert stats[0, 1] == 5
    assert "nrefs:2" in m.signature


def test_chrf_by_hand():
    m = get_metric("chrf")
    stats = m.example_stats(["abc"], ["abc"])
    assert m.corpus(stats)["chrf"] == pytest.approx(100.0)
    assert len(m.stat_names) == 18
    assert len(get_metric("chrf", word_order=2).stat_names) == 24
    assert m.corpus(m.example_stats(["xyz"], ["abc"]))["chrf"] == 0.0


def test_rouge_by_hand():
    m = get_metric("rouge", types=["rouge1", "rougeL"], use_stemmer=False)
    stats = m.example_stats(["the cat sat", "a dog"], ["the cat", "a dog"])
    assert m.score_names == ["rouge1", "rougeL"] and m.stat_names == ["rouge1", "rougeL", "count"]
    # example 1: p = 2/3, r = 1 -> f = 0.8 ; example 2: 1.0
    assert m.corpus(stats)["rouge1"] == pytest.approx(0.9)
    assert m.example_values(stats)["rougeL"].tolist() == pytest.approx([0.8, 1.0])
    both = m.example_stats(["the cat sat"], [["a dog", "the cat sat"]])
    assert m.corpus(both)["rouge1"] == 1.0
    assert get_metric("rouge", types="rouge2,rougeLsum").score_names == ["rouge2", "rougeLsum"]


def test_scores_from_sums_is_vectorised():
    m = get_metric("bleu")
    stats = m.example_stats(["a b c d e", "a b x d e"], ["a b c d e", "a b c d e"])
    sums = np.stack([stats, stats[::-1] * 2])  # shape (2, 2, k)
    out = m.scores_from_sums(sums)["bleu"]
    assert out.shape == (2, 2)
    for i in range(2):
        for j in range(2):
            assert out[i, j] == m.scores_from_sums(sums[i, j])["bleu"]


def test_unknown_metric_and_option_errors():
    with pytest.raises(HarnessError, match="did you mean bleu"):
        get_metric("bleau")
    with pytest.raises(HarnessError, match="unknown option 'tokenizer'.*tokenize"):
        get_metric("bleu", tokenizer="13a")
    with pytest.raises(HarnessError, match="unknown tokenize 'klingon'"):
        get_metric("bleu", tokenize="klingon")
    with pytest.raises(HarnessError, match="'lowercase' must be true or false"):
        get_metric("bleu", lowercase="maybe")
    with pytest.raises(HarnessError, match="'types'"):
        get_metric("rouge", types=["rougeX"])
    with pytest.raises(HarnessError, match="3 predictions but 2 references"):
        get_metric("bleu").example_stats(["a", "b", "c"], ["a", "b"])
    with pytest.raises(HarnessError, match="prediction 0 is missing"):
        get_metric("chrf").example_stats([None], ["a"])
    assert {"accuracy", "bleu", "chrf", "exact_match", "f1", "rouge"} <= set(list_metrics())
