"""The comparison table: candidate x variant rows, suite x score columns, intervals, best marked."""

from __future__ import annotations

import pandas as pd

LOWER_IS_BETTER = {"ter", "loss", "latency_s", "perplexity", "word_perplexity"}


def higher_is_better(score: str) -> bool:
    return score not in LOWER_IS_BETTER


def comparison_frame(scores: pd.DataFrame, items: pd.DataFrame | None = None) -> pd.DataFrame:
    """Cells 'value [low, high]' with '*' on the best per column; n/a cells for non-applicable items."""
    if scores.empty:
        return pd.DataFrame()
    scores = scores.assign(column=scores["suite"] + " " + scores["score"])
    rows = sorted({(c, v) for c, v in zip(scores["candidate"], scores["variant"], strict=True)})
    if items is not None and not items.empty:
        rows = sorted(set(rows) | {(c, v) for c, v in zip(items["candidate"], items["variant"], strict=True)})
    columns = list(dict.fromkeys(scores.sort_values(["suite", "score"])["column"]))
    table = pd.DataFrame(index=pd.MultiIndex.from_tuples(rows, names=["candidate", "variant"]), columns=columns)
    for column, group in scores.groupby("column"):
        best = group["value"].max() if higher_is_better(group["score"].iloc[0]) else group["value"].min()
        for _, r in group.iterrows():
            mark = "*" if r["value"] == best and len(group) > 1 else ""
            cell = f"{_fmt(r['value'])} [{_fmt(r['low'])}, {_fmt(r['high'])}]{mark}"
            table.loc[(r["candidate"], r["variant"]), column] = cell
    return table.fillna("n/a")


def _fmt(value: float) -> str:
    return f"{value:.1f}" if abs(value) >= 1.5 else f"{value:.3f}"


def render_text(table: pd.DataFrame) -> str:
    """Plain fixed-width text (what `harness run` and `harness show` print)."""
    if table.empty:
        return "(no scores yet)"
    flat = table.reset_index()
    headers = list(flat.columns)
    cells = [[str(v) for v in row] for row in flat.itertuples(index=False)]
    widths = [max(len(str(h)), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = lambda values: "  ".join(str(v).ljust(w) for v, w in zip(values, widths, strict=True))  # noqa: E731
    out = [line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells]
    return "\n".join(out) + "\n* best in column; [low, high] = 95% bootstrap interval"
