"""Runs page: layout only (reports.runs computes)."""

import streamlit as st

from reports import ui
from reports.runs import run_details, run_history


def render(store) -> None:
    st.title("Runs")
    history = run_history(store)
    if history.empty:
        ui.pick_runs(store, "runs_run", multi=False)  # shows how to start a run, then stops
        return
    st.subheader("History")
    ui.table(history, "runs", "runs_history")
    run_id = ui.select("Run", list(history["run_id"]), "runs_run", "run")
    details = run_details(store, run_id)
    st.subheader("Reproduce")
    st.code(details["reproduce"], language="bash")
    st.subheader("Open this run")
    ui.table(details["links"], f"links_{run_id}", "runs_links", column_config={
        "link": st.column_config.LinkColumn("link", display_text=r"open"),
    })
    st.subheader("Fingerprints")
    ui.table(details["fingerprints"], f"fingerprints_{run_id}", "runs_fp")
    st.subheader("Work items")
    ui.table(details["items"], f"items_{run_id}", "runs_items")
    left, right = st.columns(2)
    with left:
        st.subheader("Config")
        st.json(details["config"], expanded=1)
    with right:
        st.subheader("Package versions")
        st.json(details["versions"], expanded=1)


ui.render_page(render)
