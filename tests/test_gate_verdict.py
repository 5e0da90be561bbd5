"""The gate's verdict on planted changes, built straight from per-example statistics (SST-2 size, n=872)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gate_helpers import N_SST2, accuracy_set, merge, planted, sst2_labels

from harness.errors import HarnessError
from harness.gate import verdict
from harness.gate.results_file import MetricEntry, ResultSet
from harness.gate.rules import GateRules, default_rules, load_rules, rules_hash
from harness.gate.stats import holm
from harness.metrics import bootstrap_intervals, get_metric

LABELS = sst2_labels()


def pair(right_to_wrong: int, wrong_to_right: int, base_wrong: int = 131, seed: int = 0):
    base_wrong_mask, cand_wrong_mask = planted(len(LABELS), base_wrong, right_to_wrong, wrong_to_right, seed)
    return accuracy_set("baseline", LABELS, base_wrong_mask), accuracy_set("candidate", LABELS, cand_wrong_mask)


def rules(**rule) -> GateRules:
    return GateRules.model_validate({"rules": [{"suite": "*", "metric": "*"} | rule]})


def test_sst2_size():
    assert len(LABELS) == N_SST2


@pytest.mark.parametrize("test", ["auto", "bootstrap", "randomization"])
def test_planted_five_point_drop_fails(test):
    base, cand = pair(right_to_wrong=60, wrong_to_right=16)  # net -44 of 872 = -5.05 points
    result = verdict(base, cand, rules(test=test))
    (check,) = result.checks
    assert check.difference == pytest.approx(-44 / 872)
    assert check.test == ("mcnemar" if test == "auto" else test)
    assert check.status == "fail" and check.regressed and check.p_value < 0.001
    assert check.high < 0  # the whole interval lies below zero
    assert result.verdict == "fail" and result.exit_code == 1


@pytest.mark.parametrize("test", ["auto", "bootstrap", "randomization"])
def test_identical_candidate_passes(test):
    base, _ = pair(0, 0)
    same = accuracy_set("candidate", LABELS, planted(len(LABELS), 131, 0, 0)[0])
    result = verdict(base, same, rules(test=test))
    (check,) = result.checks
    assert check.difference == 0 and check.p_value == 1.0
    assert result.verdict == "pass" and result.exit_code == 0


@pytest.mark.parametrize("test", ["auto", "bootstrap", "randomization"])
def test_noise_of_the_interval_size_passes(test):
    # 99 examples change in both directions, a net drop of 1.5 points: inside the baseline's own interval
    base, cand = pair(right_to_wrong=56, wrong_to_right=43)
    metric = get_metric("accuracy")
    interval = bootstrap_intervals(metric, base.entries[("sst2", "accuracy", "{}")].stats)["accuracy"]
    result = verdict(base, cand, rules(test=test))
    (check,) = result.checks
    assert check.difference < 0
    assert interval.low < check.candidate < interval.high
    assert abs(check.difference) > (interval.high - interval.low) / 4  # a visible drop, not a rounding error
    assert check.status == "pass" and result.verdict == "pass"


def test_allowed_drop_turns_a_small_drop_into_a_pass():
    base, cand = pair(right_to_wrong=30, wrong_to_right=0)  # -3.4 points, clearly significant at max_drop 0
    assert verdict(base, cand, rules()).verdict == "fail"
    assert verdict(base, cand, rules(max_drop=0.05)).verdict == "pass"
    assert verdict(base, cand, rules(max_drop=0.05, test="bootstrap")).verdict == "pass"


def test_floor_fails_on_the_point_estimate():
    base, cand = pair(right_to_wrong=5, wrong_to_right=5)
    result = verdict(base, cand, rules(floor=0.9))
    (check,) = result.checks
    assert check.below_floor and not check.regressed and check.status == "fail"
    assert "below the floor 0.9" in check.reason
    floor_only = verdict(base, cand, rules(floor=0.8, max_drop=None))
    assert floor_only.checks[0].p_value is None and floor_only.verdict == "pass"


def test_warn_only_rule_does_not_block():
    base, cand = pair(right_to_wrong=60, wrong_to_right=16)
    result = verdict(base, cand, rules(blocking=False))
    assert result.checks[0].status == "warn"
    assert result.verdict == "warn" and result.exit_code == 0


def test_lower_is_better_flips_the_direction():
    base, cand = pair(right_to_wrong=16, wrong_to_right=60)  # accuracy rises 5 points
    assert verdict(base, cand, rules()).verdict == "pass"
    assert verdict(base, cand, rules(higher_is_better=False, test="bootstrap")).verdict == "fail"
    assert verdict(base, cand, rules(higher_is_better=False)).verdict == "fail"  # McNemar on 1 - correct


def test_different_dataset_fingerprint_is_not_comparable():
    base, cand = pair(0, 0)
    changed = accuracy_set("candidate", LABELS, planted(len(LABELS), 131, 0, 0)[0], fingerprint="fp-other")
    result = verdict(base, changed, default_rules())
    (check,) = result.checks
    assert check.status == "not_comparable" and "fingerprint differs" in check.reason
    assert result.verdict == "not_comparable" and result.exit_code == 2


def test_missing_examples_are_not_comparable():
    base, _ = pair(0, 0)
    short = accuracy_set("candidate", LABELS[:-3], np.zeros(len(LABELS) - 3, dtype=bool))
    check = verdict(base, short, default_rules()).checks[0]
    assert check.status == "not_comparable"
    assert "3 only in the baseline, 0 only in the candidate" in check.reason


def test_examples_are_aligned_by_id_not_position():
    base, cand = pair(right_to_wrong=60, wrong_to_right=16)
    entry = cand.entries[("sst2", "accuracy", "{}")]
    order = np.random.default_rng(3).permutation(len(entry.example_ids))
    shuffled = MetricEntry(entry.suite, entry.metric, entry.options_json, entry.stat_names,
                           tuple(entry.example_ids[i] for i in order), entry.stats[order])
    reordered = ResultSet("candidate", "run-candidate", "model", "base", cand.fingerprints,
                          {("sst2", "accuracy", "{}"): shuffled})
    a, b = verdict(base, cand, default_rules()), verdict(base, reordered, default_rules())
    assert a.checks == b.checks


def test_missing_suite_in_candidate_and_unmatched_rule():
    base, cand = pair(0, 0)
    other_base, _ = (accuracy_set("b2", LABELS, np.zeros(len(LABELS), dtype=bool), suite="imdb"), None)
    both = merge(base, other_base, name="baseline")
    result = verdict(both, cand, GateRules.model_validate(
        {"rules": [{"suite": "*", "metric": "accuracy"}, {"suite": "news", "metric": "accuracy"}]}))
    by_suite = {c.suite: c for c in result.checks}
    assert by_suite["sst2"].status == "pass"
    assert by_suite["imdb"].status == "not_comparable" and "no results" in by_suite["imdb"].reason
    assert by_suite["news"].status == "not_comparable" and "matches no result" in by_suite["news"].reason
    assert result.verdict == "not_comparable"


def test_last_matching_rule_governs():
    base, cand = pair(right_to_wrong=60, wrong_to_right=16)
    r = GateRules.model_validate({"rules": [{"suite": "*", "metric": "*"},
                                            {"suite": "sst2", "metric": "accuracy", "blocking": False}]})
    (check,) = verdict(base, cand, r).checks
    assert check.rule == 2 and check.status == "warn"


def test_holm_adjusts_and_corrects_across_rules():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([]) == []
    # two suites with a borderline drop each: significant alone (p < 0.05), not after Holm over both
    base1, cand1 = pair(right_to_wrong=52, wrong_to_right=34)
    p_alone = verdict(base1, cand1, rules()).checks[0].p_value
    assert 0.025 < p_alone < 0.05
    b2 = accuracy_set("baseline", LABELS, planted(len(LABELS), 131, 0, 0)[0], suite="sst2b")
    c2 = accuracy_set("candidate", LABELS, planted(len(LABELS), 131, 52, 34)[1], suite="sst2b")
    base, cand = merge(base1, b2, name="baseline"), merge(cand1, c2, name="candidate")
    holm_result = verdict(base, cand, rules())
    assert [c.p_adjusted for c in holm_result.checks] == pytest.approx([2 * p_alone, 2 * p_alone])
    assert holm_result.verdict == "pass"
    assert verdict(base, cand, GateRules.model_validate({"correction": "none"})).verdict == "fail"


def test_mcnemar_on_a_non_binary_score_is_a_user_error():
    metric = get_metric("bleu")
    stats = metric.example_stats(["a cat sat"] * 5, ["a cat sat"] * 5)
    entry = MetricEntry("mt", "bleu", "{}", tuple(metric.stat_names), tuple(f"e{i}" for i in range(5)), stats)
    s = ResultSet("x", "run-x", "m", "base", {"mt": "fp"}, {("mt", "bleu", "{}"): entry})
    assert verdict(s, s, default_rules()).checks[0].test == "bootstrap"
    with pytest.raises(HarnessError, match="McNemar needs a per-example 0/1 score"):
        verdict(s, s, rules(test="mcnemar"))


def test_same_inputs_and_seed_same_verdict():
    base, cand = pair(right_to_wrong=50, wrong_to_right=31)
    r = rules(test="bootstrap")
    assert verdict(base, cand, r) == verdict(base, cand, r)
    other_seed = verdict(base, cand, r.model_copy(update={"seed": 5}))
    assert other_seed.checks[0].p_value != verdict(base, cand, r).checks[0].p_value


def test_rules_file_errors_name_file_and_line(tmp_path):
    path = tmp_path / "gates.yaml"
    path.write_text("rules:\n  - suite: sst2\n    metric: accuracy\n    max_dorp: 0.01\n")
    with pytest.raises(HarnessError, match=r"gates.yaml:4: rules\[0\].max_dorp: unknown key; did you mean 'max_drop'"):
        load_rules(path)
    path.write_text("rules:\n  - suite: sst2\n    alpha: 0.7\n")
    with pytest.raises(HarnessError, match=r"gates.yaml:3: rules\[0\].alpha"):
        load_rules(path)
    path.write_text("correction: bonferroni\n")
    with pytest.raises(HarnessError, match=r"gates.yaml:1: correction"):
        load_rules(path)


def test_rules_defaults_and_hash(tmp_path):
    path = tmp_path / "gates.yaml"
    path.write_text("defaults: {alpha: 0.01, blocking: false}\nrules:\n  - {suite: sst2, metric: accuracy}\n"
                    "  - {suite: sst2, metric: f1, max_drop: null, floor: 0.7}\n")
    loaded = load_rules(path)
    from harness.gate.rules import effective_rules

    first, second = effective_rules(loaded)
    assert (first.alpha, first.blocking, first.max_drop) == (0.01, False, 0.0)
    assert second.max_drop is None and second.floor == 0.7
    reordered = tmp_path / "same.yaml"
    reordered.write_text("rules:\n  - {metric: accuracy, suite: sst2}\n  - {floor: 0.7, max_drop: null, suite: sst2, "
                         "metric: f1}\ndefaults: {blocking: false, alpha: 0.01}\n")
    assert rules_hash(load_rules(reordered)) == rules_hash(loaded)
    assert rules_hash(load_rules(path, seed=3)) != rules_hash(loaded)
    assert json.loads(default_rules().model_dump_json())["rules"] == [
        {"suite": "*", "metric": "*", "score": "*", "options": None, "floor": None, "alpha": None, "max_drop": None,
         "test": None, "blocking": None, "higher_is_better": None, "min_agreement": None,
         "uncalibrated": "refuse"}]


def test_an_unknown_metric_is_not_comparable_unless_no_rule_asks_for_it():
    base, cand = pair(0, 0)
    entry = MetricEntry("sst2", "no_such_metric", "{}", ("x",), ("sst2-0",), np.ones((1, 1)))
    odd = ResultSet("baseline", "run-b", "model", "base", base.fingerprints,
                    {**base.entries, ("sst2", "no_such_metric", "{}"): entry})
    by_metric = {c.metric: c for c in verdict(odd, cand, default_rules()).checks}
    assert by_metric["accuracy"].status == "pass"
    assert by_metric["no_such_metric"].status == "not_comparable"
    assert "cannot score it here" in by_metric["no_such_metric"].reason
    only_accuracy = verdict(odd, cand, rules(metric="accuracy"))
    assert [c.metric for c in only_accuracy.checks] == ["accuracy"] and only_accuracy.verdict == "pass"
