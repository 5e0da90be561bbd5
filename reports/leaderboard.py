"""The leaderboard: candidates (base and LoRA) x suites for one score, with intervals, the best per column
and paired-test markers against a reference row."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from harness.store import Store
from harness.store import report_queries as q
from harness.tables import rows_higher_is_better
from reports.colours import colour_scale
from reports.paired import N_RESAMPLES, REFERENCE, SharedResamples, compare, marker, result_columns, stats_lookup
from reports.scores import PRIMARY, ROW, UNCALIBRATED, parse_system, pick_scores, uncalibrated_judges

BEST = "★"
CELL_COLUMNS = [*ROW, "suite", "metric", "options_json", "score", "value", "low", "high", "n"]


def restrict(frame: pd.DataFrame, candidates: list[str] | None, variants: list[str] | None) -> pd.DataFrame:
    """Rows of the chosen candidates and variants (None keeps all)."""
    keep = pd.Series(True, index=frame.index)
    if candidates is not None:
        keep &= frame["candidate"].isin(candidates)
    if variants is not None:
        keep &= frame["variant"].isin(variants)
    return frame[keep]


def leaderboard_frame(store: Store, run_ids: list[str], choice: str = PRIMARY, reference: str | None = None,
                      candidates: list[str] | None = None, variants: list[str] | None = None,
                      n_resamples: int = N_RESAMPLES) -> pd.DataFrame:
    """One row per (run, candidate, variant, suite): value, interval, best flag, paired result vs reference."""
    if not run_ids:
        return pd.DataFrame(columns=[*CELL_COLUMNS, "status", "best", "marker"])
    items = q.items(store, run_ids)
    chosen = pick_scores(q.scores(store, run_ids), choice)
    long = restrict(chosen, candidates, variants)
    long = long[CELL_COLUMNS] if not long.empty else pd.DataFrame(columns=CELL_COLUMNS)
    long = long.assign(best=mark_best(long), uncalibrated=uncalibrated_judges(store, long))
    long = add_significance(store, long, chosen, items, reference, n_resamples)
    return add_unscored(long, restrict(items, candidates, variants))


def mark_best(long: pd.DataFrame) -> pd.Series:
    """True on the best value of each (suite, score) column when it has more than one row."""
    best = pd.Series(False, index=long.index)
    for _, group in long.groupby(["suite", "score"]):
        values = group["value"].dropna()
        if len(values) < 2:
            continue
        top = values.max() if rows_higher_is_better(group) else values.min()
        best[values.index[values == top]] = True
    return best


def add_significance(store: Store, long: pd.DataFrame, chosen: pd.DataFrame, items: pd.DataFrame,
                     reference: str | None, n_resamples: int) -> pd.DataFrame:
    """Paired test of each row against the reference row on the same suite and score."""
    empty = {"marker": "", **result_columns(None)}
    if reference is None or long.empty:
        return long.assign(**empty)
    ref = parse_system(reference)
    runs = sorted(set(long["run_id"]) | {ref[0]})
    lookup = stats_lookup(q.example_stats(store, runs, sorted(set(long["suite"])), sorted(set(long["metric"]))))
    data = _fingerprints(items)
    resamples = SharedResamples(n_resamples)
    resamples.prefetch([stats for _, stats in lookup.values()])
    rows = []
    for r in long.itertuples(index=False):
        a, b = (*ref, r.suite), (r.run_id, r.candidate, r.variant, r.suite)
        if a == b:
            rows.append({**empty, "marker": REFERENCE})
            continue
        same_data = data.get(a) is not None and data.get(a) == data.get(b)
        results = compare(lookup, r.metric, r.options_json, a, b, resamples) if same_data else None
        result = results.get(r.score) if results else None
        rows.append({"marker": marker(r.score, result, metric=r.metric, options_json=r.options_json),
                     **result_columns(result)})
    return pd.concat([long.reset_index(drop=True), pd.DataFrame(rows)], axis=1)


def _fingerprints(items: pd.DataFrame) -> dict[tuple, str]:
    keys = zip(items["run_id"], items["candidate"], items["variant"], items["suite"], strict=True)
    return dict(zip(keys, items["dataset_fingerprint"], strict=True))


def add_unscored(long: pd.DataFrame, items: pd.DataFrame) -> pd.DataFrame:
    """Work items without scores (not applicable, failed, running) as rows with a status and no value, on the
    suites that report the chosen score."""
    status = items[items["suite"].isin(set(long["suite"]))][[*ROW, "suite", "status", "reason"]]
    merged = long.merge(status, on=[*ROW, "suite"], how="outer") if not items.empty else long.assign(status="done")
    merged["status"] = merged["status"].fillna("done")
    merged["best"] = merged["best"].astype("boolean").fillna(False).astype(bool)
    merged["marker"] = merged["marker"].fillna("")
    return merged.sort_values([*ROW, "suite"]).reset_index(drop=True)


def fmt(value: float) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.3f}"


def cell(row) -> str:
    """'0.750 [0.500, 0.917] ★ ▲': value, 95% interval, best mark, paired-test marker."""
    if pd.isna(row["value"]):
        return "n/a" if row["status"] == "not_applicable" else str(row["status"])
    text = f"{fmt(row['value'])} [{fmt(row['low'])}, {fmt(row['high'])}]"
    marks = [BEST if row["best"] else "", row["marker"] if row["marker"] != REFERENCE else "(ref)"]
    return " ".join([text, *[m for m in marks if m]])


def column_names(long: pd.DataFrame) -> pd.Series:
    """'suite · score' for each row; a suite whose item has no score gets the suite's score elsewhere. A column of
    a judge metric without a fresh calibration (reports.scores.uncalibrated_judges) is marked so."""
    scored = long.dropna(subset=["score"]).drop_duplicates("suite").set_index("suite")["score"]
    score = long["suite"].map(scored).fillna("")
    names = (long["suite"] + " · " + score).str.rstrip(" ·")
    if "uncalibrated" in long:
        flagged = set(long.loc[long["uncalibrated"].astype("boolean").fillna(False).astype(bool), "suite"])
        names = names.where(~long["suite"].isin(flagged), names + " " + UNCALIBRATED)
    return names


def leaderboard_table(long: pd.DataFrame, sort_by: str | None = None, descending: bool = True) -> pd.DataFrame:
    """The wide table the page shows: one row per (run,) candidate, variant; one column per suite."""
    if long.empty:
        return pd.DataFrame()
    index = ROW if long["run_id"].nunique() > 1 else ROW[1:]
    long = long.assign(column=column_names(long), cell=long.apply(cell, axis=1))
    wide = long.pivot_table(index=index, columns="column", values="cell", aggfunc="first").fillna("–")
    if sort_by in wide.columns:
        numeric = long.pivot_table(index=index, columns="column", values="value", aggfunc="first")[sort_by]
        order = numeric.reindex(wide.index).sort_values(ascending=not descending, na_position="last").index
        wide = wide.loc[order]
    wide.columns.name = None
    return wide.reset_index()


def leaderboard_chart(long: pd.DataFrame, colours: dict[str, str]) -> alt.Chart | None:
    """Each row's value with its 95% interval, one panel per suite, coloured by candidate."""
    data = long.dropna(subset=["value"])
    if data.empty:
        return None
    data = data.assign(row=data["candidate"] + " · " + data["variant"], column=column_names(data))
    if data["run_id"].nunique() > 1:
        data["row"] = data["row"] + " (" + data["run_id"] + ")"
    base = alt.Chart().encode(
        y=alt.Y("row:N", title=None),
        color=alt.Color("candidate:N", scale=colour_scale(colours, data["candidate"]), title="candidate"),
    )
    bars = base.mark_rule(strokeWidth=2).encode(x=alt.X("low:Q", title="value, 95% interval"), x2="high:Q")
    tooltip = ["candidate", "variant", "run_id", "suite", "score", "value", "low", "high", "marker"]
    points = base.mark_point(filled=True, size=70).encode(x="value:Q", shape="variant:N", tooltip=tooltip)
    return (alt.layer(bars, points, data=data).properties(width=260, height=alt.Step(22))
            .facet(facet=alt.Facet("column:N", title=None), columns=3).resolve_scale(x="independent"))
