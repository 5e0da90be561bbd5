"""Training page: layout only (reports.training computes)."""

import streamlit as st

from reports import ui
from reports.scores import selection_options
from reports.training import loss_chart, loss_frame, per_candidate, throughput_chart, training_summary


def render(store) -> None:
    st.title("Training")
    top = st.columns([3, 3, 3])
    run_ids = ui.pick_runs(store, "tr_runs", container=top[0])
    options = selection_options(store, run_ids)
    candidates = ui.multiselect("Candidates", options["candidates"], "tr_candidates", "candidate",
                                options["candidates"], container=top[1])
    suites = ui.multiselect("Suites", options["suites"], "tr_suites", "suite", options["suites"], container=top[2])
    summary = training_summary(store, run_ids)
    summary = summary[summary["candidate"].isin(candidates) & summary["suite"].isin(suites)]
    if summary.empty:
        st.info("No LoRA fine-tunes in these runs yet (runs with only the base variant train nothing).")
        return
    colours = ui.colours(store)
    st.subheader("Loss curves")
    st.caption("Solid: training loss; dashed: validation loss.")
    log = loss_frame(store, run_ids, candidates, suites)
    chart = loss_chart(log, colours)
    if chart is not None:
        st.altair_chart(chart)
    formats = {
        "trainable_pct": st.column_config.NumberColumn("trainable %", format="%.3f"),
        "tokens_per_s": st.column_config.NumberColumn("tokens/s", format="%.1f"),
        "wall_s": st.column_config.NumberColumn("wall time (s)", format="%.1f"),
        "peak_memory_mb": st.column_config.NumberColumn("peak memory (MB)", format="%.0f"),
    }
    st.subheader("Per candidate")
    ui.table(per_candidate(summary), "training_per_candidate", "tr_candidates", column_config=formats)
    st.subheader("Each fine-tune")
    ui.table(summary, "training", "tr_summary", column_config=formats)
    st.altair_chart(throughput_chart(summary, colours))
    with st.expander("Every logged loss"):
        ui.table(log, "training_log", "tr_log")


ui.render_page(render)
