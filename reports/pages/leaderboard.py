"""Leaderboard page: layout only (reports.leaderboard computes)."""

import streamlit as st

from reports import ui
from reports.datachecks import leakage_warning
from reports.leaderboard import leaderboard_chart, leaderboard_frame, leaderboard_table
from reports.paired import ALPHA
from reports.scores import selection_options, system_label

LEGEND = (f"Cells: value [95% bootstrap interval]. ★ best in column. ▲ / ▼ significantly better / worse than "
          f"the reference row (paired bootstrap test on the same examples: p < {ALPHA} and the 95% interval of "
          "the difference excludes 0). n/a: the model cannot do that suite.")


def render(store) -> None:
    st.title("Leaderboard")
    top = st.columns([3, 2, 3])
    run_ids = ui.pick_runs(store, "lb_runs", container=top[0])
    options = selection_options(store, run_ids)
    choice = ui.select("Score", options["choices"], "lb_score", "score", container=top[1])
    multi = len(run_ids) > 1
    reference = ui.select("Reference row (for ▲ / ▼)", ["(none)", *options["systems"]], "lb_ref", "ref",
                          default=(options["systems"] or ["(none)"])[0], container=top[2],
                          format_func=lambda k: k if k == "(none)" else system_label(k, multi))
    filters = st.columns([3, 2, 3, 1])
    candidates = ui.multiselect("Candidates", options["candidates"], "lb_candidates", "candidate",
                                options["candidates"], container=filters[0])
    variants = ui.multiselect("Variants", options["variants"], "lb_variants", "variant", options["variants"],
                              container=filters[1])
    long = leaderboard_frame(store, run_ids, choice, None if reference == "(none)" else reference,
                             candidates, variants)
    columns = list(leaderboard_table(long).columns)
    suite_columns = [c for c in columns if c not in ("run_id", "candidate", "variant")]
    sort_by = ui.select("Sort by", ["(row order)", *suite_columns], "lb_sort", "sort", container=filters[2])
    descending = filters[3].toggle("Best first", value=True, key="lb_desc")
    wide = leaderboard_table(long, None if sort_by == "(row order)" else sort_by, descending)
    if wide.empty:
        st.info("No scores yet for these runs; they appear as work items finish.")
        return
    st.caption(LEGEND)
    if warning := leakage_warning(store, run_ids):
        st.warning(ui.md_escape(warning), icon="⚠️")
    ui.table(wide, "leaderboard", "lb")
    chart = leaderboard_chart(long, ui.colours(store))
    if chart is not None:
        st.altair_chart(chart)
    with st.expander("Every cell with its paired difference against the reference"):
        ui.table(long, "leaderboard_long", "lb_long")


ui.render_page(render)
