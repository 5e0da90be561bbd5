"""Parity with the reference implementations on real data in ../shared/data.

Systems are derived deterministically from the references (word drops and swaps), so the tests
need no model. Skipped, saying why, where ../shared/data is absent.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from harness.metrics import bootstrap_intervals, get_metric, paired_test, resample_indices, resampled_scores

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TOL = 1e-9


def _rows(name: str) -> list[dict]:
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"{path} is absent (real data lives in ../shared/data beside the project)")
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _perturb(text: str, rnd: random.Random, drop: float) -> str:
    words = [w for w in text.split() if rnd.random() > drop]
    if len(words) > 2 and rnd.random() < 0.3:
        i = rnd.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    return " ".join(words)


@pytest.fixture(scope="module")
def multi30k() -> tuple[list[str], list[str], list[str]]:
    refs = [r["target"] for r in _rows("multi30k_test2016_en_de.jsonl")]
    system_a = [_perturb(r, random.Random(i), 0.15) for i, r in enumerate(refs)]
    system_b = [_perturb(r, random.Random(10_000 + i), 0.14) for i, r in enumerate(refs)]
    return refs, system_a, system_b


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"tokenize": "intl"},
        {"tokenize": "char", "lowercase": True},
        {"smooth_method": "floor"},
        {"smooth_method": "add-k"},
        {"smooth_method": "none"},
    ],
)
def test_bleu_matches_sacrebleu(multi30k, options):
    import sacrebleu

    refs, hyps, _ = multi30k
    m = get_metric("bleu", **options)
    stats = m.example_stats(hyps, refs)
    expected = sacrebleu.corpus_bleu(hyps, [refs], **options)
    assert abs(m.corpus(stats)["bleu"] - expected.score) <= TOL
    # every single sentence as its own corpus, and sentence BLEU, agree too
    one = m.scores_from_sums(stats[:100])["bleu"]
    for i in range(100):
        assert abs(one[i] - sacrebleu.corpus_bleu([hyps[i]], [[refs[i]]], **options).score) <= TOL
    sent = m.example_values(stats[:100])["bleu"]
    for i in range(100):
        assert abs(sent[i] - sacrebleu.sentence_bleu(hyps[i], [refs[i]], **options).score) <= TOL


def test_bleu_multi_reference_matches_sacrebleu(multi30k):
    import sacrebleu

    refs, hyps, other = multi30k
    second = [o if i % 3 else None for i, o in enumerate(other)]  # a variable number of references
    m = get_metric("bleu")
    stats = m.example_stats(hyps, [[r] if s is None else [r, s] for r, s in zip(refs, second, strict=True)])
    expected = sacrebleu.corpus_bleu(hyps, [refs, second]).score
    assert abs(m.corpus(stats)["bleu"] - expected) <= TOL
    assert "nrefs:var" in m.signature


@pytest.mark.parametrize("options", [{}, {"word_order": 2}, {"beta": 1, "lowercase": True}, {"eps_smoothing": True}])
def test_chrf_matches_sacrebleu(multi30k, options):
    from sacrebleu.metrics import CHRF

    refs, hyps, other = multi30k
    m = get_metric("chrf", **options)
    assert abs(m.corpus(m.example_stats(hyps, refs))["chrf"] - CHRF(**options).corpus_score(hyps, [refs]).score) <= TOL
    multi = m.example_stats(hyps, [[r, o] for r, o in zip(refs, other, strict=True)])
    assert abs(m.corpus(multi)["chrf"] - CHRF(**options).corpus_score(hyps, [refs, other]).score) <= TOL


def test_bootstrap_equals_sacrebleu_on_every_resample(multi30k):
    from sacrebleu.metrics import BLEU

    refs, hyps, _ = multi30k
    refs, hyps = refs[:300], hyps[:300]
    m = get_metric("bleu")
    stats = m.example_stats(hyps, refs)
    bleu = BLEU()
    indices = resample_indices(len(hyps), 200, seed=7)
    ours = resampled_scores(m, stats, 200, seed=7)["bleu"]
    theirs = np.array([bleu.corpus_score([hyps[i] for i in row], [[refs[i] for i in row]]).score for row in indices])
    assert np.max(np.abs(ours - theirs)) <= TOL
    interval = bootstrap_intervals(m, stats, 200, 0.95, seed=7)["bleu"]
    assert interval.low == pytest.approx(np.quantile(theirs, 0.025), abs=TOL)
    assert interval.high == pytest.approx(np.quantile(theirs, 0.975), abs=TOL)


def test_paired_bootstrap_p_value_matches_sacrebleu(multi30k, monkeypatch):
    from sacrebleu.metrics import BLEU, CHRF
    from sacrebleu.significance import PairedTest

    refs, system_a, system_b = multi30k
    monkeypatch.setenv("SACREBLEU_SEED", "12345")
    _, scores = PairedTest(
        [("a", system_a), ("b", system_b)],
        {"BLEU": BLEU(), "chrF": CHRF()},
        [refs],
        test_type="bs",
        n_samples=1000,
    )()
    for name, key in (("bleu", "BLEU"), ("chrf", "chrF2")):
        m = get_metric(name)
        result = paired_test(
            m, m.example_stats(system_a, refs), m.example_stats(system_b, refs), "bootstrap", 1000, seed=12345
        )[name]
        theirs = scores[key][1]
        assert abs(result.value_b - theirs.score) <= TOL
        assert abs(result.p_value - theirs.p_value) <= 0.02, (result.p_value, theirs.p_value)
        assert 0.01 < theirs.p_value < 0.9  # a comparison whose p-value is informative


def test_rouge_matches_rouge_score_on_samsum():
    from rouge_score import rouge_scorer

    rows = _rows("samsum_test.jsonl")
    refs = [r["summary"] for r in rows]
    hyps = ["\n".join(r["document"].splitlines()[:2]) for r in rows]
    types = ["rouge1", "rouge2", "rougeL", "rougeLsum"]
    m = get_metric("rouge")
    corpus = m.corpus(m.example_stats(hyps, refs))
    scorer = rouge_scorer.RougeScorer(types, use_stemmer=True)
    per_example = [scorer.score(r, h) for r, h in zip(refs, hyps, strict=True)]
    for t in types:
        assert abs(corpus[t] - np.mean([s[t].fmeasure for s in per_example])) <= TOL
    # several references: score_multi semantics on a slice
    multi = [[r, h2] for r, h2 in zip(refs[:100], hyps[1:101], strict=True)]
    corpus = m.corpus(m.example_stats(hyps[:100], multi))
    expected = [scorer.score_multi(t, h) for t, h in zip(multi, hyps[:100], strict=True)]
    for t in types:
        assert abs(corpus[t] - np.mean([s[t].fmeasure for s in expected])) <= TOL


def _sst2_systems() -> tuple[list[str], list[str]]:
    rows = _rows("sst2_dev.jsonl")
    refs = [str(r["label"]) for r in rows]
    preds = [ref if (r["id"] * 7919) % 10 < 7 else str(1 - r["label"]) for r, ref in zip(rows, refs, strict=True)]
    return refs, preds


@pytest.mark.parametrize("average", ["binary", "macro", "micro", "weighted"])
@pytest.mark.parametrize("part", ["f1", "precision", "recall"])
def test_prf_matches_sklearn_on_sst2(average, part):
    from sklearn import metrics as skm

    refs, preds = _sst2_systems()
    m = get_metric(part, average=average)
    ours = m.corpus(m.example_stats(preds, refs, labels=["0", "1"]))[f"{part}_{average}"]
    fn = {"f1": skm.f1_score, "precision": skm.precision_score, "recall": skm.recall_score}[part]
    extra = {"pos_label": "1"} if average == "binary" else {}
    theirs = fn(refs, preds, average=average, zero_division=0, **extra)
    assert abs(ours - theirs) <= TOL


@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_prf_matches_sklearn_multiclass_with_out_of_set_predictions(average):
    from sklearn.metrics import precision_recall_fscore_support

    rows = _rows("arc_easy_test.jsonl")
    labels = ["0", "1", "2", "3", "4"]
    refs = [str(r["answer"]) for r in rows]
    preds = [ref if i % 4 else ("none" if i % 20 == 0 else str((int(ref) + i) % 4)) for i, ref in enumerate(refs)]
    m = get_metric("prf", average=average)
    ours = m.corpus(m.example_stats(preds, refs, labels=labels))
    present = sorted(set(refs) | (set(preds) & set(labels)))  # the labels that occur in the data
    p, r, f, _ = precision_recall_fscore_support(refs, preds, labels=present, average=average, zero_division=0)
    assert abs(ours[f"precision_{average}"] - p) <= TOL
    assert abs(ours[f"recall_{average}"] - r) <= TOL
    assert abs(ours[f"f1_{average}"] - f) <= TOL
