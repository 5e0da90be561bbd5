"""Fine-tuning lift: LoRA against base for each candidate and suite, with the paired interval of the difference."""

from __future__ import annotations

import altair as alt
import pandas as pd

from harness.store import Store
from harness.store import report_queries as q
from reports.colours import colour_scale
from reports.paired import N_RESAMPLES, SharedResamples, compare, marker, stats_lookup
from reports.scores import PRIMARY, pick_scores

COLUMNS = ["run_id", "candidate", "suite", "score", "base", "lora", "lift", "low", "high", "p_value", "marker"]


def lift_frame(store: Store, run_ids: list[str], choice: str = PRIMARY, candidates: list[str] | None = None,
               n_resamples: int = N_RESAMPLES) -> pd.DataFrame:
    """One row per (run, candidate, suite) that has both variants: lift = LoRA - base, paired 95% interval."""
    chosen = pick_scores(q.scores(store, run_ids), choice) if run_ids else pd.DataFrame()
    if chosen.empty:
        return pd.DataFrame(columns=COLUMNS)
    if candidates is not None:
        chosen = chosen[chosen["candidate"].isin(candidates)]
    on = ["run_id", "candidate", "suite", "metric", "options_json", "score"]
    base = chosen[chosen["variant"] == "base"][[*on, "value"]]
    lora = chosen[chosen["variant"] == "lora"][[*on, "value"]]
    pairs = base.merge(lora, on=on, suffixes=("_base", "_lora"))
    if pairs.empty:
        return pd.DataFrame(columns=COLUMNS)
    lookup = stats_lookup(q.example_stats(store, run_ids, sorted(set(pairs["suite"])), sorted(set(pairs["metric"]))))
    rows, resamples = [], SharedResamples(n_resamples)
    for r in pairs.itertuples(index=False):
        results = compare(lookup, r.metric, r.options_json, (r.run_id, r.candidate, "base", r.suite),
                          (r.run_id, r.candidate, "lora", r.suite), resamples)
        result = results.get(r.score) if results else None
        rows.append({
            "run_id": r.run_id, "candidate": r.candidate, "suite": r.suite, "score": r.score,
            "base": r.value_base, "lora": r.value_lora, "lift": r.value_lora - r.value_base,
            "low": result.low if result else float("nan"), "high": result.high if result else float("nan"),
            "p_value": result.p_value if result else float("nan"), "marker": marker(r.score, result),
        })
    return pd.DataFrame(rows, columns=COLUMNS).sort_values(["run_id", "candidate", "suite"]).reset_index(drop=True)


def lift_chart(lift: pd.DataFrame, colours: dict[str, str]) -> alt.Chart | None:
    """Lift per suite with its paired interval; the zero line marks 'no change'."""
    if lift.empty:
        return None
    data = lift.assign(label=lift["suite"] + " · " + lift["score"])
    scale = colour_scale(colours, data["candidate"])
    base = alt.Chart(data).encode(
        y=alt.Y("label:N", title=None), yOffset="candidate:N",
        color=alt.Color("candidate:N", scale=scale, title="candidate"),
    )
    bars = base.mark_rule(strokeWidth=2).encode(x=alt.X("low:Q", title="LoRA − base (paired 95% interval)"),
                                                x2="high:Q")
    tooltip = ["candidate", "suite", "score", "base", "lora", "lift", "low", "high", "p_value"]
    points = base.mark_point(filled=True, size=70).encode(x="lift:Q", tooltip=tooltip)
    zero = alt.Chart(pd.DataFrame({"x": [0.0]})).mark_rule(strokeDash=[4, 4], color="gray").encode(x="x:Q")
    return alt.layer(bars, points, zero).properties(height=alt.Step(28))
