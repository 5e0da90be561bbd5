"""Every report page through Streamlit's AppTest, on a store seeded by a real tiny-model run.

The assertions are about what a page shows: its tables' rows and cells, its messages and its text.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report_fixtures import CAUSAL, CLS_SUITE, ENCODER, GEN_SUITE, XSS_ID, XSS_IMG, XSS_SCRIPT  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
pytest_plugins = ["report_fixtures"]


@pytest.fixture
def open_page(report_db, monkeypatch):
    """open_page(name, **query) -> the AppTest after the page ran on the seeded store."""
    monkeypatch.setenv("HARNESS_DB", str(report_db.path))

    def open_(name: str, db: Path | None = None, **query) -> AppTest:
        if db is not None:
            monkeypatch.setenv("HARNESS_DB", str(db))
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        for key, value in query.items():
            at.query_params[key] = value
        at.run()
        if name != "leaderboard":
            at.switch_page(f"reports/pages/{name}.py")
            at.run()
        assert not at.exception, [e.value for e in at.exception]
        return at

    return open_


def frames(at: AppTest) -> list:
    return [d.value for d in at.dataframe]


def charts(at: AppTest) -> list[dict]:
    """The Vega-Lite specs of the page's Altair charts."""
    return [json.loads(c.proto.spec) for c in at.get("vega_lite_chart")]


def candidate_colours_in(spec) -> dict[str, str]:
    """candidate -> colour from every colour scale in a chart spec."""
    found = {}
    if isinstance(spec, dict):
        color = spec.get("color")
        if isinstance(color, dict) and color.get("field") == "candidate" and "scale" in color:
            found.update(zip(color["scale"]["domain"], color["scale"]["range"], strict=True))
        for value in spec.values():
            found.update(candidate_colours_in(value))
    elif isinstance(spec, list):
        for value in spec:
            found.update(candidate_colours_in(value))
    return found


def test_leaderboard_shows_rows_intervals_best_and_reference(open_page, report_db):
    at = open_page("leaderboard")
    assert at.title[0].value == "Leaderboard"
    assert "★ best in column" in at.caption[0].value
    wide = frames(at)[0].set_index(["candidate", "variant"])
    assert set(wide.index) == {(CAUSAL, "base"), (CAUSAL, "lora"), (ENCODER, "base"), (ENCODER, "lora")}
    assert list(wide.columns) == [f"{CLS_SUITE} · accuracy", f"{GEN_SUITE} · rouge1"]
    assert wide.loc[(ENCODER, "base"), f"{GEN_SUITE} · rouge1"] == "n/a"  # an encoder cannot generate
    cells = wide[f"{CLS_SUITE} · accuracy"]
    assert all(c.count("[") == 1 and "]" in c for c in cells)
    assert any("★" in c for c in cells)
    reference = at.selectbox(key="lb_ref").value
    ref_candidate, ref_variant = reference.split("/")[1:]
    assert cells[(ref_candidate, ref_variant)].endswith("(ref)")
    long = frames(at)[1]
    assert set(long["run_id"].dropna()) == {report_db.run_id}


def test_leaderboard_score_choice_filters_and_sort(open_page):
    at = open_page("leaderboard")
    at.selectbox(key="lb_score").set_value("rougeL").run()
    assert list(frames(at)[0].columns) == ["candidate", "variant", f"{GEN_SUITE} · rougeL"]
    assert at.query_params["score"] in ("rougeL", ["rougeL"])
    at.selectbox(key="lb_score").set_value("f1_macro").run()
    at.multiselect(key="lb_variants").set_value(["lora"]).run()
    wide = frames(at)[0]
    assert list(wide["variant"]) == ["lora", "lora"]
    assert list(wide.columns) == ["candidate", "variant", f"{CLS_SUITE} · f1_macro"]
    at.selectbox(key="lb_sort").set_value(f"{CLS_SUITE} · f1_macro").run()
    values = [float(c.split()[0]) for c in frames(at)[0][f"{CLS_SUITE} · f1_macro"]]
    assert values == sorted(values, reverse=True)


def test_leaderboard_deep_link_selects_score_and_reference(open_page, report_db):
    ref = f"{report_db.run_id}/{ENCODER}/lora"
    at = open_page("leaderboard", score="accuracy", ref=ref)
    assert at.selectbox(key="lb_score").value == "accuracy"
    assert at.selectbox(key="lb_ref").value == ref
    assert frames(at)[0].set_index(["candidate", "variant"]).loc[(ENCODER, "lora")].iloc[0].endswith("(ref)")


def test_lift_page_shows_lora_minus_base_with_paired_interval(open_page):
    at = open_page("lift")
    assert at.title[0].value == "Fine-tuning lift"
    lift = frames(at)[0]
    assert set(zip(lift["candidate"], lift["suite"], strict=True)) == {
        (CAUSAL, CLS_SUITE), (CAUSAL, GEN_SUITE), (ENCODER, CLS_SUITE)}
    assert (lift["lift"] - (lift["lora"] - lift["base"])).abs().max() < 1e-12
    assert ((lift["low"] <= lift["lift"] + 1e-12) & (lift["lift"] <= lift["high"] + 1e-12)).all()
    assert lift["p_value"].between(0, 1).all()
    (chart,) = charts(at)
    assert candidate_colours_in(chart).keys() == {CAUSAL, ENCODER}


def test_compare_page_differences_examples_and_inert_markup(open_page, report_db):
    at = open_page("compare", run=report_db.run_id, a=f"{CAUSAL}/base", b=f"{CAUSAL}/lora", suite=GEN_SUITE,
                   example=XSS_ID)
    differences, examples = frames(at)[0], frames(at)[1]
    assert set(differences["suite"]) == {CLS_SUITE, GEN_SUITE}
    assert {"rouge1", "rougeL", "chrf", "accuracy", "f1_macro"} <= set(differences["score"])
    assert (differences["difference"] - (differences["value_b"] - differences["value_a"])).abs().max() < 1e-12
    assert len(examples) == 10 and XSS_ID in set(examples["example_id"])
    sizes = examples["difference"].abs().fillna(-1).tolist()
    assert sizes == sorted(sizes, reverse=True)
    texts = [t.value for t in at.text]
    assert any(XSS_SCRIPT in t and XSS_IMG in t for t in texts)  # the input, shown as plain text
    html_bodies = [h.proto.body for h in at.get("html")]
    assert html_bodies and all("<script" not in b and "<img" not in b for b in html_bodies)
    assert not any(XSS_SCRIPT in m.value for m in at.markdown)


def test_compare_page_disagreement_filter(open_page, report_db):
    at = open_page("compare", run=report_db.run_id, a=f"{CAUSAL}/base", b=f"{CAUSAL}/lora", suite=CLS_SUITE)
    at.selectbox(key="cmp_score").set_value("accuracy")
    at.toggle(key="cmp_only").set_value(True).run()
    examples = frames(at)[1]
    assert (examples["disagree"] | (examples["difference"].fillna(0) != 0)).all()
    assert at.caption[-1].value.endswith("largest |B − A| first.")


def test_training_page_shows_losses_and_costs(open_page):
    at = open_page("training")
    assert at.title[0].value == "Training"
    per_candidate, summary, log = frames(at)[0], frames(at)[1], frames(at)[2]
    assert set(per_candidate["candidate"]) == {CAUSAL, ENCODER}
    assert set(zip(summary["candidate"], summary["suite"], strict=True)) == {
        (CAUSAL, CLS_SUITE), (CAUSAL, GEN_SUITE), (ENCODER, CLS_SUITE)}
    assert (summary["steps"] == 2).all()
    assert (summary["trainable_params"] < summary["total_params"]).all()
    assert (summary["tokens_per_s"] > 0).all() and (summary["wall_s"] > 0).all()
    assert {"train", "validation"} <= set(log["split"])
    assert len(charts(at)) == 2  # loss curves, tokens per second


def test_cost_page_shows_pareto_front(open_page, report_db):
    at = open_page("cost", run=report_db.run_id, suite=CLS_SUITE)
    frame = frames(at)[0]
    assert set(zip(frame["candidate"], frame["variant"], strict=True)) == {
        (CAUSAL, "base"), (CAUSAL, "lora"), (ENCODER, "base"), (ENCODER, "lora")}
    assert frame["pareto_latency_s"].any() and (frame["latency_s"] > 0).all()
    assert (frame.loc[frame["variant"] == "base", "train_wall_s"] == 0).all()
    fronts = [t.value for t in at.text if t.value.startswith("Pareto front")]
    assert len(fronts) == 4  # latency, total parameters, trained parameters, training time
    assert len(charts(at)) == 4


def test_runs_page_shows_history_reproduction_and_links(open_page, report_db):
    at = open_page("runs")
    history, links, fingerprints = frames(at)[0], frames(at)[1], frames(at)[2]
    assert list(history["run_id"]) == [report_db.run_id] and history["status"][0] == "finished"
    code = at.code[0].value
    assert f"harness run {report_db.experiment} --new" in code
    assert f"compare?run={report_db.run_id}&suite={GEN_SUITE}" in set(links["link"])
    assert set(fingerprints["name"]) == {CAUSAL, ENCODER, CLS_SUITE, GEN_SUITE}
    assert fingerprints["fingerprint"].str.len().min() >= 8
    assert json.loads(json.dumps(at.json[0].value)) if at.json else False
    assert len(at.download_button) >= 8  # every table downloads as CSV and Parquet


def test_gates_page_empty_and_with_history(open_page, monkeypatch):
    import pandas as pd

    import reports.gates

    at = open_page("gates")
    assert at.title[0].value == "Gate history"
    assert at.info and "gate" in at.info[0].value.lower()
    checks = [{"name": "s / accuracy / accuracy", "status": "fail", "difference": -0.2, "reason": "dropped"}]
    history = pd.DataFrame({"id": ["g1"], "verdict": ["fail"], "exit_code": [1], "checks_json": [json.dumps(checks)]})
    monkeypatch.setattr(reports.gates, "gate_history_frame", lambda store: history)
    at = open_page("gates")
    decisions, shown_checks = frames(at)
    assert decisions["verdict"].tolist() == ["fail"] and "checks_json" not in decisions
    assert shown_checks[["name", "status", "reason"]].to_dict("records") == [
        {"name": "s / accuracy / accuracy", "status": "fail", "reason": "dropped"}]


def test_a_candidate_has_one_colour_on_every_page(open_page):
    seen = {}
    for page in ("leaderboard", "lift", "training", "cost"):
        for spec in charts(open_page(page)):
            for candidate, colour in candidate_colours_in(spec).items():
                seen.setdefault(candidate, set()).add(colour)
    assert seen.keys() == {CAUSAL, ENCODER}
    assert all(len(colours) == 1 for colours in seen.values()), seen
    assert seen[CAUSAL] != seen[ENCODER]


def test_empty_store_says_how_to_start(open_page, tmp_path):
    at = open_page("leaderboard", db=tmp_path / "empty.duckdb")
    assert "No runs in" in at.info[0].value and "harness run" in at.info[0].value


def test_locked_store_shows_a_friendly_retry(open_page, report_db, monkeypatch):
    """Another process holds the file past the (shortened) lock timeout: a warning, never a traceback."""
    import subprocess

    from harness.store import connection

    monkeypatch.setattr(connection.retrying, "__defaults__", (0.5,))
    monkeypatch.setattr(connection.connect, "__defaults__", (0.5,))
    holder = subprocess.Popen([sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                               "print('held', flush=True); time.sleep(30)", str(report_db.path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        at = open_page("leaderboard")
        assert at.warning and "busy" in at.warning[0].value
        assert at.button(key="_retry_busy_store")
    finally:
        holder.kill()
        holder.wait()
    at.run()
    assert not at.warning and at.dataframe  # the retry shows the page once the writer is gone
