"""The gate's calibration check: a rule that governs a `judge` metric needs the judge calibrated.

For every judge metric entry of the baseline and every rule governing one of its scores (the last
matching rule, as in harness.gate.decision), unless the rule says `uncalibrated: allow`, the newest
calibration record of that (judge reference, rubric) in the store must exist, must not be stale (same
judge fingerprint, prompt hash and rubric hash as the judge the metric names) and must reach the
rule's `min_agreement` against the human consensus. Otherwise the gate stops with a HarnessError
(exit 2) that names the rule, the judge and what is wrong: missing, stale (and why) or below.
"""

from __future__ import annotations

import json
import math

from harness.errors import HarnessError
from harness.gate.results_file import ResultSet
from harness.gate.rules import EffectiveRule, GateRules, effective_rules
from harness.judges.calibration import CalibrationKey, CalibrationRecord
from harness.judges.stored import latest_calibration
from harness.store import Store

JUDGE_METRIC = "judge"
STATISTIC_FIELDS = {"weighted_kappa": "weighted_kappa", "kappa": "cohen_kappa", "alpha": "krippendorff_alpha",
                    "spearman": "spearman"}
_SCORES = ("grade", "top", "failure_rate", "win_rate", "position_consistency")


def judge_fingerprint(ref: str) -> str:
    """The fingerprint a judge of this reference has, without loading the model."""
    from harness.judges.endpoint import PREFIX, parse_endpoint

    if ref.startswith(PREFIX):
        endpoint = parse_endpoint(ref)
        return f"endpoint:{endpoint.base_url}#{endpoint.model}"
    from harness import models

    return models.fingerprint(models.resolve(ref))


def current_key(options: dict) -> tuple[str, str, CalibrationKey]:
    """(judge reference, rubric name, the key the judge of these metric options has now)."""
    from harness.review.rubrics import load_rubric

    ref = str(options.get("model", ""))
    rubric = load_rubric(str(options.get("rubric", "likert")))
    key = CalibrationKey.of(judge_fingerprint(ref), rubric, bool(options.get("reference", False)))
    return ref, rubric.name, key


def problem(record: CalibrationRecord | None, key: CalibrationKey, rule: EffectiveRule) -> str | None:
    """Why this record does not allow the rule (missing / stale / below), or None when it does."""
    if record is None:
        return "calibration missing"
    reasons = record.key.stale_reasons(key)
    if reasons:
        return f"calibration stale ({', '.join(reasons)})"
    wanted = rule.min_agreement
    value = record.vs_consensus[STATISTIC_FIELDS[wanted.statistic]].value
    if math.isnan(value) or value < wanted.value:
        return f"calibration below min_agreement ({wanted.statistic} {value:.3f} < {wanted.value})"
    return None


def governing(rules: list[EffectiveRule], suite: str, metric: str, options: dict) -> list[EffectiveRule]:
    """The rules that govern at least one score of an entry (the last match per score)."""
    found: dict[int, EffectiveRule] = {}
    for score in _SCORES:
        matching = [r for r in rules if r.matches(suite, metric, options, score)]
        if matching:
            found[matching[-1].index] = matching[-1]
    return [found[i] for i in sorted(found)]


def check_calibration(rules: GateRules, baseline: ResultSet, store: Store) -> None:
    """Raise HarnessError naming every rule on a judge metric that its calibration does not allow."""
    effective = effective_rules(rules)
    problems: list[str] = []
    for (suite, metric, options_json), _ in sorted(baseline.entries.items()):
        if metric != JUDGE_METRIC:
            continue
        options = json.loads(options_json or "{}")
        rules_here = [r for r in governing(effective, suite, metric, options) if r.uncalibrated != "allow"]
        if not rules_here:
            continue
        ref, rubric, key = current_key(options)
        record = latest_calibration(store, ref, rubric)
        for rule in rules_here:
            why = problem(record, key, rule)
            if why:
                problems.append(f"{rule.label}: judge {ref} on rubric {rubric}, suite {suite}: {why}")
    if problems:
        raise HarnessError("; ".join(problems) + ". Run `harness judge calibrate --queue Q --judge REF` on a graded "
                           "queue of that rubric, or add `uncalibrated: allow` to the rule")
