"""The report's pure functions on small hand-made stores: markers, best cells, lift, Pareto, diffs, links."""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from harness.store import Store
from harness.store import report_queries as q
from reports.colours import PALETTE, candidate_colours
from reports.compare import diff_frame, diff_html, diff_segments, only_disagreements
from reports.cost import pareto_mask
from reports.export import csv_bytes, parquet_bytes
from reports.leaderboard import leaderboard_frame, leaderboard_table
from reports.lift import lift_frame
from reports.links import deep_link, run_links
from reports.paired import BETTER, REFERENCE, WORSE
from reports.scores import PRIMARY, parse_system, pick_scores, system_key

RUN = "hand-run"
N = 300


def _rows(candidate: str, variant: str, suite: str, correct: np.ndarray, run_id: str = RUN) -> dict[str, list]:
    n = len(correct)
    key = {"run_id": run_id, "candidate": candidate, "variant": variant, "suite": suite}
    stats = pa.array([[float(c), 1.0] for c in correct], type=pa.list_(pa.float64()))
    example_stats = pa.table({**{k: [v] * n for k, v in key.items()}, "example_id": [f"e{i:04d}" for i in range(n)],
                              "metric": ["accuracy"] * n, "options_json": ["{}"] * n,
                              "stat_names": [["accuracy", "count"]] * n, "stats": stats})
    value = float(correct.mean())
    score = {**key, "metric": "accuracy", "options_json": "{}", "score": "accuracy", "value": value,
             "low": value - 0.05, "high": value + 0.05, "n": n, "method": "percentile", "confidence": 0.95}
    item = {**key, "status": "done", "dataset_fingerprint": f"fp-{suite}", "n_examples": n, "n_failed": 0}
    return {"example_stats": example_stats, "scores": score, "items": item}


@pytest.fixture
def hand_store(tmp_path) -> Store:
    """One run: 'strong' clearly beats 'weak' on suite s1, they tie on s2; 'weak' has a LoRA that helps."""
    rng = np.random.default_rng(1)
    weak, strong = (rng.random(N) < 0.4).astype(float), (rng.random(N) < 0.9).astype(float)
    tie = (rng.random(N) < 0.6).astype(float)
    lora = weak.copy()
    lora[: N // 3] = 1.0
    parts = [_rows("weak", "base", "s1", weak), _rows("strong", "base", "s1", strong),
             _rows("weak", "lora", "s1", lora), _rows("weak", "base", "s2", tie),
             _rows("strong", "base", "s2", tie)]
    store = Store(tmp_path / "hand.duckdb")
    run = {"run_id": RUN, "name": "hand", "status": "finished", "started_at": datetime(2025, 1, 1)}
    items = parts[0]["items"] | {}
    q.bulk_insert(store, {
        "runs": pa.Table.from_pylist([run]),
        "example_stats": pa.concat_tables([p["example_stats"] for p in parts]),
        "scores": pa.Table.from_pylist([p["scores"] for p in parts]),
        "items": pa.Table.from_pylist([p["items"] for p in parts]
                                      + [{**items, "candidate": "strong", "variant": "lora", "suite": "s1",
                                          "status": "not_applicable", "dataset_fingerprint": None}]),
    })
    return store


def test_leaderboard_marks_best_and_significance_against_the_reference(hand_store):
    long = leaderboard_frame(hand_store, [RUN], PRIMARY, system_key(RUN, "weak", "base"), n_resamples=500)
    cell = long.set_index(["candidate", "variant", "suite"])
    assert cell.loc[("weak", "base", "s1"), "marker"] == REFERENCE
    assert cell.loc[("strong", "base", "s1"), "marker"] == BETTER
    assert cell.loc[("strong", "base", "s1"), "diff_low"] > 0
    assert cell.loc[("strong", "base", "s2"), "marker"] == ""  # identical statistics: p = 1
    assert cell.loc[("strong", "base", "s1"), "best"] and not cell.loc[("weak", "base", "s1"), "best"]
    assert cell.loc[("strong", "lora", "s1"), "status"] == "not_applicable"

    wide = leaderboard_table(long, sort_by="s1 · accuracy", descending=True).set_index(["candidate", "variant"])
    assert list(wide.index)[0] == ("strong", "base")
    assert "★" in wide.loc[("strong", "base"), "s1 · accuracy"] and BETTER in wide.loc[("strong", "base"),
                                                                                         "s1 · accuracy"]
    assert wide.loc[("weak", "base"), "s1 · accuracy"].endswith("(ref)")
    assert wide.loc[("strong", "lora"), "s1 · accuracy"] == "n/a"


def test_leaderboard_reference_strong_marks_weak_worse(hand_store):
    long = leaderboard_frame(hand_store, [RUN], PRIMARY, system_key(RUN, "strong", "base"), n_resamples=500)
    cell = long.set_index(["candidate", "variant", "suite"])
    assert cell.loc[("weak", "base", "s1"), "marker"] == WORSE


def test_leaderboard_filters_rows(hand_store):
    long = leaderboard_frame(hand_store, [RUN], PRIMARY, None, candidates=["weak"], variants=["base"])
    assert set(zip(long["candidate"], long["variant"], strict=True)) == {("weak", "base")}
    assert (long["marker"] == "").all()


def test_lift_is_lora_minus_base_with_a_paired_interval(hand_store):
    lift = lift_frame(hand_store, [RUN], PRIMARY, n_resamples=500)
    assert list(zip(lift["candidate"], lift["suite"], strict=True)) == [("weak", "s1")]
    row = lift.iloc[0]
    assert row["lift"] == pytest.approx(row["lora"] - row["base"])
    assert 0 < row["low"] <= row["lift"] <= row["high"]
    assert row["marker"] == BETTER


def test_pick_scores_primary_is_the_first_listed():
    scores = pd.DataFrame({
        "run_id": ["r"] * 3, "candidate": ["c"] * 3, "variant": ["base"] * 3, "suite": ["s"] * 3,
        "metric": ["f1", "accuracy", "f1"], "options_json": ['{"average": "macro"}', "{}", '{"average": "micro"}'],
        "score": ["f1_macro", "accuracy", "f1_micro"], "value": [0.1, 0.2, 0.3], "position": [5, 2, 9]})
    assert list(pick_scores(scores, PRIMARY)["score"]) == ["accuracy"]
    assert list(pick_scores(scores, "f1_micro")["value"]) == [0.3]


def test_candidate_colours_are_stable_and_distinct():
    first = candidate_colours(["b", "a", "c"])
    assert first == candidate_colours(["c", "a", "b", "a"])
    assert len(set(first.values())) == 3 and set(first.values()) <= set(PALETTE)


def test_pareto_front_keeps_undominated_rows():
    frame = pd.DataFrame({"cost": [1.0, 2.0, 3.0, 2.5, np.nan], "quality": [0.5, 0.7, 0.9, 0.6, 1.0]})
    assert list(pareto_mask(frame, "cost", "quality")) == [True, True, True, False, False]
    assert list(pareto_mask(frame, "cost", "quality", higher_better=False)) == [True, False, False, False, False]


def test_diff_is_escaped_and_segmented():
    a, b = "the cat <b>sat</b>", 'the dog <img src=x onerror="x()"> sat'
    segments = diff_segments(a, b)
    assert "".join(t for k, t in segments if k != "added") == a
    assert "".join(t for k, t in segments if k != "removed") == b
    html_text = diff_html(segments)
    assert "<img" not in html_text and "<b>" not in html_text
    assert "&lt;" in html_text and 'onerror="' not in html_text and "&quot;" in html_text
    assert list(diff_frame(segments).columns) == ["change", "text"]
    assert diff_segments(None, "x") == [("added", "x")]


def test_only_disagreements():
    table = pd.DataFrame({"output_a": ["x", "y", "z"], "output_b": ["x", "q", "z"], "difference": [0, 1, 0.5],
                          "disagree": [False, True, False]})
    assert list(only_disagreements(table, True)["output_a"]) == ["y", "z"]
    assert len(only_disagreements(table, False)) == 3


def test_deep_links():
    assert deep_link("compare", run="r1", a="c/base", suite=None) == "compare?run=r1&a=c%2Fbase"
    assert deep_link("leaderboard", run=["r1", "r2"]) == "leaderboard?run=r1&run=r2"
    links = run_links("r1", ["c"], ["s"], ["base", "lora"])
    assert {"view": "Compare two", "for": "candidate c", "link": "compare?run=r1&a=c%2Fbase&b=c%2Flora"} in links
    assert any(link["link"] == "cost?run=r1&suite=s" for link in links)
    assert parse_system(system_key("run-1_x", "c.1", "lora")) == ("run-1_x", "c.1", "lora")
    with pytest.raises(ValueError):
        deep_link("nowhere")


def test_exports_round_trip():
    frame = pd.DataFrame({"a": [1, 2], "b": ["x", None], "c": [{"k": 1}, [1, 2]]})
    assert pd.read_csv(io.BytesIO(csv_bytes(frame)))["a"].tolist() == [1, 2]
    back = pd.read_parquet(io.BytesIO(parquet_bytes(frame)))
    assert back["b"][0] == "x" and pd.isna(back["b"][1]) and back["c"].tolist() == ["{'k': 1}", "[1, 2]"]


@pytest.mark.parametrize("name, options", [("accuracy", {}), ("rouge", {"types": ["rouge1", "rougeL"]}),
                                           ("chrf", {}), ("bleu", {})])
def test_shared_resamples_equal_paired_test(name, options):
    from harness.metrics import get_metric, paired_test
    from reports.paired import SharedResamples

    rng = np.random.default_rng(3)
    words = ["cat", "dog", "sat", "mat", "the", "a", "on"]
    refs = [" ".join(rng.choice(words, 5)) for _ in range(40)]
    outs = [[" ".join(rng.choice(words, 5)) for _ in range(40)] for _ in range(3)]
    metric = get_metric(name, **options)
    labels = sorted(set(words)) if metric.kind == "label" else None
    if labels:
        refs, outs = [r.split()[0] for r in refs], [[o.split()[0] for o in out] for out in outs]
    stats = [metric.example_stats(out, refs, labels=labels) for out in outs]
    shared = SharedResamples(n_resamples=300, seed=5)
    shared.prefetch(stats)
    for b in (stats[1], stats[2], stats[0]):
        expected = paired_test(metric, stats[0], b, n_resamples=300, seed=5)
        got = shared.test(metric, stats[0], b)
        assert got.keys() == expected.keys()
        for score in expected:
            assert got[score].difference == pytest.approx(expected[score].difference)
            assert (got[score].low, got[score].high) == pytest.approx((expected[score].low, expected[score].high))
            assert got[score].p_value == pytest.approx(expected[score].p_value)


def test_marker_needs_p_value_and_an_interval_clear_of_zero():
    from harness.metrics import PairedResult
    from reports.paired import marker

    def result(difference, low, high, p):
        return PairedResult("accuracy", 0.5, 0.5 + difference, difference, low, high, p, "bootstrap", 12)

    assert marker("accuracy", result(0.2, 0.05, 0.3, 0.01)) == BETTER
    assert marker("accuracy", result(-0.3, -0.6, -0.1, 0.01)) == WORSE
    assert marker("ter", result(-0.3, -0.6, -0.1, 0.01)) == BETTER  # lower is better
    assert marker("accuracy", result(-0.3, -0.6, 0.0, 0.015)) == ""  # interval touches 0
    assert marker("accuracy", result(0.2, 0.05, 0.3, 0.2)) == ""
    assert marker("accuracy", None) == ""


def test_leaderboard_over_two_runs_pairs_rows_across_runs(hand_store):
    rng = np.random.default_rng(9)
    later = _rows("weak", "base", "s1", (rng.random(N) < 0.95).astype(float), run_id="hand-run-2")
    q.bulk_insert(hand_store, {
        "runs": pa.Table.from_pylist([{"run_id": "hand-run-2", "name": "hand", "status": "finished",
                                       "started_at": datetime(2025, 1, 2)}]),
        "example_stats": later["example_stats"], "scores": pa.Table.from_pylist([later["scores"]]),
        "items": pa.Table.from_pylist([later["items"]]),
    })
    long = leaderboard_frame(hand_store, [RUN, "hand-run-2"], PRIMARY, system_key(RUN, "weak", "base"),
                             n_resamples=500)
    row = long[(long["run_id"] == "hand-run-2") & (long["suite"] == "s1")].iloc[0]
    assert row["marker"] == BETTER and row["diff_low"] > 0  # same dataset fingerprint: paired across runs
    wide = leaderboard_table(long)
    assert list(wide.columns[:3]) == ["run_id", "candidate", "variant"]
    assert set(wide["run_id"]) == {RUN, "hand-run-2"}
