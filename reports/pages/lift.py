"""Fine-tuning lift page: layout only (reports.lift computes)."""

import streamlit as st

from reports import ui
from reports.datachecks import leakage_warning
from reports.lift import lift_chart, lift_frame
from reports.paired import ALPHA
from reports.scores import selection_options


def render(store) -> None:
    st.title("Fine-tuning lift")
    top = st.columns([3, 2, 3])
    run_ids = ui.pick_runs(store, "lift_runs", container=top[0])
    options = selection_options(store, run_ids)
    choice = ui.select("Score", options["choices"], "lift_score", "score", container=top[1])
    candidates = ui.multiselect("Candidates", options["candidates"], "lift_candidates", "candidate",
                                options["candidates"], container=top[2])
    lift = lift_frame(store, run_ids, choice, candidates)
    if lift.empty:
        st.info("No candidate has both a base and a LoRA score on a suite in these runs yet.")
        return
    st.caption(f"lift = LoRA − base on the same examples; [low, high] is the paired bootstrap 95% interval of the "
               f"difference; ▲ / ▼ significant gain / loss (p < {ALPHA} and the interval excludes 0).")
    if warning := leakage_warning(store, run_ids):
        st.warning(ui.md_escape(warning), icon="⚠️")
    ui.table(lift, "lift", "lift")
    st.altair_chart(lift_chart(lift, ui.colours(store)))


ui.render_page(render)
