"""Gate history page: layout only (reports.gates reads the stored decisions)."""

import streamlit as st

from reports import ui
from reports.gates import decision_checks, decisions, gate_history_frame


def render(store) -> None:
    st.title("Gate history")
    history = gate_history_frame(store)
    if history.empty:
        st.info("No gate has run against this store yet. `harness gate ...` in CI records each verdict here.")
        return
    ui.table(decisions(history), "gate_history", "gates")
    if "id" not in history.columns:
        return
    decision = ui.select("Decision", list(history["id"]), "gates_decision", "decision")
    checks = decision_checks(history, decision)
    if not checks.empty:
        st.subheader("Checks")
        ui.table(checks, f"gate_checks_{decision}", "gates_checks")


ui.render_page(render)
