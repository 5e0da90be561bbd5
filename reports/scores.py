"""Choosing which score a page shows, and the rows a page compares (run, candidate, variant)."""

from __future__ import annotations

import json
from functools import lru_cache

import pandas as pd

from harness.errors import HarnessError
from harness.metrics import Metric, get_metric
from harness.store import Store
from harness.store import report_queries as q
from harness.tables import higher_is_better

PRIMARY = "primary score of each suite"
ROW = ["run_id", "candidate", "variant"]
SYSTEM_SEP = "/"


def score_choices(scores: pd.DataFrame) -> list[str]:
    """PRIMARY, then every score name present (in the order suites list them)."""
    if scores.empty:
        return [PRIMARY]
    ordered = scores.sort_values("position")["score"]
    return [PRIMARY, *dict.fromkeys(ordered)]


def pick_scores(scores: pd.DataFrame, choice: str) -> pd.DataFrame:
    """One score per (run, candidate, variant, suite): the chosen score name, or each suite's first score.

    A score name produced by two option sets of one metric keeps the first the suite lists.
    """
    if scores.empty:
        return scores
    if choice == PRIMARY:
        first = scores.sort_values("position").groupby(["run_id", "suite"], as_index=False).first()
        keys = first[["run_id", "suite", "metric", "options_json", "score"]]
    else:
        keep = scores[scores["score"] == choice].sort_values("position")
        keys = keep.groupby(["run_id", "suite"], as_index=False).first()[
            ["run_id", "suite", "metric", "options_json", "score"]]
    return scores.merge(keys, on=list(keys.columns)).drop(columns="position").reset_index(drop=True)


def better(score: str, difference: float, metric: str | None = None, options_json: str | None = None) -> bool:
    """Whether a positive difference (b - a) means b is better for this score (of this metric, when given)."""
    return difference > 0 if _higher_is_better(score, metric, options_json) else difference < 0


def _higher_is_better(score: str, metric: str | None, options_json: str | None) -> bool:
    """The metric's direction through the cached `metric_for` (the paired test built it already)."""
    if metric:
        try:
            return metric_for(metric, options_json).higher_is_better(score)
        except (HarnessError, ValueError):
            pass
    return higher_is_better(score, metric, options_json)


@lru_cache(maxsize=64)
def metric_for(name: str, options_json: str | None) -> Metric:
    return get_metric(name, **json.loads(options_json or "{}"))


def system_key(run_id: str, candidate: str, variant: str) -> str:
    """A row's key in selectors and deep links: run/candidate/variant (none of them contains '/')."""
    return SYSTEM_SEP.join([run_id, candidate, variant])


def parse_system(key: str) -> tuple[str, str, str]:
    run_id, candidate, variant = key.rsplit(SYSTEM_SEP, 2)
    return run_id, candidate, variant


def system_label(key: str, with_run: bool) -> str:
    run_id, candidate, variant = parse_system(key)
    return f"{candidate} · {variant}" + (f"  ({run_id})" if with_run else "")


def systems(frame: pd.DataFrame) -> list[str]:
    """The distinct rows of a frame with run_id, candidate and variant columns, as keys."""
    if frame.empty:
        return []
    rows = frame[ROW].drop_duplicates().sort_values(ROW)
    return [system_key(*r) for r in rows.itertuples(index=False)]


def selection_options(store: Store, run_ids: list[str]) -> dict[str, list[str]]:
    """What a page's pickers offer for these runs: score choices, rows, candidates, variants, suites."""
    items = q.items(store, run_ids) if run_ids else pd.DataFrame(columns=[*ROW, "suite"])
    return {
        "choices": score_choices(q.scores(store, run_ids)) if run_ids else [PRIMARY],
        "systems": systems(items),
        "candidates": sorted(set(items["candidate"])),
        "variants": sorted(set(items["variant"])),
        "suites": sorted(set(items["suite"])),
    }


# judge metrics: a column of a judge whose calibration is missing or stale is marked on the leaderboard ------------
UNCALIBRATED = "⚠ uncalibrated judge"


def judge_calibration_problem(store: Store, options_json: str | None) -> str | None:
    """'missing' / 'stale' / 'not found' for a judge metric's options, None when a fresh calibration exists."""
    from harness.gate.calibration import current_key
    from harness.judges.stored import latest_calibration

    try:
        ref, rubric, key = current_key(json.loads(options_json or "{}"))
    except Exception:  # the judge model or its rubric is gone: it cannot be checked, so it is not calibrated
        return "not found"
    record = latest_calibration(store, ref, rubric)
    if record is None:
        return "missing"
    return "stale" if record.is_stale(key) else None


def uncalibrated_judges(store: Store, long: pd.DataFrame) -> pd.Series:
    """True on rows of a judge metric whose calibration is missing or stale."""
    if long.empty or "metric" not in long:
        return pd.Series(False, index=long.index, dtype=bool)
    judged = long["metric"] == "judge"
    problems = {o: judge_calibration_problem(store, o) for o in long.loc[judged, "options_json"].unique()}
    return judged & long["options_json"].map(lambda o: problems.get(o) is not None)
