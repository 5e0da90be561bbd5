"""Runs page: layout only (reports.runs computes)."""

import streamlit as st

from reports import ui
from reports.datachecks import counts_text, findings_frame, leakage_warning
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
    data_checks(store, run_id)
    left, right = st.columns(2)
    with left:
        st.subheader("Config")
        st.json(details["config"], expanded=1)
    with right:
        st.subheader("Package versions")
        st.json(details["versions"], expanded=1)


def data_checks(store, run_id: str) -> None:
    """The run's data check findings: a table, then each finding's rows (FILE:LINE) in an expander."""
    st.subheader("Data checks")
    findings = findings_frame(store, run_id)
    if findings.empty:
        st.success("Data checks: no findings recorded for this run.")
        return
    warning = leakage_warning(store, [run_id])
    if warning:
        st.warning(ui.md_escape(warning), icon="⚠️")
    st.caption(counts_text(findings))
    ui.table(findings.drop(columns=["rows"]), f"data_checks_{run_id}", "runs_dc")
    for n, finding in enumerate(findings.itertuples(index=False), start=1):
        with st.expander(ui.md_escape(f"{n}. {finding.severity} · {finding.suite} · {finding.check} "
                                      f"({finding.n_rows} rows)")):
            st.text(finding.message)
            st.code("\n".join(finding.rows) or "(no rows named)", language=None)


ui.render_page(render)
