"""Compare-two page: layout only (reports.compare computes). Model and dataset text is shown as plain text;
the diff is HTML built from escaped text (reports.compare.diff_html)."""

import streamlit as st

from reports import ui
from reports.compare import (
    diff_frame,
    diff_html,
    diff_segments,
    example_table,
    only_disagreements,
    suite_differences,
    suite_scores,
)
from reports.paired import ALPHA
from reports.scores import parse_system, selection_options


def _row(key: str) -> tuple[str, str]:
    candidate, variant = key.split("/")
    return candidate, variant


def render(store) -> None:
    st.title("Compare two")
    top = st.columns([3, 2, 2])
    run_id = ui.pick_runs(store, "cmp_run", multi=False, container=top[0])[0]
    options = selection_options(store, [run_id])
    rows = ["/".join(parse_system(k)[1:]) for k in options["systems"]]
    if len(rows) < 1:
        st.info("This run has no results yet.")
        return
    a = ui.select("A (baseline)", rows, "cmp_a", "a", rows[0], container=top[1])
    b = ui.select("B", rows, "cmp_b", "b", rows[min(1, len(rows) - 1)], container=top[2])
    st.subheader("Per-suite differences (B − A)")
    st.caption(f"[low, high]: paired bootstrap 95% interval of B − A; ▲ / ▼ B significantly better / worse "
               f"(p < {ALPHA} and the interval excludes 0).")
    ui.table(suite_differences(store, run_id, _row(a), _row(b)), "differences", "cmp_diff")
    _examples(store, run_id, a, b, options["suites"])


def _examples(store, run_id: str, a: str, b: str, suites: list[str]) -> None:
    st.subheader("Per example")
    cols = st.columns([2, 2, 2])
    suite = ui.select("Suite", suites, "cmp_suite", "suite", container=cols[0])
    scores = suite_scores(store, run_id, suite) if suite else None
    if scores is None or scores.empty:
        st.info("No per-example scores for this suite yet.")
        return
    labels = list(scores["score"])
    score = ui.select("Per-example score", labels, "cmp_score", "score", container=cols[1])
    pick = scores.iloc[labels.index(score)]
    only = cols[2].toggle("Only disagreements", value=False, key="cmp_only")
    table = example_table(store, run_id, suite, _row(a), _row(b), pick["metric"], pick["options_json"], score)
    shown = only_disagreements(table, only)
    st.caption(f"{len(shown)} of {len(table)} examples; largest |B − A| first.")
    text = {c: st.column_config.TextColumn(c, width="medium") for c in ("output_a", "output_b", "reference", "input")}
    ui.table(shown, f"examples_{suite}", "cmp_examples", column_config=text)
    if shown.empty:
        return
    example = ui.select("Example", list(shown["example_id"]), "cmp_example", "example")
    row = shown[shown["example_id"] == example].iloc[0]
    sides = ((("Input", "input"), ("Reference", "reference")), ((f"A — {a}", "output_a"), (f"B — {b}", "output_b")))
    for pair in sides:
        for column, (title, field) in zip(st.columns(2), pair, strict=True):
            column.markdown(f"**{ui.md_escape(title)}**")
            column.text(row[field] if isinstance(row[field], str) else "")
    st.markdown("**Difference from A to B** (struck through: only in A; highlighted: only in B)")
    segments = diff_segments(row["output_a"], row["output_b"])
    st.html(diff_html(segments))
    with st.expander("The diff as a table"):
        st.dataframe(diff_frame(segments), hide_index=True)


ui.render_page(render)
