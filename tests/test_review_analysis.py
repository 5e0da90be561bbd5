"""From stored grades to the "Human review" tables, the CSV export and `harness review` commands."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from pg_server import address_text
from review_seed import CANDIDATES, RUN_ID, SUITE
from typer.testing import CliRunner

from harness import review
from harness.records.review import Account
from harness.review.analysis import analyse, export_csv, grades, progress_tables
from harness.review.rubrics import load_rubric

A, B = (f"{c}:base" for c in CANDIDATES)
REVIEWERS = ("alice", "bob", "carol")


@pytest.fixture
def store(seeded_store):
    """A seeded store, a file or a team store (every test here runs on both back-ends)."""
    return seeded_store(REVIEWERS)[0]


def test_pairwise_answers_map_back_through_positions(store):
    """Everyone prefers the first candidate's output wherever it is shown: it wins every comparison."""
    queue, items = review.create_queue(store, review.QueueRequest(
        RUN_ID, SUITE, load_rubric("pairwise"), mode="pairwise", sample=8, overlap=2, seed=3))
    favourite = queue.candidates[0].candidate
    assert {i.swapped for i in items} == {True, False}
    for reviewer in ("alice", "bob"):
        while (item := review.next_item(store, queue, reviewer)) is not None:
            side = "A" if item.candidate_a == favourite else "B"
            review.submit(store, queue, item.item_id, reviewer, {"overall": side, "correctness": "tie"})
    result = analyse(store, queue, resamples=200)
    rates = result.win_rates.set_index("candidate")
    assert rates.loc[queue.candidates[0].label, "win_rate"] == 1.0
    assert rates.loc[queue.candidates[1].label, "win_rate"] == 0.0
    assert rates["n"].tolist() == [16, 16]
    bt = result.strengths.set_index("candidate")["strength"]
    assert bt[queue.candidates[0].label] > 0 > bt[queue.candidates[1].label]
    agreement = result.agreement.set_index("statistic")["value"]
    assert np.isnan(agreement["Cohen's kappa (alice, bob)"])  # everyone always agrees on one answer: undefined
    criterion = analyse(store, queue, criterion="correctness", resamples=50).win_rates
    assert criterion["win_rate"].tolist() == [0.5, 0.5]
    csv = pd.read_csv(io.StringIO(export_csv(store, queue)))
    assert len(csv) == 16 and set(csv["winner"]) == {queue.candidates[0].label}
    assert {"answer_overall", "answer_correctness", "swapped", "reviewer"} <= set(csv.columns)


def test_single_mode_scores_agreement_and_metric_correlation(store):
    queue, items = review.create_queue(store, review.QueueRequest(
        RUN_ID, SUITE, load_rubric("likert"), sample=6, overlap=3, seed=0))
    rouge = store.query("SELECT candidate, example_id, stats[1] / stats[3] AS r1 FROM example_stats")
    rouge = rouge.set_index(["candidate", "example_id"])["r1"]
    rng = np.random.default_rng(0)
    for reviewer in REVIEWERS:  # grades follow ROUGE-1 with a little noise: humans agree with the metric
        while (item := review.next_item(store, queue, reviewer)) is not None:
            value = int(np.clip(round(1 + 4 * rouge[(item.candidate_a, item.example_id)] + rng.normal(0, 0.3)), 1, 5))
            answers = {"overall": str(value), "correctness": str(value), "fluency": "3"}
            review.submit(store, queue, item.item_id, reviewer, answers)
    result = analyse(store, queue, resamples=300)
    scores = result.scores.set_index("candidate")
    assert scores.loc[A, "score"] > scores.loc[B, "score"]  # zephyrine copies the reference
    assert (scores["low"] <= scores["score"]).all() and (scores["score"] <= scores["high"]).all()
    assert scores["n"].tolist() == [6, 6]
    stats = result.agreement.set_index("statistic")
    assert stats.loc["Fleiss' kappa (3 grades per item)", "items"] == 12
    assert stats.loc["Krippendorff's alpha (ordinal)", "value"] > 0.8
    corr = result.correlations.set_index("metric")
    assert set(corr.index) == {"rouge1", "rougeL"} and (corr["n"] == 12).all()
    assert corr.loc["rouge1", "kendall_tau"] > 0.6 and corr.loc["rouge1", "spearman_rho"] > 0.7
    frame = grades(store, queue)
    assert len(frame) == 36 and frame["value"].between(1, 5).all()


def test_progress_tables(store):
    queue, items = review.create_queue(store, review.QueueRequest(
        RUN_ID, SUITE, load_rubric("pass_fail"), sample=2, overlap=2, name="q1"))
    first = review.next_item(store, queue, "alice")
    review.submit(store, queue, first.item_id, "alice", {"overall": "pass"})
    review.submit(store, queue, first.item_id, "bob", {"overall": "fail"})
    review.skip(store, queue, items[1].item_id, "carol")
    per_queue, per_reviewer = progress_tables(store)
    row = per_queue.iloc[0]
    assert (row["queue_id"], row["items"], row["complete"], row["grades"]) == ("q1", 4, 1, 2)
    counts = per_reviewer.set_index("reviewer")[["graded", "skipped"]].to_dict("index")
    assert counts == {"alice": {"graded": 1, "skipped": 0}, "bob": {"graded": 1, "skipped": 0},
                      "carol": {"graded": 0, "skipped": 1}}


def test_cli_create_queues_export_stats(store, tmp_path):
    from harness.cli import _register, app

    _register()
    db = address_text(store.path)
    runner = CliRunner()
    out = runner.invoke(app, ["review", "create", "--run", RUN_ID[:10], "--suite", SUITE, "--mode", "pairwise",
                              "--sample", "3", "--strategy", "disagreement", "--overlap", "2", "--rubric", "pairwise",
                              "--candidates", f"{A},{B}", "--reviewers", "alice,bob", "--name", "cli-q",
                              "--no-blind", "--db", db])
    assert out.exit_code == 0, out.output
    assert "created queue cli-q: 3 items from 3 examples, 2 grade(s) each, open to alice, bob" in out.output
    queue = review.get_queue(store, "cli-q", Account("alice", "reviewer"))
    assert not queue.blind and queue.strategy == "disagreement"
    item = review.next_item(store, queue, "alice")
    review.submit(store, queue, item.item_id, "alice", {"overall": "tie", "correctness": "A"})
    listed = runner.invoke(app, ["review", "queues", "--db", db])
    assert "cli-q" in listed.output and "alice" in listed.output
    target = tmp_path / "grades.csv"
    assert runner.invoke(app, ["review", "export", "cli-q", "--out", str(target), "--db", db]).exit_code == 0
    assert pd.read_csv(target)["winner"].tolist() == ["tie"]
    stats = runner.invoke(app, ["review", "stats", "cli-q", "--resamples", "50", "--db", db])
    assert stats.exit_code == 0 and "Bradley-Terry" in stats.output and "agreement" in stats.output
    bad = runner.invoke(app, ["review", "create", "--run", RUN_ID, "--suite", SUITE, "--rubric", "nope.yaml",
                              "--db", db])
    assert bad.exit_code != 0
