"""Evaluation reports examples done / total after each prediction batch: predict, evaluate_item, the local work
unit and the runner's evaluate step."""

from __future__ import annotations

import pytest
import tiny_models
from test_runner import write_experiment

from harness.config import EvaluationConfig, load_experiment
from harness.evaluation import evaluate_item, example_count
from harness.executors.local import WorkContext, evaluate_unit
from harness.predict import Predictor, predict
from harness.predict.encoder import predict_encoder
from harness.progress import SilentReporter
from harness.runner import run_experiment
from harness.store import Store
from harness.suites import load_suite

KINDS = {"cls": "classification", "mc": "multiple_choice", "gen": "generation"}


def _suite(tmp_path, short: str):
    return load_suite(str(tiny_models.write_suite(tmp_path / short, KINDS[short])))


@pytest.mark.parametrize(("model", "short"), [("causal", "cls"), ("causal", "mc"), ("causal", "gen"),
                                              ("encoder", "cls"), ("encoder", "mc")])
def test_predict_reports_after_each_batch_up_to_the_total(tmp_path, request, model, short):
    loaded = request.getfixturevalue(model)
    suite = _suite(tmp_path, short)
    examples = suite.examples("test")  # 4 rows, batches of at most 3
    calls: list[tuple[int, int]] = []
    preds = predict(Predictor(loaded.model, loaded.tokenizer, loaded.kind, loaded.device), suite, examples, 3,
                    progress=lambda d, n: calls.append((d, n)))
    assert len(preds) == 4 and all(not p.error for p in preds)
    assert len(calls) >= 2 and calls[-1] == (4, 4) and all(n == 4 for _, n in calls)
    assert [d for d, _ in calls] == sorted({d for d, _ in calls}), "done only grows"


def test_batching_for_progress_leaves_encoder_predictions_unchanged(tmp_path, encoder):
    suite = _suite(tmp_path, "cls")
    predictor = Predictor(encoder.model, encoder.tokenizer, encoder.kind, encoder.device)
    whole = predict_encoder(predictor, suite, suite.examples("test"), 3)  # the encoder's own batching
    told = predict(predictor, suite, suite.examples("test"), 3, progress=lambda d, n: None)
    assert [(p.output, p.choice_scores) for p in told] == [(p.output, p.choice_scores) for p in whole]


def test_evaluate_item_and_the_work_unit_report_progress(tmp_path, causal_dir):
    path = write_experiment(tmp_path, {"llama": causal_dir}, ["cls"], evaluation="max_examples: 3")
    cfg = load_experiment(path)
    suite = load_suite(cfg.suites[0], base=path.parent)
    cfg = cfg.model_copy(update={"evaluation": EvaluationConfig(batch_size=1, max_examples=3,
                                                                bootstrap_resamples=10)})
    assert example_count(suite, cfg.evaluation) == 3
    calls: list[tuple[int, int]] = []
    ctx = WorkContext(cfg, {suite.name: suite}, "run")
    evaluated = evaluate_unit(ctx, "llama", "base", suite.name, progress=lambda d, n: calls.append((d, n)))
    assert evaluated.item.status == "done" and calls == [(1, 3), (2, 3), (3, 3)]
    from harness.executors.local import load_candidate

    base, _ = load_candidate(ctx, "llama")
    again: list[tuple[int, int]] = []
    evaluate_item(Predictor(base.model, base.tokenizer, base.kind, base.device), suite, cfg.evaluation, 1,
                  ctx.key("llama", "base", suite.name), progress=lambda d, n: again.append((d, n)))
    assert again == calls


class _Recorder(SilentReporter):
    def __init__(self):
        self.events: list[tuple] = []

    def item_started(self, label, total):
        self.events.append(("started", label, total))

    def item_progress(self, done, total, note=""):
        self.events.append(("progress", done, total))


def test_the_runner_shows_examples_done_of_total_while_evaluating(tmp_path, causal_dir):
    path = write_experiment(tmp_path, {"llama": causal_dir}, ["gen"], variants="[base]",
                            evaluation="max_examples: 3")
    path.write_text(path.read_text().replace("batch_size: 4, bootstrap", "batch_size: 1, bootstrap"))
    reporter = _Recorder()
    _, status = run_experiment(path, Store(tmp_path / "p.duckdb"), reporter)
    assert status == "finished"
    start = reporter.events.index(("started", "evaluate llama / base / tiny_gen", 3))
    assert reporter.events[start + 1 : start + 4] == [("progress", 1, 3), ("progress", 2, 3), ("progress", 3, 3)]
