"""Gate rules: which scores are gated, how, and how strictly (the `--rules gates.yaml` file).

    correction: holm          # holm (default) or none: correction for many rules at once
    resamples: 2000           # bootstrap / randomisation resamples
    seed: 0
    defaults:                 # every rule inherits these unless it sets them
      alpha: 0.05
      max_drop: 0
      test: auto              # auto: McNemar for a 0/1 score (accuracy, exact_match), else paired bootstrap
      blocking: true
      higher_is_better: null  # null (default): the metric's own direction (Metric.higher_is_better)
    rules:
      - {suite: sentiment, metric: accuracy, floor: 0.80, max_drop: 0.01}
      - {suite: translate, metric: bleu, max_drop: 1.0, blocking: false}

`suite`, `metric` and `score` are shell-style patterns (`*` matches all). When several rules match
one score, the last one governs it (write general rules first, specific ones after).

A rule that governs a `judge` metric needs the judge's calibration against the reviewers
(docs/judges.md): present, not stale, and with `min_agreement` reached (default: weighted kappa 0.6
against the human consensus), else the gate stops with exit 2; `uncalibrated: allow` waives that.

      - {suite: summ, metric: judge, score: grade, min_agreement: {statistic: weighted_kappa, value: 0.6}}
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.yamlfile import load_model

Test = Literal["auto", "bootstrap", "mcnemar", "randomization"]
AgreementStatistic = Literal["weighted_kappa", "kappa", "alpha", "spearman"]
Uncalibrated = Literal["refuse", "allow"]
INHERITED = ("alpha", "max_drop", "test", "blocking", "higher_is_better")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RuleDefaults(Strict):
    alpha: float = Field(0.05, gt=0, lt=0.5, description="one-sided significance level")
    max_drop: float | None = Field(0.0, ge=0, description="largest allowed drop, in score units; null: no test")
    test: Test = "auto"
    blocking: bool = True
    higher_is_better: bool | None = Field(None, description="null: the direction the metric declares for the score")


class MinAgreement(Strict):
    statistic: AgreementStatistic = Field("weighted_kappa", description="judge vs the human consensus")
    value: float = Field(0.6, ge=-1, le=1, description="the lowest acceptable point estimate")


class Rule(Strict):
    suite: str = "*"
    metric: str = "*"
    score: str = "*"
    options: dict[str, Any] | None = Field(None, description="only metric entries with these options")
    floor: float | None = Field(None, description="the worst acceptable candidate value (absolute)")
    alpha: float | None = Field(None, gt=0, lt=0.5)
    max_drop: float | None = Field(None, ge=0)
    test: Test | None = None
    blocking: bool | None = None
    higher_is_better: bool | None = None
    min_agreement: MinAgreement | None = Field(None, description="judge metrics: the calibration needed "
                                               "(default weighted_kappa 0.6)")
    uncalibrated: Uncalibrated = Field("refuse", description="judge metrics: allow gating without calibration")


class GateRules(Strict):
    correction: Literal["holm", "none"] = "holm"
    resamples: int = Field(2000, ge=100, le=100_000)
    seed: int = 0
    defaults: RuleDefaults = Field(default_factory=RuleDefaults)
    rules: list[Rule] = Field(default_factory=lambda: [Rule()], min_length=1)


@dataclass(frozen=True)
class EffectiveRule:
    """A rule with its defaults filled in; `index` is its position in the file (0-based)."""

    index: int
    suite: str
    metric: str
    score: str
    options: dict[str, Any] | None
    floor: float | None
    alpha: float
    max_drop: float | None
    test: str
    blocking: bool
    higher_is_better: bool | None  # None: the metric's direction for the score
    min_agreement: MinAgreement = field(default_factory=MinAgreement)
    uncalibrated: Uncalibrated = "refuse"

    def matches_entry(self, suite: str, metric: str, options: dict[str, Any]) -> bool:
        if not (fnmatch.fnmatchcase(suite, self.suite) and fnmatch.fnmatchcase(metric, self.metric)):
            return False
        return self.options is None or all(options.get(k) == v for k, v in self.options.items())

    def matches(self, suite: str, metric: str, options: dict[str, Any], score: str) -> bool:
        return self.matches_entry(suite, metric, options) and fnmatch.fnmatchcase(score, self.score)

    @property
    def label(self) -> str:
        opts = f" {json.dumps(self.options, sort_keys=True)}" if self.options else ""
        return f"rule {self.index + 1} (suite {self.suite}, metric {self.metric}{opts}, score {self.score})"


def effective_rules(rules: GateRules) -> list[EffectiveRule]:
    """Each rule with the unset fields taken from `defaults` (an explicit `max_drop: null` stays null)."""
    out = []
    for index, rule in enumerate(rules.rules):
        inherited = {name: getattr(rule if name in rule.model_fields_set else rules.defaults, name)
                     for name in INHERITED}
        out.append(EffectiveRule(index=index, suite=rule.suite, metric=rule.metric, score=rule.score,
                                 options=rule.options, floor=rule.floor,
                                 min_agreement=rule.min_agreement or MinAgreement(),
                                 uncalibrated=rule.uncalibrated, **inherited))
    return out


def default_rules() -> GateRules:
    """Every score of the baseline, blocking, max_drop 0, alpha 0.05, McNemar for 0/1 scores else bootstrap."""
    return GateRules()


def load_rules(path: Path | None, seed: int | None = None) -> GateRules:
    """The rules file (file:line errors), or the default rules when `path` is None; `seed` overrides."""
    rules = default_rules() if path is None else load_model(Path(path), GateRules)
    return rules if seed is None else rules.model_copy(update={"seed": seed})


def rules_hash(rules: GateRules) -> str:
    """A hash of the validated rules (defaults included), so equal rules hash equal whatever the layout."""
    canonical = json.dumps(rules.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
