"""Training: loss curves (train and validation) and what each LoRA fine-tune cost."""

from __future__ import annotations

import altair as alt
import pandas as pd

from harness.store import Store
from harness.store import report_queries as q
from reports.colours import colour_scale

SUMMARY_COLUMNS = ["candidate", "suite", "steps", "trainable_params", "total_params", "trainable_pct", "tokens_per_s",
                   "wall_s", "peak_memory_mb", "final_train_loss", "final_val_loss", "train_tokens", "adapter_hash",
                   "adapter_path", "run_id"]


def loss_frame(store: Store, run_ids: list[str], candidates: list[str] | None = None,
               suites: list[str] | None = None) -> pd.DataFrame:
    """Every logged loss (step, split train|validation), optionally for some candidates and suites."""
    log = q.training_log(store, run_ids) if run_ids else pd.DataFrame()
    if log.empty:
        return pd.DataFrame(columns=["run_id", "candidate", "suite", "step", "split", "loss", "elapsed_s"])
    if candidates is not None:
        log = log[log["candidate"].isin(candidates)]
    if suites is not None:
        log = log[log["suite"].isin(suites)]
    return log.reset_index(drop=True)


def training_summary(store: Store, run_ids: list[str]) -> pd.DataFrame:
    """One row per adapter: parameters (trainable share), tokens per second, wall time, peak memory, losses."""
    adapters = q.adapters(store, run_ids) if run_ids else pd.DataFrame()
    if adapters.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    share = 100.0 * adapters["trainable_params"] / adapters["total_params"].where(adapters["total_params"] > 0)
    return adapters.assign(trainable_pct=share)[SUMMARY_COLUMNS].reset_index(drop=True)


def per_candidate(summary: pd.DataFrame) -> pd.DataFrame:
    """Each candidate's fine-tunes together: parameters, mean tokens per second, total wall time, peak memory."""
    if summary.empty:
        return pd.DataFrame()
    grouped = summary.groupby(["run_id", "candidate"], as_index=False).agg(
        adapters=("suite", "count"), trainable_params=("trainable_params", "max"), total_params=("total_params", "max"),
        tokens_per_s=("tokens_per_s", "mean"), wall_s=("wall_s", "sum"), peak_memory_mb=("peak_memory_mb", "max"))
    grouped["trainable_pct"] = 100.0 * grouped["trainable_params"] / grouped["total_params"]
    return grouped[["candidate", "adapters", "trainable_params", "total_params", "trainable_pct", "tokens_per_s",
                    "wall_s", "peak_memory_mb", "run_id"]]


def loss_chart(log: pd.DataFrame, colours: dict[str, str]) -> alt.Chart | None:
    """Loss against step: a line per candidate, solid for train and dashed for validation, a panel per suite."""
    if log.empty:
        return None
    data = log.assign(series=log["candidate"] + " · " + log["split"])
    if data["run_id"].nunique() > 1:
        data["series"] = data["series"] + " (" + data["run_id"] + ")"
    line = alt.Chart().mark_line(point=True).encode(
        x=alt.X("step:Q", title="step"), y=alt.Y("loss:Q", title="loss", scale=alt.Scale(zero=False)),
        color=alt.Color("candidate:N", scale=colour_scale(colours, data["candidate"]), title="candidate"),
        strokeDash=alt.StrokeDash("split:N", title="split"), detail="series:N",
        tooltip=["run_id", "candidate", "suite", "split", "step", "loss", "elapsed_s"],
    ).properties(width=320, height=220)
    return alt.layer(line, data=data).facet(facet=alt.Facet("suite:N", title=None), columns=2)


def throughput_chart(summary: pd.DataFrame, colours: dict[str, str]) -> alt.Chart | None:
    """Tokens per second of each fine-tune, coloured by candidate."""
    if summary.empty:
        return None
    return alt.Chart(summary).mark_bar().encode(
        x=alt.X("tokens_per_s:Q", title="training tokens per second"), y=alt.Y("suite:N", title=None),
        yOffset="candidate:N",
        color=alt.Color("candidate:N", scale=colour_scale(colours, summary["candidate"]), title="candidate"),
        tooltip=["run_id", "candidate", "suite", "tokens_per_s", "wall_s", "peak_memory_mb"],
    ).properties(height=alt.Step(18))
