"""Cost and quality page: layout only (reports.cost computes)."""

import streamlit as st

from reports import ui
from reports.cost import COSTS, cost_chart, cost_quality_frame, front_text
from reports.scores import selection_options


def render(store) -> None:
    st.title("Cost and quality")
    top = st.columns([3, 2, 2])
    run_ids = ui.pick_runs(store, "cost_runs", container=top[0])
    options = selection_options(store, run_ids)
    suite = ui.select("Suite", options["suites"], "cost_suite", "suite", container=top[1])
    choice = ui.select("Score", options["choices"], "cost_score", "score", container=top[2])
    frame = cost_quality_frame(store, run_ids, suite, choice) if suite else None
    if frame is None or frame.empty:
        st.info("No scores for this suite and score in these runs yet.")
        return
    st.caption("Each point is a candidate and variant with its 95% interval; the dashed step line is the Pareto "
               "front: rows that no other row beats on both quality and that cost. Base rows train nothing.")
    colours = ui.colours(store)
    for tab, cost in zip(st.tabs([COSTS[c] for c in COSTS]), COSTS, strict=True):
        with tab:
            chart = cost_chart(frame, cost, colours)
            if chart is not None:
                st.altair_chart(chart)
            st.text(front_text(frame, cost))
    ui.table(frame, f"cost_quality_{suite}", "cost")


ui.render_page(render)
