"""Judges phase 2: calibration records in the store, the gate's calibration rule, `harness judge calibrate`,
judge-uncertain sampling, the leaderboard mark and the Judges page."""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cli_helper import cli
from review_seed import CANDIDATES, RUN_ID, SUITE, seeded_copy

from harness import models, review
from harness.judges import calibration as cal
from harness.judges.stored import latest_calibration
from harness.records import ItemResult, MetricStats, Prediction, RunRecord
from harness.review.rubrics import load_rubric
from harness.review.sampling import judge_uncertainty, sample
from harness.store import Store
from harness.store.judges import calibrations_frame, save_calibration

PASS_FAIL = load_rubric("pass_fail")
JUDGE_STATS = ["grade", "top", "ok", "count"]
REPORT_APP = Path(__file__).resolve().parents[1] / "app.py"


def harness(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    return cli(capsys, monkeypatch, *args)


def humans_and_judge(n: int, agree: bool) -> tuple[dict, dict]:
    """n items graded pass/fail by two reviewers who agree; the judge agrees with them, or answers at random."""
    truth = ["pass" if i % 3 else "fail" for i in range(n)]
    humans = {f"i{i}": {"ana": t, "ben": t} for i, t in enumerate(truth)}
    rng = np.random.default_rng(1)
    judge = {f"i{i}": (t if agree else str(rng.choice(["pass", "fail"]))) for i, t in enumerate(truth)}
    return humans, judge


def record_for(fingerprint: str, agree: bool = True, n: int = 24) -> cal.CalibrationRecord:
    humans, judge = humans_and_judge(n, agree)
    return cal.calibrate(cal.CalibrationKey.of(fingerprint, PASS_FAIL), PASS_FAIL, judge, humans, n_resamples=50)


def same_estimates(a: dict, b: dict) -> bool:
    def pack(e):
        return [None if isinstance(x, float) and math.isnan(x) else x for x in (e.value, e.low, e.high, e.n)]
    return a.keys() == b.keys() and all(pack(a[k]) == pack(b[k]) for k in a)


# the store --------------------------------------------------------------------------------------------------------
def test_record_round_trips_through_the_store_as_strict_json_and_goes_stale(tmp_path):
    store = Store(tmp_path / "cal.duckdb")
    humans, judge = humans_and_judge(6, agree=True)
    judge["i0"] = None  # one failure
    humans = {k: {"ana": v["ana"]} for k, v in humans.items()}  # one reviewer: the ceiling is undefined (NaN)
    record = cal.calibrate(cal.CalibrationKey.of("fp-1", PASS_FAIL), PASS_FAIL, judge, humans, n_resamples=20)
    assert math.isnan(record.ceiling["cohen_kappa"].value)
    t0 = datetime(2026, 1, 1)
    save_calibration(store, record_for("fp-old"), "judge-x", "q0", created_at=t0)
    save_calibration(store, record, "judge-x", "q1", created_at=t0 + timedelta(minutes=1))
    text = calibrations_frame(store)["record_json"].iloc[0]
    json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in stored JSON"))  # NaN stored as null
    back = latest_calibration(store, "judge-x", "pass_fail")
    assert back.key == record.key and back.failed == 1 and back.confusion == record.confusion
    assert same_estimates(back.vs_consensus, record.vs_consensus) and same_estimates(back.ceiling, record.ceiling)
    assert same_estimates(back.vs_reviewers["ana"], record.vs_reviewers["ana"])
    assert latest_calibration(store, "judge-x", "likert") is None
    assert not back.is_stale(cal.CalibrationKey.of("fp-1", PASS_FAIL))
    assert back.key.stale_reasons(cal.CalibrationKey.of("fp-2", PASS_FAIL)) == ["the judge model changed"]


# the gate -----------------------------------------------------------------------------------------------------------
@pytest.fixture
def judged_run(tmp_path, causal_dir) -> tuple[Store, str]:
    """A run whose suite has a pass_fail judge metric (the tiny causal model as judge), variants base and lora."""
    store = Store(tmp_path / "gate.duckdb")
    store.start_run(RunRecord("judged", "exp", "exp.yaml", "{}", "h", 0, None, None, "{}", "test", status="finished"))
    options = json.dumps({"model": str(causal_dir), "rubric": "pass_fail"})
    grades = np.linspace(0.1, 0.9, 20)
    stats = np.column_stack([grades, grades > 0.5, np.ones(20), np.ones(20)]).astype(float)
    for variant in ("base", "lora"):
        preds = [Prediction(f"s-{i}", f"in {i}", "ref", f"out {i}") for i in range(20)]
        store.write_item(ItemResult("judged", "m", variant, "summ", "done", dataset_fingerprint="fp",
                                    predictions=preds, stats=[MetricStats("judge", options, JUDGE_STATS, stats)]))
    return store, models.fingerprint(models.resolve(str(causal_dir)))


def gate(monkeypatch, capsys, store: Store, tmp_path: Path, rule: str) -> tuple[int, str, str]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"rules:\n  - {rule}\n")
    return harness(monkeypatch, capsys, "gate", "--db", str(store.path), "--baseline", "judged:m:base",
                   "--candidate", "judged:m:lora", "--rules", str(rules), "--quiet", "--no-record")


def test_gate_refuses_an_uncalibrated_judge_rule_and_allows_it_when_asked(judged_run, monkeypatch, capsys, tmp_path,
                                                                          causal_dir):
    store, _ = judged_run
    code, _, err = gate(monkeypatch, capsys, store, tmp_path, "{suite: summ, metric: judge}")
    assert code == 2 and "calibration missing" in err and "uncalibrated: allow" in err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    code, _, err = gate(monkeypatch, capsys, store, tmp_path, "{suite: summ, metric: judge, uncalibrated: allow}")
    assert code == 0, err


@pytest.mark.parametrize("case, fingerprint, agree, rule_extra, expected", [
    ("fresh and above", None, True, "", 0),
    ("stale", "another-model", True, "", "calibration stale (the judge model changed)"),
    ("below", None, False, "", "calibration below min_agreement (weighted_kappa"),
    ("below a stricter bar on another statistic", None, True,
     ", min_agreement: {statistic: spearman, value: 1.01}", "value"),
    ("kappa bar reached", None, True, ", min_agreement: {statistic: kappa, value: 0.9}", 0),
])
def test_gate_checks_the_stored_calibration(judged_run, monkeypatch, capsys, tmp_path, causal_dir, case, fingerprint,
                                            agree, rule_extra, expected):
    store, judge_fp = judged_run
    save_calibration(store, record_for(fingerprint or judge_fp, agree), str(causal_dir))
    code, _, err = gate(monkeypatch, capsys, store, tmp_path, "{suite: summ, metric: judge" + rule_extra + "}")
    if expected == 0:
        assert code == 0, err
    else:
        assert code == 2 and expected in err, err


def test_a_judge_rule_needs_a_known_statistic(judged_run, monkeypatch, capsys, tmp_path):
    store, _ = judged_run
    code, _, err = gate(monkeypatch, capsys, store, tmp_path,
                        "{suite: summ, metric: judge, min_agreement: {statistic: accuracy, value: 0.5}}")
    assert code == 2 and "statistic" in err and "Traceback" not in err


def test_leaderboard_marks_an_uncalibrated_judge_column(judged_run, causal_dir):
    from reports.leaderboard import column_names
    from reports.scores import UNCALIBRATED, uncalibrated_judges

    store, judge_fp = judged_run
    long = pd.DataFrame({"suite": ["summ", "other"], "score": ["grade", "accuracy"], "metric": ["judge", "accuracy"],
                         "options_json": [json.dumps({"model": str(causal_dir), "rubric": "pass_fail"}), "{}"]})
    long = long.assign(uncalibrated=uncalibrated_judges(store, long))
    assert column_names(long).tolist() == [f"summ · grade {UNCALIBRATED}", "other · accuracy"]
    save_calibration(store, record_for(judge_fp), str(causal_dir))
    assert not uncalibrated_judges(store, long).any()


# harness judge calibrate ---------------------------------------------------------------------------------------------
def graded_queue(store: Store) -> str:
    """A pass_fail queue over the seeded run, every item graded by two reviewers (pass where the output is good)."""
    queue, _ = review.create_queue(store, review.QueueRequest(RUN_ID, SUITE, PASS_FAIL, sample=6, overlap=2,
                                                              name="pf-queue"))
    for reviewer in ("alice", "bob"):
        while (item := review.next_item(store, queue, reviewer)) is not None:
            good = item.candidate_a == CANDIDATES[0]
            review.submit(store, queue, item.item_id, reviewer, {"overall": "pass" if good else "fail"})
    return queue.queue_id


def test_judge_calibrate_on_a_seeded_queue_stores_a_record(tmp_path, causal_dir, monkeypatch, capsys):
    store = seeded_copy(tmp_path / "q.duckdb", ("alice", "bob"))[0]
    queue_id = graded_queue(store)
    code, out, err = harness(monkeypatch, capsys, "judge", "calibrate", "--queue", queue_id, "--judge",
                             str(causal_dir), "--db", str(store.path), "--resamples", "50", "--device", "cpu")
    assert code == 0, err
    assert "weighted_kappa" in out and "human ceiling" in out and "stored as cal-" in out
    record = latest_calibration(store, str(causal_dir), "pass_fail")
    assert record is not None and record.n_items + record.no_consensus + record.failed == 12
    assert record.key == cal.CalibrationKey.of(models.fingerprint(models.resolve(str(causal_dir))), PASS_FAIL)
    assert record.ceiling["raw_agreement"].value == 1.0  # the two reviewers always agree
    assert sum(map(sum, record.confusion)) == record.n_items
    assert {r["item_id"] for r in record.meta["items"]} and record.meta["queue_id"] == queue_id
    assert all(0.5 <= r["top_probability"] <= 1.0 for r in record.meta["items"])


def test_judge_calibrate_refuses_an_ungraded_or_unknown_queue(tmp_path, causal_dir, monkeypatch, capsys):
    store = seeded_copy(tmp_path / "q.duckdb", ("alice",))[0]
    review.create_queue(store, review.QueueRequest(RUN_ID, SUITE, PASS_FAIL, sample=3, name="empty-q"))
    for queue, words in (("empty-q", "no grades yet"), ("nope", "not found")):
        code, _, err = harness(monkeypatch, capsys, "judge", "calibrate", "--queue", queue, "--judge",
                               str(causal_dir), "--db", str(store.path), "--device", "cpu")
        assert code == 2 and words in err and "Traceback" not in err


# judge-uncertain sampling ---------------------------------------------------------------------------------------
def judge_stats_frame(grades: list[float | None], label: str = "m:base") -> pd.DataFrame:
    rows = []
    for i, g in enumerate(grades):
        stats = [0.0, 0.0, 0.0, 1.0] if g is None else [g, float(g >= 0.5), 1.0, 1.0]
        rows.append({"candidate": "m", "variant": "base", "label": label, "example_id": f"e{i}", "metric": "judge",
                     "options_json": json.dumps({"model": "x", "rubric": "pass_fail"}), "stat_names": JUDGE_STATS,
                     "stats": np.array(stats)})
    return pd.DataFrame(rows)


NO_VALUES = pd.DataFrame(columns=["candidate", "variant", "example_id", "metric", "value", "label"])


def test_judge_uncertain_puts_the_least_sure_first():
    stats = judge_stats_frame([0.99, 0.5, 0.9, None, 0.7])
    examples = [f"e{i}" for i in range(5)]
    scores = judge_uncertainty(stats, NO_VALUES, examples)
    assert scores.round(6).tolist() == [0.02, 1.0, 0.2, 1.0, 0.6]  # pass_fail: 1 - p(top) twice; failed: 1
    chosen = sample("judge-uncertain", examples, 5, np.random.default_rng(0), references=pd.Series(dtype=str),
                    uncertainty=scores)
    assert [e for e, _ in chosen][2:] == ["e4", "e2", "e0"] and {e for e, _ in chosen[:2]} == {"e1", "e3"}


def test_judge_uncertain_adds_disagreement_with_the_automatic_metrics():
    """Two equally sure judge grades: the one the automatic metric contradicts comes first."""
    stats = judge_stats_frame([0.9, 0.9])
    values = pd.DataFrame({"candidate": "m", "variant": "base", "label": "m:base", "example_id": ["e0", "e1"],
                           "metric": "rouge1", "value": [0.0, 1.0]})
    scores = judge_uncertainty(stats, values, ["e0", "e1"])
    assert scores["e0"] > scores["e1"] and scores["e1"] == pytest.approx(0.2 + 0.1)


def test_review_create_judge_uncertain_orders_the_queue_and_needs_a_judge(tmp_path, monkeypatch, capsys):
    store = seeded_copy(tmp_path / "q.duckdb")[0]
    args = ["review", "create", "--run", RUN_ID, "--suite", SUITE, "--rubric", "pass_fail", "--db", str(store.path),
            "--strategy", "judge-uncertain", "--sample", "4", "--candidates", f"{CANDIDATES[0]}:base"]
    code, _, err = harness(monkeypatch, capsys, *args)
    assert code == 2 and "no `judge` metric" in err
    options = json.dumps({"model": "x", "rubric": "pass_fail"})
    grades = [0.99, 0.6, 0.95, 0.5, 0.98, 0.97, 0.99, 0.96, 0.99, 0.9, 0.99, 0.98]
    stats = np.array([[g, float(g >= 0.5), 1.0, 1.0] for g in grades])
    preds = [Prediction(f"{SUITE}-{i}", "x", "y", "z") for i in range(12)]
    store.write_item(ItemResult(RUN_ID, CANDIDATES[0], "base", SUITE, "done", predictions=preds,
                                stats=[MetricStats("judge", options, JUDGE_STATS, stats)]))
    code, out, err = harness(monkeypatch, capsys, *args, "--name", "unsure")
    assert code == 0, err
    items = sorted(_items(store, "unsure"), key=lambda i: i.position)
    assert [i.example_id for i in items][:2] == [f"{SUITE}-3", f"{SUITE}-1"]
    assert [i.priority for i in items] == sorted((i.priority for i in items), reverse=True)


def _items(store: Store, queue_id: str):
    from harness.store import reviews

    return reviews.items(store, queue_id)


# the Judges page -------------------------------------------------------------------------------------------------
def test_judges_page_renders_calibrations_and_disagreements_inert(tmp_path, causal_dir, monkeypatch):
    from streamlit.testing.v1 import AppTest

    store = seeded_copy(tmp_path / "page.duckdb")[0]  # no accounts: the report is open
    queue_id = graded_queue(store)
    record = record_for("fp-page")
    record.meta = {"queue_id": queue_id, "items": [
        {"item_id": i.item_id, "example_id": i.example_id, "judge": "pass", "grade": 0.9, "consensus": 0.0}
        for i in _items(store, queue_id)[:2]], "position_consistency": None,
        "length_correlation": {"spearman_rho": 0.25}}
    save_calibration(store, record, "pack:some-judge", queue_id)
    monkeypatch.setenv("HARNESS_DB", str(store.path))
    at = AppTest.from_file(str(REPORT_APP), default_timeout=120)
    at.run()
    at.switch_page("reports/pages/judges.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Judges"
    summary, agreement, confusion, worst = (d.value for d in at.dataframe)
    assert summary["judge × rubric"].tolist() == ["pack:some-judge × pass_fail"]
    assert summary["length spearman"].tolist() == [0.25] and summary["weighted_kappa"].tolist() == [1.0]
    assert set(agreement["statistic"]) >= {"weighted_kappa", "krippendorff_alpha"} and "ceiling" in agreement
    assert confusion.shape == (2, 3)
    assert len(worst) == 2 and (worst["gap"] == 0.9).all() and worst["output"].str.len().gt(0).all()
    assert not at.markdown or all("<script>" not in m.value for m in at.markdown)


# end to end with a real judge --------------------------------------------------------------------------------------
@pytest.mark.slow
def test_smollm2_judge_calibrated_on_summaries_then_gated(tmp_path, monkeypatch, capsys):
    """SmolLM2-135M-Instruct judges a few SAMSum summaries (the reference, or a wrong one), people graded them;
    calibrate stores a record, and a gate rule on its judge metric is then checked against that record."""
    from conftest import SHARED_DATA

    rows = [json.loads(line) for line in (SHARED_DATA / "samsum_test.jsonl").read_text().splitlines()[:8]]
    refs = [r["summary"] for r in rows]
    outputs = [ref if i % 2 else refs[(i + 3) % 8] for i, ref in enumerate(refs)]  # odd: right; even: another's
    store = Store(tmp_path / "e2e.duckdb")
    store.start_run(RunRecord(RUN_ID, "e2e", "x.yaml", "{}", "h", 0, None, None, "{}", "test", status="finished"))
    judge_options = {"model": "pack:smollm2-135m-instruct", "rubric": "pass_fail", "reference": True}
    stats = np.array([[0.8, 1.0, 1.0, 1.0]] * 8)
    for variant in ("base", "lora"):
        preds = [Prediction(f"samsum-{i}", r["document"][:800], ref, out)
                 for i, (r, ref, out) in enumerate(zip(rows, refs, outputs, strict=True))]
        store.write_item(ItemResult(RUN_ID, "m", variant, "samsum", "done", dataset_fingerprint="fp", predictions=preds,
                                    stats=[MetricStats("judge", json.dumps(judge_options), JUDGE_STATS, stats)]))
    queue, _ = review.create_queue(store, review.QueueRequest(RUN_ID, "samsum", PASS_FAIL, sample=8, overlap=2,
                                                              candidates=["m:base"], name="samsum-pf"))
    for reviewer in ("ana", "ben"):
        while (item := review.next_item(store, queue, reviewer)) is not None:
            review.submit(store, queue, item.item_id, reviewer,
                          {"overall": "pass" if item.output_a == item.reference else "fail"})
    code, out, err = harness(monkeypatch, capsys, "judge", "calibrate", "--queue", "samsum-pf", "--judge",
                             "pack:smollm2-135m-instruct", "--reference", "--db", str(store.path), "--device", "cpu",
                             "--resamples", "200")
    assert code == 0, err
    record = latest_calibration(store, "pack:smollm2-135m-instruct", "pass_fail")
    assert record.n_items == 8 and record.failed == 0 and sum(map(sum, record.confusion)) == 8
    assert "weighted_kappa" in out and "human ceiling" in out
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - {suite: samsum, metric: judge, min_agreement: {statistic: kappa, value: -1}}\n")
    args = ["gate", "--db", str(store.path), "--baseline", f"{RUN_ID}:m:base", "--candidate", f"{RUN_ID}:m:lora",
            "--rules", str(rules), "--quiet", "--no-record"]
    code, _, err = harness(monkeypatch, capsys, *args)
    assert code == 0, err  # a fresh record: the rule is allowed (and equal results pass)
    record.key = cal.CalibrationKey("another", record.key.prompt_hash, record.key.rubric_hash)
    save_calibration(store, record, "pack:smollm2-135m-instruct")
    code, _, err = harness(monkeypatch, capsys, *args)
    assert code == 2 and "stale (the judge model changed)" in err


def test_the_documented_judge_rules_validate(tmp_path):
    from harness.gate.rules import effective_rules, load_rules

    text = (Path(__file__).resolve().parents[1] / "docs" / "gate.md").read_text()
    block = text.split("# judge rules (tests/test_judges_gate.py validates this block)\n", 1)[1].split("```", 1)[0]
    (tmp_path / "gates.yaml").write_text(block)
    first, second = effective_rules(load_rules(tmp_path / "gates.yaml"))
    assert (first.min_agreement.statistic, first.min_agreement.value, first.uncalibrated) == ("weighted_kappa", 0.6,
                                                                                              "refuse")
    assert second.uncalibrated == "allow" and second.min_agreement.value == 0.6
