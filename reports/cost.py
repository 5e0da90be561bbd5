"""Cost and quality: each row's quality on a suite against latency, parameters or training time,
with the Pareto front (no other row is both cheaper and better)."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from harness.store import Store
from harness.store import report_queries as q
from harness.tables import higher_is_better
from reports.colours import colour_scale
from reports.scores import PRIMARY, ROW, pick_scores

COSTS = {"latency_s": "mean latency per example (s)", "total_params": "total parameters",
         "trainable_params": "trained parameters", "train_wall_s": "fine-tuning wall time (s)"}
COLUMNS = [*ROW, "suite", "score", "quality", "low", "high", *COSTS, *(f"pareto_{c}" for c in COSTS)]


def cost_quality_frame(store: Store, run_ids: list[str], suite: str, choice: str = PRIMARY) -> pd.DataFrame:
    """One row per (run, candidate, variant) on `suite`: quality, its interval, every cost, and for each cost
    whether the row is on the Pareto front (`pareto_<cost>`)."""
    chosen = pick_scores(q.scores(store, run_ids), choice) if run_ids else pd.DataFrame()
    if chosen.empty or suite not in set(chosen["suite"]):
        return pd.DataFrame(columns=COLUMNS)
    rows = chosen[chosen["suite"] == suite][[*ROW, "suite", "score", "value", "low", "high"]]
    rows = rows.rename(columns={"value": "quality"})
    rows = rows.merge(q.latency(store, run_ids)[[*ROW, "suite", "latency_s"]], on=[*ROW, "suite"], how="left")
    params = q.candidates(store, run_ids)[["run_id", "candidate", "total_params"]]
    rows = rows.merge(params, on=["run_id", "candidate"], how="left")
    adapters = q.adapters(store, run_ids)[["run_id", "candidate", "suite", "trainable_params", "wall_s"]]
    adapters = adapters.rename(columns={"wall_s": "train_wall_s"}).assign(variant="lora")
    rows = rows.merge(adapters, on=[*ROW, "suite"], how="left")
    is_base = rows["variant"] == "base"
    rows.loc[is_base, "train_wall_s"] = 0.0
    rows.loc[is_base, "trainable_params"] = 0
    higher = higher_is_better(str(rows["score"].iloc[0]))
    for cost in COSTS:
        rows[f"pareto_{cost}"] = pareto_mask(rows, cost, "quality", higher)
    return rows[COLUMNS].reset_index(drop=True)


def pareto_mask(frame: pd.DataFrame, cost: str, quality: str, higher_better: bool = True) -> pd.Series:
    """True for rows no other row dominates (cost no higher and quality no worse, one of them strictly)."""
    c = frame[cost].to_numpy(dtype=float)
    v = frame[quality].to_numpy(dtype=float) * (1.0 if higher_better else -1.0)
    valid = np.isfinite(c) & np.isfinite(v)
    on_front = np.zeros(len(frame), dtype=bool)
    for i in np.flatnonzero(valid):
        others = valid & (c <= c[i]) & (v >= v[i]) & ((c < c[i]) | (v > v[i]))
        on_front[i] = not others.any()
    return pd.Series(on_front, index=frame.index)


def cost_chart(frame: pd.DataFrame, cost: str, colours: dict[str, str]) -> alt.Chart | None:
    """Quality against the chosen cost; the Pareto front as a step line through its rows."""
    data = frame.dropna(subset=["quality", cost])
    if data.empty:
        return None
    data = data.assign(row=data["candidate"] + " · " + data["variant"])
    x = alt.X(f"{cost}:Q", title=COSTS[cost])
    y = alt.Y("quality:Q", title=str(data["score"].iloc[0]), scale=alt.Scale(zero=False))
    points = alt.Chart(data).mark_point(filled=True, size=90).encode(
        x=x, y=y, shape="variant:N",
        color=alt.Color("candidate:N", scale=colour_scale(colours, data["candidate"]), title="candidate"),
        tooltip=["run_id", "candidate", "variant", "quality", "low", "high", cost, f"pareto_{cost}"],
    )
    errors = alt.Chart(data).mark_rule(opacity=0.5).encode(
        x=x, y="low:Q", y2="high:Q", color=alt.Color("candidate:N", scale=colour_scale(colours, data["candidate"])))
    front = alt.Chart(data[data[f"pareto_{cost}"]].sort_values(cost)).mark_line(
        interpolate="step-after", color="black", strokeDash=[5, 3]).encode(x=x, y=y)
    labels = points.mark_text(align="left", dx=8, dy=-6).encode(text="row:N")
    return alt.layer(errors, front, points, labels).properties(height=320)


def front_text(frame: pd.DataFrame, cost: str) -> str:
    """The rows on the Pareto front for `cost`, cheapest first."""
    front = frame[frame[f"pareto_{cost}"]].sort_values(cost)
    names = [f"{r.candidate} · {r.variant}" for r in front.itertuples(index=False)]
    return f"Pareto front ({COSTS[cost]}): {', '.join(names) or 'none'}"
