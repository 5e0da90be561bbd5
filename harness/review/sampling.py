"""Choosing which examples of a run go into a review queue: random, stratified or by disagreement.

Each strategy takes the examples every chosen candidate answered and returns up to n of them with a
priority (higher first). `disagreement` ranks examples by how much the candidates' outputs differ
(token Jaccard distance, 0..1) plus how far apart their per-example metric values are (each metric's
range across candidates, scaled by its largest range in the suite). `judge-uncertain` ranks them by how
unsure the run's `judge` metric was (judge_uncertainty) plus how far its grade is from the automatic metrics.
"""

from __future__ import annotations

import json
import re
from itertools import combinations

import numpy as np
import pandas as pd

from harness.errors import HarnessError
from harness.metrics import get_metric

MAX_LABELS = 20  # a suite with at most this many distinct references is stratified by reference
_TOKEN = re.compile(r"\w+", re.UNICODE)


def metric_values(stats: pd.DataFrame) -> pd.DataFrame:
    """Per-example metric values: columns candidate, variant, example_id, metric (a score name), value."""
    parts = []
    for (metric, options_json), group in stats.groupby(["metric", "options_json"], sort=True):
        try:
            values = get_metric(metric, **json.loads(options_json)).example_values(np.vstack(group["stats"]))
        except Exception:  # a metric no longer installed: its values cannot be recomputed; skip it
            continue
        for score, column in values.items():
            parts.append(pd.DataFrame({"candidate": group["candidate"].to_numpy(),
                                       "variant": group["variant"].to_numpy(),
                                       "example_id": group["example_id"].to_numpy(),
                                       "metric": score, "options_json": options_json,
                                       "value": np.asarray(column, dtype=float)}))
    if not parts:
        return pd.DataFrame(columns=["candidate", "variant", "example_id", "metric", "value"])
    frame = pd.concat(parts, ignore_index=True)
    clash = frame.groupby("metric")["options_json"].nunique()
    for score in clash[clash > 1].index:  # the same score name under two option sets: name both
        rows = frame["metric"] == score
        frame.loc[rows, "metric"] = score + " " + frame.loc[rows, "options_json"]
    return frame.drop(columns="options_json")


def _jaccard_distance(a: str, b: str) -> float:
    ta, tb = set(_TOKEN.findall((a or "").lower())), set(_TOKEN.findall((b or "").lower()))
    if not ta and not tb:
        return 0.0 if (a or "").strip() == (b or "").strip() else 1.0
    return 1.0 - len(ta & tb) / len(ta | tb)


def disagreement_scores(outputs: pd.DataFrame, values: pd.DataFrame, examples: list[str]) -> pd.Series:
    """outputs: example_id x candidate label (text); values: per-example metric values with a `label` column."""
    text = pd.Series(0.0, index=examples)
    for example in examples:
        row = outputs.loc[example]
        text[example] = max((_jaccard_distance(a, b) for a, b in combinations(row.tolist(), 2)), default=0.0)
    spread = pd.Series(0.0, index=examples)
    if len(values):
        wide = values.pivot_table(index=["example_id", "metric"], columns="label", values="value", aggfunc="mean")
        ranges = (wide.max(axis=1) - wide.min(axis=1)).unstack("metric").reindex(examples).fillna(0.0)
        scale = ranges.max(axis=0).replace(0.0, 1.0)
        spread = (ranges / scale).mean(axis=1).fillna(0.0)
    return text + spread


def _judge_rows(stats: pd.DataFrame) -> pd.DataFrame:
    """Per (example, label) of the judge metric: uncertainty 0..1 and the grade scaled to 0..1 (NaN: failed)."""
    from harness.records.rubric import option_value
    from harness.review.rubrics import load_rubric

    rows = []
    for record in stats[stats["metric"] == "judge"].itertuples(index=False):
        named = dict(zip(record.stat_names, record.stats, strict=True))
        if "win" in named:  # pairwise: an order-dependent answer is the least sure
            ok = named["ok"] > 0
            rows.append((record.example_id, record.label, 1.0 - named["consistent"] if ok else 1.0,
                         named["win"] + 0.5 * named["tie"] if ok else np.nan))
            continue
        values = [option_value(o) for o in load_rubric(json.loads(record.options_json).get("rubric", "likert"))
                  .choices()]
        low, span = min(values), (max(values) - min(values)) or 1.0
        if named["ok"] <= 0:
            rows.append((record.example_id, record.label, 1.0, np.nan))
            continue
        # the distance of the probability-weighted grade from the most likely option: for pass_fail exactly
        # 1 - p(top option), for a Likert scale a lower bound of the spread of the judge's probabilities
        unsure = min(1.0, 2.0 * abs(named["grade"] - named["top"]) / span)
        rows.append((record.example_id, record.label, unsure, (named["grade"] - low) / span))
    return pd.DataFrame(rows, columns=["example_id", "label", "uncertainty", "judge"])


def judge_uncertainty(stats: pd.DataFrame, values: pd.DataFrame, examples: list[str]) -> pd.Series:
    """stats: example_stats with a `label` column; values: metric_values (with `label`) of the automatic metrics
    (every metric but the judge).

    Per example, the largest over candidates of uncertainty (0..1) + |judge grade - automatic metrics| (both
    scaled 0..1; the automatic value is the mean of each metric scaled by its range in the suite)."""
    judged = _judge_rows(stats)
    if judged.empty:
        raise HarnessError("--strategy judge-uncertain: the run has no `judge` metric for this suite; add "
                           "{name: judge, model: REF} to the suite's metrics, or choose another strategy")
    auto = values
    gap = pd.Series(0.0, index=judged.index)
    if len(auto):
        span = auto.groupby("metric")["value"].agg(lambda v: (v.max() - v.min()) or 1.0)
        low = auto.groupby("metric")["value"].min()
        scaled = auto.assign(value=(auto["value"] - auto["metric"].map(low)) / auto["metric"].map(span))
        mean = scaled.groupby(["example_id", "label"])["value"].mean()
        keys = list(zip(judged["example_id"], judged["label"], strict=True))
        gap = (judged["judge"] - mean.reindex(keys).to_numpy()).abs().fillna(0.0)
    score = (judged["uncertainty"] + gap).groupby(judged["example_id"]).max()
    return score.reindex(examples).fillna(0.0)


def _strata(references: pd.Series, quality: pd.Series | None) -> pd.Series:
    if references.nunique() <= MAX_LABELS:
        return references.astype(str)
    if quality is None or quality.nunique() < 2:
        return pd.Series("all", index=references.index)
    ranks = quality.rank(method="first")
    return pd.qcut(ranks, q=min(4, quality.nunique()), labels=False).astype(str)


def _allocate(sizes: pd.Series, n: int) -> pd.Series:
    """Proportional allocation with largest remainders, never more than a stratum holds."""
    share = sizes / sizes.sum() * n
    take = np.minimum(np.floor(share), sizes).astype(int)
    order = (share - np.floor(share)).sort_values(ascending=False, kind="stable").index.tolist()
    while take.sum() < min(n, sizes.sum()):
        for key in order:
            if take.sum() < n and take[key] < sizes[key]:
                take[key] += 1
    return take


def sample(strategy: str, examples: list[str], n: int, rng: np.random.Generator, *,
           references: pd.Series, quality: pd.Series | None = None,
           disagreement: pd.Series | None = None, uncertainty: pd.Series | None = None) -> list[tuple[str, float]]:
    """Up to n (example_id, priority) pairs, highest priority first."""
    n = min(n, len(examples))
    order = [str(e) for e in rng.permutation(examples)]
    if strategy == "random":
        return [(e, 0.0) for e in order[:n]]
    if strategy == "stratified":
        strata = _strata(references.reindex(examples), None if quality is None else quality.reindex(examples))
        take = _allocate(strata.value_counts().sort_index(), n)
        chosen = [e for key in take.index for e in [x for x in order if strata[x] == key][: take[key]]]
        return [(e, 0.0) for e in sorted(chosen, key=order.index)]
    if strategy == "disagreement":
        if disagreement is None:
            raise ValueError("disagreement scores are needed")
        ranked = sorted(order, key=lambda e: -float(disagreement[e]))  # stable: ties stay in random order
        return [(e, float(disagreement[e])) for e in ranked[:n]]
    if strategy == "judge-uncertain":
        if uncertainty is None:
            raise ValueError("judge uncertainty scores are needed")
        ranked = sorted(order, key=lambda e: -float(uncertainty[e]))
        return [(e, float(uncertainty[e])) for e in ranked[:n]]
    raise HarnessError(f"--strategy {strategy}: must be random, stratified, disagreement or judge-uncertain")
