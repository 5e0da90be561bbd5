"""Judges page: layout only (reports.judges computes every frame). Text is shown in dataframes, inert."""

import streamlit as st

from reports import ui
from reports.judges import agreement_frame, confusion_frame, disagreements, latest_records, summary_frame


def render(store) -> None:
    st.title("Judges")
    records = latest_records(store)
    if not records:
        st.info("No judge is calibrated yet. `harness judge calibrate --queue Q --judge REF` measures a judge "
                "against a graded review queue; a gate rule on a judge metric needs it.")
        return
    ui.table(summary_frame(records), "judges", "judges_summary")
    chosen = ui.select("Judge × rubric", list(records), "judges_pair", "judge")
    _, record = records[chosen]
    st.subheader("Agreement with people, beside the people's own (the ceiling)")
    ui.table(agreement_frame(record), "judge_agreement", "judges_agreement")
    st.subheader("Confusion (rows: people's consensus, columns: judge)")
    st.dataframe(confusion_frame(record), hide_index=True)
    st.subheader("Where judge and people disagree most")
    ui.table(disagreements(store, record), "judge_disagreements", "judges_disagreements")


ui.render_page(render)
