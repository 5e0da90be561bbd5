"""The regression gate's verdict: a pure function of two result sets and the rules.

Every score of every baseline metric entry that a rule governs becomes a `Check`. A check is
*not comparable* when the candidate lacks the entry, the suite's dataset fingerprint differs,
the metric's statistics differ, or the example ids differ; otherwise the rule's one-sided test
(`harness.gate.stats`) asks whether the candidate is worse than the baseline by more than
`max_drop`, and the candidate's value is compared with the `floor`. "Worse" follows the rule's
`higher_is_better`, or where the rule leaves it unset, the metric's own `Metric.higher_is_better(score)`.
Holm's correction runs over the tested blocking checks (and, separately, over the warn-only ones).

Verdict: `fail` (a blocking check regressed or fell below its floor; exit 1), `not_comparable`
(no failure, but a blocking check could not be compared; exit 2), `warn` (only warn-only checks
failed or were not comparable; exit 0), `pass` (exit 0).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace

import numpy as np

from harness.errors import HarnessError
from harness.gate.results_file import EntryKey, MetricEntry, ResultSet
from harness.gate.rules import EffectiveRule, GateRules, effective_rules, rules_hash
from harness.gate.stats import compare
from harness.metrics import Metric, get_metric, metric_higher_is_better
from harness.metrics.stats import holm

EXIT_CODES = {"pass": 0, "warn": 0, "fail": 1, "not_comparable": 2}


@dataclass(frozen=True)
class Check:
    """One gated score: the rule that governs it, the measurement and the decision."""

    suite: str
    metric: str
    options_json: str
    score: str
    rule: int  # 1-based position of the governing rule in the rules file
    test: str
    alpha: float
    max_drop: float | None
    floor: float | None
    blocking: bool
    higher_is_better: bool
    status: str = "pass"  # pass | fail | warn | not_comparable
    reason: str = ""
    n: int = 0
    baseline: float | None = None
    candidate: float | None = None
    difference: float | None = None
    low: float | None = None
    high: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    below_floor: bool = False
    regressed: bool = False

    @property
    def name(self) -> str:
        options = "" if self.options_json in ("", "{}") else " " + self.options_json
        return f"{self.suite} / {self.metric}{options} / {self.score}"


@dataclass(frozen=True)
class GateResult:
    verdict: str
    baseline: dict
    candidate: dict
    rules_hash: str
    correction: str
    resamples: int
    seed: int
    checks: tuple[Check, ...]

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.verdict]

    def counts(self) -> dict[str, int]:
        statuses = [c.status for c in self.checks]
        return {"checks": len(statuses), "passed": statuses.count("pass"), "failed": statuses.count("fail"),
                "warned": statuses.count("warn"), "not_comparable": statuses.count("not_comparable")}


def verdict(baseline: ResultSet, candidate: ResultSet, rules: GateRules) -> GateResult:
    """Gate `candidate` against `baseline` under `rules`; the same inputs always give the same result."""
    metrics: dict[EntryKey, Metric] = {}
    checks = []
    for check, entry in _plan(baseline, effective_rules(rules), metrics):
        if entry is None:
            checks.append(check)
            continue
        checks.append(_measure(check, entry, candidate.entries.get(_key(check)), baseline, candidate,
                               metrics[_key(check)], rules))
    decided = tuple(_decide(checks, rules.correction))
    return GateResult(_overall(decided), baseline.describe(), candidate.describe(), rules_hash(rules),
                      rules.correction, rules.resamples, rules.seed, decided)


def _key(check: Check) -> EntryKey:
    return (check.suite, check.metric, check.options_json)


def _skeleton(key: EntryKey, score: str, rule: EffectiveRule, metric: Metric | None) -> Check:
    test = rule.test
    if test == "auto":
        test = "mcnemar" if metric is not None and score == metric.binary_score else "bootstrap"
    higher = rule.higher_is_better
    if higher is None:  # the rule leaves the direction to the metric
        higher = metric.higher_is_better(score) if metric is not None else metric_higher_is_better(key[1], score)
    return Check(suite=key[0], metric=key[1], options_json=key[2], score=score, rule=rule.index + 1, test=test,
                 alpha=rule.alpha, max_drop=rule.max_drop, floor=rule.floor, blocking=rule.blocking,
                 higher_is_better=higher)


def _plan(baseline: ResultSet, rules: list[EffectiveRule], metrics: dict) -> list[tuple[Check, MetricEntry | None]]:
    """A check for each (baseline entry, score) some rule matches (the last match governs), and a
    not-comparable check for each rule that matches nothing in the baseline."""
    out: list[tuple[Check, MetricEntry | None]] = []
    matched: set[int] = set()
    for key in sorted(baseline.entries):
        options = json.loads(key[2] or "{}")
        candidates = [r for r in rules if r.matches_entry(key[0], key[1], options)]
        if not candidates:
            continue
        try:
            metric = metrics[key] = get_metric(key[1], **options)
        except HarnessError as exc:  # a plugin metric not loaded here: say so rather than skip it
            matched.update(r.index for r in candidates)
            check = _skeleton(key, candidates[-1].score, candidates[-1], None)
            out.append((replace(check, status="not_comparable", reason=f"cannot score it here: {exc}"), None))
            continue
        for score in metric.score_names:
            fits = [r for r in rules if r.matches(key[0], key[1], options, score)]
            matched.update(r.index for r in fits)
            if fits:
                out.append((_skeleton(key, score, fits[-1], metric), baseline.entries[key]))
    for rule in rules:
        if rule.index not in matched:
            key = (rule.suite, rule.metric, json.dumps(rule.options or {}, sort_keys=True))
            check = replace(_skeleton(key, rule.score, rule, None), status="not_comparable",
                            reason=f"{rule.label} matches no result in the baseline")
            out.append((check, None))
    return out


def _not_comparable(base: ResultSet, cand: ResultSet, b: MetricEntry, c: MetricEntry | None, paired: bool) -> str:
    if c is None:
        return f"the candidate has no results for suite {b.suite}, metric {b.metric} {b.options_json}"
    if not paired:
        return ""
    fp_b, fp_c = base.fingerprints.get(b.suite), cand.fingerprints.get(b.suite)
    if fp_b != fp_c:
        return f"dataset fingerprint differs (baseline {fp_b}, candidate {fp_c}); refresh the baseline"
    if b.stat_names != c.stat_names:
        return f"metric statistics differ (baseline {list(b.stat_names)}, candidate {list(c.stat_names)})"
    only_b, only_c = set(b.example_ids) - set(c.example_ids), set(c.example_ids) - set(b.example_ids)
    if only_b or only_c:
        example = sorted(only_b or only_c)[0]
        return (f"examples differ: {len(only_b)} only in the baseline, {len(only_c)} only in the candidate "
                f"(e.g. {example})")
    return "" if b.example_ids else "no examples"


def _measure(check: Check, b: MetricEntry, c: MetricEntry | None, base: ResultSet, cand: ResultSet,
             metric: Metric, rules: GateRules) -> Check:
    paired = check.max_drop is not None
    reason = _not_comparable(base, cand, b, c, paired)
    if reason:
        return replace(check, status="not_comparable", reason=reason, n=len(b.example_ids))
    if not paired:  # a floor-only rule: no test, the candidate's value alone decides
        value_b, value_c = metric.corpus(b.stats)[check.score], metric.corpus(c.stats)[check.score]
        measured = replace(check, n=len(c.example_ids), baseline=value_b, candidate=value_c,
                           difference=value_c - value_b)
    else:
        position = {example: row for row, example in enumerate(c.example_ids)}
        aligned = c.stats[np.array([position[e] for e in b.example_ids])]
        result = compare(metric, check.score, b.stats, aligned, check.test, check.max_drop, check.alpha,
                         check.higher_is_better, rules.resamples, rules.seed)
        measured = replace(check, n=result.n, baseline=result.baseline, candidate=result.candidate,
                           difference=result.difference, low=_finite(result.low), high=_finite(result.high),
                           p_value=result.p_value)
    if not (math.isfinite(measured.candidate) and math.isfinite(measured.baseline)):
        return replace(measured, status="not_comparable", reason=f"{check.score} is undefined on these examples")
    return measured


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _decide(checks: list[Check], correction: str) -> list[Check]:
    """Holm-adjust the p-values (blocking and warn-only checks as two families) and decide each check."""
    adjusted: dict[int, float] = {}
    for blocking in (True, False):
        family = [i for i, c in enumerate(checks)
                  if c.p_value is not None and c.blocking == blocking and c.status != "not_comparable"]
        p_values = [checks[i].p_value for i in family]
        adjusted.update(zip(family, holm(p_values) if correction == "holm" else p_values, strict=True))
    out = []
    for i, check in enumerate(checks):
        if check.status == "not_comparable":
            out.append(check)
            continue
        p_adj = adjusted.get(i)
        regressed = p_adj is not None and p_adj < check.alpha
        sign = 1 if check.higher_is_better else -1
        below = check.floor is not None and sign * (check.candidate - check.floor) < 0
        status = "pass" if not (regressed or below) else ("fail" if check.blocking else "warn")
        decided = replace(check, p_adjusted=p_adj, regressed=regressed, below_floor=below, status=status)
        out.append(replace(decided, reason=_reason(decided)))
    return out


def _reason(c: Check) -> str:
    parts = []
    drop = -(c.difference if c.higher_is_better else -c.difference)
    if c.regressed:
        parts.append(f"dropped {drop:.4g} (allowed {c.max_drop:g}); one-sided p {c.p_adjusted:.3g} < {c.alpha:g}")
    if c.below_floor:
        parts.append(f"{c.candidate:.4g} is {'below' if c.higher_is_better else 'above'} the floor {c.floor:g}")
    if parts:
        return "; ".join(parts)
    if c.p_adjusted is None:
        return f"{c.candidate:.4g} meets the floor {c.floor:g}" if c.floor is not None else "not tested"
    return f"no drop beyond {c.max_drop:g} shown (one-sided p {c.p_adjusted:.3g}, alpha {c.alpha:g})"


def _overall(checks: tuple[Check, ...]) -> str:
    if any(c.status == "fail" for c in checks):
        return "fail"
    if any(c.status == "not_comparable" and c.blocking for c in checks):
        return "not_comparable"
    if any(c.status in ("warn", "not_comparable") for c in checks):
        return "warn"
    return "pass"
