"""Turning a queue's grades into the tables the "Human review" page and `harness review stats` show.

Pairwise answers are stored as the reviewer saw them (A, B, tie); here they are mapped back through the
item's recorded positions to the pair's first and second candidate (first: earlier in the queue's list).
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from harness.records.review import Queue
from harness.review.rubrics import OVERALL, numeric
from harness.review.sampling import metric_values
from harness.review.stats import (
    bootstrap,
    bradley_terry,
    category_counts,
    cohen_kappa,
    correlations,
    fleiss_kappa,
    krippendorff_alpha,
)
from harness.store import Store, reviews

PAIR_CODE = {"first": 0.0, "tie": 1.0, "second": 2.0}  # ordinal: first better < tie < second better


def grades(store: Store, queue: Queue, criterion: str = OVERALL) -> pd.DataFrame:
    """One row per grade: item, example, reviewer, the answer, and `first`/`second`/`value` columns.

    value: the numeric grade (single mode) or PAIR_CODE of the canonical preference (pairwise).
    """
    frame = reviews.grades_frame(store, queue.queue_id)
    frame["answer"] = [json.loads(a).get(criterion) for a in frame["answers_json"]]
    frame = frame[frame["answer"].notna()].copy()
    label_a = frame["candidate_a"] + ":" + frame["variant_a"]
    if queue.mode == "single":
        frame["first"], frame["second"] = label_a, None
        frame["value"] = [numeric(queue.rubric.kind, a) for a in frame["answer"]]
        return frame
    label_b = frame["candidate_b"] + ":" + frame["variant_b"]
    swapped = frame["swapped"].astype(bool)
    frame["first"] = np.where(swapped, label_b, label_a)
    frame["second"] = np.where(swapped, label_a, label_b)
    side = frame["answer"].map({"A": "a", "B": "b", "tie": "tie"})
    canonical = np.where(side == "tie", "tie", np.where((side == "a") != swapped, "first", "second"))
    frame["value"] = [PAIR_CODE[c] for c in canonical]
    frame["winner"] = np.where(canonical == "tie", "tie", np.where(canonical == "first", frame["first"],
                                                                    frame["second"]))
    return frame


def export_csv(store: Store, queue: Queue) -> str:
    """Every grade of a queue with its item, answers in columns and (pairwise) the winner by name."""
    frame = grades(store, queue)
    answers = pd.DataFrame([json.loads(a) for a in frame["answers_json"]], index=frame.index)
    frame = pd.concat([frame.drop(columns=["answers_json", "answer"]), answers.add_prefix("answer_")], axis=1)
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return buffer.getvalue()


def progress_tables(store: Store) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per queue: items, complete, grades; per queue and reviewer: graded, skipped, last activity)."""
    return reviews.progress_frames(store)


def _estimates(names: list[str], value, low, high, counts: list[int], column: str) -> pd.DataFrame:
    return pd.DataFrame({"candidate": names, column: value, "low": low, "high": high, "n": counts})


def candidate_scores(queue: Queue, frame: pd.DataFrame, resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Single mode: mean human grade per candidate (mean of item means), examples resampled together."""
    names = [c.label for c in queue.candidates]
    item_means = frame.groupby(["example_id", "first"])["value"].mean().unstack("first").reindex(columns=names)
    matrix = item_means.to_numpy(dtype=float)

    def stat(idx: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.nanmean(matrix[idx], axis=0) if len(idx) else np.full(len(names), np.nan)

    value, low, high = bootstrap(len(matrix), stat, resamples, seed)
    counts = [int(np.sum(~np.isnan(matrix[:, i]))) for i in range(len(names))]
    return _estimates(names, value, low, high, counts, "score")


def _win_matrix(frame: pd.DataFrame, names: list[str]) -> np.ndarray:
    index = {n: i for i, n in enumerate(names)}
    wins = np.zeros((len(names), len(names)))
    for first, second, value in frame[["first", "second", "value"]].itertuples(index=False):
        i, j = index[first], index[second]
        share = {0.0: (1.0, 0.0), 1.0: (0.5, 0.5), 2.0: (0.0, 1.0)}[value]
        wins[i, j] += share[0]
        wins[j, i] += share[1]
    return wins


def pairwise_tables(queue: Queue, frame: pd.DataFrame, resamples: int = 1000, seed: int = 0,
                    prior: float = 0.5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(win rates with ties as half wins, Bradley-Terry log-strengths), items resampled."""
    names = [c.label for c in queue.candidates]
    by_item = [g for _, g in frame.groupby("item_id")]

    def wins_of(idx: np.ndarray) -> np.ndarray:
        parts = [by_item[i] for i in idx]
        return _win_matrix(pd.concat(parts) if parts else frame.iloc[:0], names)

    def rates(idx: np.ndarray) -> np.ndarray:
        wins = wins_of(idx)
        games = (wins + wins.T).sum(axis=1)
        with np.errstate(all="ignore"):
            return wins.sum(axis=1) / games

    def strengths(idx: np.ndarray) -> np.ndarray:
        wins = wins_of(idx)
        return np.where((wins + wins.T).sum(axis=1) > 0, bradley_terry(wins, prior=prior), np.nan)

    wins = wins_of(np.arange(len(by_item)))
    counts = [int(c) for c in (wins + wins.T).sum(axis=1)]
    rate = _estimates(names, *bootstrap(len(by_item), rates, resamples, seed), counts, "win_rate")
    bt = _estimates(names, *bootstrap(len(by_item), strengths, resamples, seed), counts, "strength")
    return rate, bt


def rating_matrix(frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Reviewers x items matrix of the numeric grades, NaN where a reviewer did not grade an item."""
    wide = frame.pivot_table(index="reviewer", columns="item_id", values="value", aggfunc="first")
    return wide.to_numpy(dtype=float), list(wide.index)


def _safe(fn, *args) -> float:
    with np.errstate(all="ignore"):
        try:
            value = fn(*args)
        except (ValueError, ZeroDivisionError):
            return float("nan")
    return float(value) if np.isfinite(value) else float("nan")


def agreement(frame: pd.DataFrame) -> pd.DataFrame:
    """Cohen's kappa per pair of reviewers, Fleiss' kappa, Krippendorff's alpha (nominal and ordinal)."""
    matrix, reviewers = rating_matrix(frame)
    rows = []
    for i, j in combinations(range(len(reviewers)), 2):
        both = ~np.isnan(matrix[i]) & ~np.isnan(matrix[j])
        if both.sum() >= 2:
            rows.append({"statistic": f"Cohen's kappa ({reviewers[i]}, {reviewers[j]})", "items": int(both.sum()),
                         "value": _safe(cohen_kappa, matrix[i, both], matrix[j, both])})
    per_item = (~np.isnan(matrix)).sum(axis=0) if matrix.size else np.array([])
    multi = per_item[per_item >= 2]
    if len(multi):
        m = int(np.bincount(multi).argmax())
        table, _ = category_counts(matrix[:, per_item == m])
        rows.append({"statistic": f"Fleiss' kappa ({m} grades per item)", "items": int((per_item == m).sum()),
                     "value": _safe(fleiss_kappa, table)})
    for level in ("nominal", "ordinal"):
        rows.append({"statistic": f"Krippendorff's alpha ({level})", "items": int(len(multi)),
                     "value": _safe(krippendorff_alpha, matrix, level) if len(multi) else float("nan")})
    return pd.DataFrame(rows, columns=["statistic", "items", "value"])


def _human_per_item(queue: Queue, frame: pd.DataFrame) -> pd.DataFrame:
    """Mean human value per item; pairwise as +1 (first better) .. -1 (second better)."""
    value = frame["value"] if queue.mode == "single" else 1.0 - frame["value"]
    return frame.assign(human=value).groupby(["example_id", "first", "second"], dropna=False)["human"].mean() \
        .reset_index()


def metric_correlations(store: Store, queues: list[Queue], frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Kendall and Spearman between human grades and each automatic metric, per suite and mode.

    Single mode pairs an item's mean grade with the candidate's per-example metric value; pairwise
    mode pairs the mean preference for the first candidate with the metric difference (first - second).
    """
    pooled: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
    for queue in queues:
        frame = frames.get(queue.queue_id)
        if frame is None or frame.empty:
            continue
        values = metric_values(reviews.example_stats(store, queue.run_id, queue.suite))
        if values.empty:
            continue
        lookup = values.assign(label=values["candidate"] + ":" + values["variant"]) \
            .set_index(["metric", "label", "example_id"])["value"]
        human = _human_per_item(queue, frame)
        for metric in sorted(values["metric"].unique()):
            for row in human.itertuples(index=False):
                first = lookup.get((metric, row.first, row.example_id), np.nan)
                machine = first if queue.mode == "single" else \
                    first - lookup.get((metric, row.second, row.example_id), np.nan)
                pooled.setdefault((queue.suite, queue.mode, metric), []).append((row.human, machine))
    rows = [{"suite": s, "mode": m, "metric": metric, **correlations(*zip(*pairs, strict=True))}
            for (s, m, metric), pairs in sorted(pooled.items())]
    return pd.DataFrame(rows, columns=["suite", "mode", "metric", "n", "kendall_tau", "kendall_p",
                                       "spearman_rho", "spearman_p"])


@dataclass
class QueueAnalysis:
    queue: Queue
    grades: pd.DataFrame
    scores: pd.DataFrame | None  # single mode
    win_rates: pd.DataFrame | None  # pairwise mode
    strengths: pd.DataFrame | None  # pairwise mode
    agreement: pd.DataFrame
    correlations: pd.DataFrame


def analyse(store: Store, queue: Queue, criterion: str = OVERALL, resamples: int = 1000,
            seed: int = 0) -> QueueAnalysis:
    frame = grades(store, queue, criterion)
    scores = win_rates = strengths = None
    if queue.mode == "single":
        scores = candidate_scores(queue, frame, resamples, seed)
    else:
        win_rates, strengths = pairwise_tables(queue, frame, resamples, seed)
    corr = metric_correlations(store, [queue], {queue.queue_id: frame})
    return QueueAnalysis(queue, frame, scores, win_rates, strengths, agreement(frame), corr)
