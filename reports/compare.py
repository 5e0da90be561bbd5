"""Comparing two rows (candidate, variant) of one run: per-suite paired differences, per-example outputs
side by side, and a safe word-level diff of two outputs."""

from __future__ import annotations

import difflib
import html
import re

import numpy as np
import pandas as pd

from harness.store import Store
from harness.store import report_queries as q
from reports.paired import N_RESAMPLES, SharedResamples, compare, marker, stats_lookup
from reports.scores import metric_for

DIFF_COLUMNS = ["suite", "metric", "score", "value_a", "value_b", "difference", "low", "high", "p_value", "marker"]
EXAMPLE_COLUMNS = ["example_id", "difference", "score_a", "score_b", "output_a", "output_b", "reference", "input",
                   "disagree"]
_TOKENS = re.compile(r"\s+|\w+|[^\w\s]")


def suite_differences(store: Store, run_id: str, a: tuple[str, str], b: tuple[str, str],
                      n_resamples: int = N_RESAMPLES) -> pd.DataFrame:
    """Every score of every suite both rows have: b − a with its paired 95% interval and p-value."""
    scores = q.scores(store, [run_id])
    keys = ["suite", "metric", "options_json", "score"]
    side = {name: scores[(scores["candidate"] == c) & (scores["variant"] == v)] for name, (c, v) in
            {"a": a, "b": b}.items()}
    both = side["a"][[*keys, "value", "position"]].merge(side["b"][[*keys, "value"]], on=keys, suffixes=("_a", "_b"))
    if both.empty:
        return pd.DataFrame(columns=DIFF_COLUMNS)
    lookup = stats_lookup(q.example_stats(store, [run_id], sorted(set(both["suite"])), sorted(set(both["metric"]))))
    rows, resamples = [], SharedResamples(n_resamples)
    for r in both.sort_values(["suite", "position"]).itertuples(index=False):
        results = compare(lookup, r.metric, r.options_json, (run_id, *a, r.suite), (run_id, *b, r.suite), resamples)
        result = results.get(r.score) if results else None
        rows.append({"suite": r.suite, "metric": r.metric, "score": r.score, "value_a": r.value_a,
                     "value_b": r.value_b, "difference": r.value_b - r.value_a,
                     "low": result.low if result else np.nan, "high": result.high if result else np.nan,
                     "p_value": result.p_value if result else np.nan, "marker": marker(r.score, result)})
    return pd.DataFrame(rows, columns=DIFF_COLUMNS)


def suite_scores(store: Store, run_id: str, suite: str) -> pd.DataFrame:
    """The (metric, options_json, score) a suite reports, in the suite's order."""
    scores = q.scores(store, [run_id])
    scores = scores[scores["suite"] == suite].sort_values("position")
    return scores[["metric", "options_json", "score"]].drop_duplicates().reset_index(drop=True)


def example_table(store: Store, run_id: str, suite: str, a: tuple[str, str], b: tuple[str, str],
                  metric: str, options_json: str, score: str) -> pd.DataFrame:
    """Both rows' outputs per example with per-example scores; largest |difference| first."""
    preds_a = q.predictions(store, run_id, suite, *a)
    preds_b = q.predictions(store, run_id, suite, *b)
    if preds_a.empty or preds_b.empty:
        return pd.DataFrame(columns=EXAMPLE_COLUMNS)  # raw outputs are added only for suites that extract
    table = preds_a[["example_id", "input", "reference", "output", "raw_output"]].merge(
        preds_b[["example_id", "output", "raw_output"]], on="example_id", suffixes=("_a", "_b"))
    lookup = stats_lookup(q.example_stats(store, [run_id], [suite], [metric]))
    for side, (candidate, variant) in (("a", a), ("b", b)):
        table[f"score_{side}"] = table["example_id"].map(
            _example_values(lookup, (run_id, candidate, variant, suite, metric, options_json), score))
    table["difference"] = table["score_b"] - table["score_a"]
    table["disagree"] = table["output_a"].fillna("") != table["output_b"].fillna("")
    order = table.assign(_size=table["difference"].abs().fillna(-1)).sort_values(
        ["_size", "example_id"], ascending=[False, True]).index
    columns = list(EXAMPLE_COLUMNS)
    if table[["raw_output_a", "raw_output_b"]].notna().any().any():  # the suite extracts: show what was generated
        columns[columns.index("output_b") + 1:columns.index("output_b") + 1] = ["raw_output_a", "raw_output_b"]
    return table.loc[order, columns].reset_index(drop=True)


def _example_values(lookup, key: tuple, score: str) -> dict[str, float]:
    found = lookup.get(key)
    if found is None:
        return {}
    ids, stats = found
    values = metric_for(key[4], key[5]).example_values(stats).get(score)
    return {} if values is None else dict(zip(ids, np.asarray(values, dtype=float), strict=True))


def only_disagreements(table: pd.DataFrame, on: bool) -> pd.DataFrame:
    """Rows where the two outputs differ (or their scores do), when `on`."""
    if not on or table.empty:
        return table
    scores_differ = table["difference"].fillna(0) != 0
    return table[table["disagree"] | scores_differ].reset_index(drop=True)


def diff_segments(a: str | None, b: str | None) -> list[tuple[str, str]]:
    """Word-level diff: (kind, text) with kind 'same', 'removed' (only in a) or 'added' (only in b)."""
    tokens_a, tokens_b = _TOKENS.findall(a or ""), _TOKENS.findall(b or "")
    out: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(None, tokens_a, tokens_b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out.append(("same", "".join(tokens_a[i1:i2])))
            continue
        if i2 > i1:
            out.append(("removed", "".join(tokens_a[i1:i2])))
        if j2 > j1:
            out.append(("added", "".join(tokens_b[j1:j2])))
    return out


_STYLE = {"same": "", "removed": "background:#ffd7d5;text-decoration:line-through",
          "added": "background:#ccf0d4"}


def diff_html(segments: list[tuple[str, str]]) -> str:
    """The diff as HTML in which every piece of text is escaped: model text never becomes markup."""
    spans = []
    for kind, text in segments:
        escaped = html.escape(text, quote=True)
        spans.append(f'<span style="{_STYLE[kind]}">{escaped}</span>' if _STYLE[kind] else escaped)
    body = "".join(spans)
    return f'<div style="white-space:pre-wrap;font-family:monospace;line-height:1.5">{body}</div>'


def diff_frame(segments: list[tuple[str, str]]) -> pd.DataFrame:
    """The same diff as a table of segments (shown as plain text)."""
    return pd.DataFrame(segments, columns=["change", "text"])
