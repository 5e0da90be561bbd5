"""Score direction is the metric's: a plugin metric declaring a lower-is-better score is ranked and gated that way."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import harness.metrics.registry as registry
from harness.gate import verdict
from harness.gate.results_file import MetricEntry, ResultSet
from harness.gate.rules import GateRules, default_rules
from harness.metrics import MeanMetric, PairedResult, get_metric, metric_higher_is_better, register_metric
from harness.tables import comparison_frame, higher_is_better
from reports.leaderboard import mark_best
from reports.paired import BETTER, WORSE, marker

N = 200


class CharErrors(MeanMetric):
    """Share of characters that differ: a plugin score where lower is better, under a name no convention knows."""

    name = "char_errors_test"
    lower_is_better = frozenset({"cer"})
    score_names = ["cer"]

    def example_scores(self, predictions, references, labels):
        wrong = [sum(a != b for a, b in zip(p, r[0], strict=False)) + abs(len(p) - len(r[0])) for p, r in
                 zip(predictions, references, strict=True)]
        return {"cer": [w / max(len(r[0]), 1) for w, r in zip(wrong, references, strict=True)]}


@pytest.fixture(autouse=True)
def plugin(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    register_metric(CharErrors)


def test_the_metric_declares_the_direction_and_conventions_fill_in():
    assert get_metric("char_errors_test").higher_is_better("cer") is False
    assert metric_higher_is_better("char_errors_test", "cer", "{}") is False
    assert get_metric("accuracy").higher_is_better("accuracy") is True
    assert get_metric("bleu").higher_is_better("bleu") is True
    # no metric named (training loss, latency) or one not loadable here: the conventional names
    assert higher_is_better("ter") is False and higher_is_better("loss") is False
    assert higher_is_better("cer") is True  # by name alone nothing says cer is an error rate
    assert metric_higher_is_better("not_loaded_plugin", "cer") is True
    assert metric_higher_is_better("not_loaded_plugin", "loss") is False


def _scores(metric: str) -> pd.DataFrame:
    return pd.DataFrame({"candidate": ["a", "b", "c"], "variant": "base", "suite": "spell", "metric": metric,
                         "options_json": "{}", "score": "cer", "value": [0.30, 0.10, 0.20], "low": 0.0,
                         "high": 0.5})


@pytest.mark.parametrize("metric, best", [("char_errors_test", "b"), ("exact_match", "a")])
def test_the_table_and_the_leaderboard_rank_by_the_metric(metric, best):
    """The same values: lowest best for the plugin's cer, highest best for a higher-is-better metric."""
    table = comparison_frame(_scores(metric))
    starred = [c for c, cell in zip(table.index.get_level_values("candidate"), table["spell cer"], strict=True)
               if cell.endswith("*")]
    assert starred == [best]
    long = _scores(metric)
    assert long.loc[mark_best(long), "candidate"].tolist() == [best]


def test_the_marker_reads_a_drop_in_cer_as_better():
    result = PairedResult("cer", 0.3, 0.1, -0.2, -0.3, -0.1, 0.001, "bootstrap", N)
    assert marker("cer", result, metric="char_errors_test", options_json="{}") == BETTER
    assert marker("cer", result, metric="exact_match", options_json="{}") == WORSE


def _result_set(name: str, error_rate: float) -> ResultSet:
    metric = get_metric("char_errors_test")
    rng = np.random.default_rng(0 if name == "baseline" else 1)
    refs = ["abcdefghij"] * N
    preds = ["".join("x" if rng.random() < error_rate else ch for ch in ref) for ref in refs]
    stats = metric.example_stats(preds, refs)
    entry = MetricEntry("spell", "char_errors_test", "{}", tuple(metric.stat_names),
                        tuple(f"spell-{i}" for i in range(N)), stats)
    return ResultSet(source=name, run_id=f"run-{name}", candidate="model", variant="base",
                     fingerprints={"spell": "fp"}, entries={("spell", "char_errors_test", "{}"): entry})


@pytest.mark.parametrize("test", ["bootstrap", "randomization"])
def test_the_gate_fails_a_rise_in_cer_and_passes_a_fall_by_default(test):
    base, worse, better = _result_set("baseline", 0.1), _result_set("worse", 0.3), _result_set("better", 0.02)
    rules = GateRules.model_validate({"rules": [{"test": test}]})
    failed = verdict(base, worse, rules)
    assert failed.verdict == "fail" and failed.checks[0].higher_is_better is False
    assert verdict(base, better, rules).verdict == "pass"
    assert verdict(base, better, default_rules()).verdict == "pass"


def test_a_rule_still_overrides_the_metric_direction():
    base, better = _result_set("baseline", 0.1), _result_set("better", 0.02)
    rules = GateRules.model_validate({"defaults": {"higher_is_better": True}, "rules": [{}]})
    assert verdict(base, better, rules).verdict == "fail"
    floor = GateRules.model_validate({"rules": [{"max_drop": None, "floor": 0.05}]})
    assert verdict(base, better, floor).verdict == "pass"  # a floor on cer is a ceiling
    assert verdict(base, _result_set("worse", 0.3), floor).verdict == "fail"
