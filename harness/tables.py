"""The comparison table: candidate x variant rows, suite x score columns, intervals, best marked.

Suites and their scores come in experiment order (`suite_order`, else the order the run wrote them: the
`position` column where the frame has one, else the frame's own order); every cell of a column uses one
precision (1 decimal on a 0-100 scale, else 3); a cell is `n/a` where the item does not apply (an encoder
on a generation suite), `failed` where it failed, and `pending` where it has not run yet. Below the table,
`item_notes` lists the items whose numbers need a second look: inputs cut to the suite's `truncate`
length, generations with a near tie (an argmax that another kernel or batch shape may flip), and
generations the suite's `extract` pattern missed.
"""

from __future__ import annotations

import shutil
from typing import Any

import pandas as pd

from harness.metrics.base import LOWER_IS_BETTER
from harness.metrics.registry import metric_higher_is_better

__all__ = ["LOWER_IS_BETTER", "comparison_frame", "higher_is_better", "item_notes", "render_notes", "render_text",
           "rows_higher_is_better"]
FOOTER = "* best in column; [low, high] = 95% bootstrap interval; pending: not run yet; n/a: does not apply"
_STATUS_CELL = {"not_applicable": "n/a", "failed": "failed"}


def higher_is_better(score: str, metric: str | None = None, options_json: str | None = None) -> bool:
    """The score's direction, as its metric declares it (`Metric.higher_is_better`); by name without a metric."""
    return metric_higher_is_better(metric, score, options_json)


def rows_higher_is_better(rows: pd.DataFrame) -> bool:
    """The direction of a column of score rows (score, and metric/options_json where the frame has them)."""
    first: Any = rows.iloc[0]
    return higher_is_better(str(first["score"]), first.get("metric"), first.get("options_json"))


def _ordered(scores: pd.DataFrame, suite_order: list[str] | None) -> pd.DataFrame:
    scores = scores.reset_index(drop=True)
    scores = scores.assign(_at=scores["position"] if "position" in scores else scores.index)
    scores = scores.sort_values("_at", kind="stable")
    appearance = list(dict.fromkeys(scores["suite"]))
    given = [s for s in (suite_order or []) if s in appearance]
    order = given + [s for s in appearance if s not in given]
    rank = {s: i for i, s in enumerate(order)}
    return scores.assign(_suite_rank=scores["suite"].map(rank)).sort_values(["_suite_rank", "_at"], kind="stable")


def _row_keys(scores: pd.DataFrame, items: pd.DataFrame | None) -> list[tuple[str, str]]:
    frames = [scores] + ([items] if items is not None and not items.empty else [])
    pairs = [(c, v) for f in frames for c, v in zip(f["candidate"], f["variant"], strict=True)]
    candidates = list(dict.fromkeys(c for c, _ in pairs))
    seen = list(dict.fromkeys(v for _, v in pairs))
    variants = sorted(seen, key=lambda v: (v != "base", seen.index(v)))  # base before its adapters
    present = set(pairs)
    return [(c, v) for c in candidates for v in variants if (c, v) in present]


def decimals(values: pd.Series) -> int:
    """One precision per column: 1 decimal for a 0-100 scale (any value beyond 1.5), else 3."""
    return 1 if float(values.abs().max()) >= 1.5 else 3


def comparison_frame(scores: pd.DataFrame, items: pd.DataFrame | None = None,
                     suite_order: list[str] | None = None) -> pd.DataFrame:
    """Cells 'value [low, high]' with '*' on the best per column; n/a, failed or pending where there is no score."""
    if scores.empty:
        return pd.DataFrame()
    scores = _ordered(scores, suite_order)
    scores = scores.assign(column=scores["suite"] + " " + scores["score"])
    rows = _row_keys(scores, items)
    columns = list(dict.fromkeys(scores["column"]))
    table = pd.DataFrame(index=pd.MultiIndex.from_tuples(rows, names=["candidate", "variant"]), columns=columns,
                         dtype=object)
    suite_of = dict(zip(scores["column"], scores["suite"], strict=False))
    for column, group in scores.groupby("column", sort=False):
        best = group["value"].max() if rows_higher_is_better(group) else group["value"].min()
        places = decimals(pd.concat([group["value"], group["low"], group["high"]]))
        for _, r in group.iterrows():
            mark = "*" if r["value"] == best and len(group) > 1 else ""
            cell = f"{r['value']:.{places}f} [{r['low']:.{places}f}, {r['high']:.{places}f}]{mark}"
            table.loc[(r["candidate"], r["variant"]), column] = cell
    status = _statuses(items)
    for column in columns:
        for key in rows:
            if pd.isna(table.loc[key, column]):
                table.loc[key, column] = _STATUS_CELL.get(status.get((*key, suite_of[column]), ""), "pending")
    return table


def _statuses(items: pd.DataFrame | None) -> dict[tuple[str, str, str], str]:
    if items is None or items.empty or "status" not in items:
        return {}
    return {(c, v, s): st for c, v, s, st in zip(items["candidate"], items["variant"], items["suite"],
                                                 items["status"], strict=True)}


def _blocks(table: pd.DataFrame, width: int) -> list[pd.DataFrame]:
    """The whole table, or one table per suite when the whole is wider than `width`."""
    if len(_lines(table)[0]) <= width:
        return [table]
    suites = list(dict.fromkeys(c.split(" ", 1)[0] for c in table.columns))
    return [table[[c for c in table.columns if c.split(" ", 1)[0] == s]] for s in suites]


def _lines(table: pd.DataFrame) -> list[str]:
    flat = table.reset_index()
    headers = [str(h) for h in flat.columns]
    cells = [[str(v) for v in row] for row in flat.itertuples(index=False)]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()  # noqa: E731
    return [line(headers), line(["-" * w for w in widths])] + [line(r) for r in cells]


def render_text(table: pd.DataFrame, width: int | None = None) -> str:
    """Plain fixed-width text (what `harness run` and `harness show` print), split per suite when wider than
    `width` (the terminal's, by default)."""
    if table.empty:
        return "(no scores yet)"
    width = width or shutil.get_terminal_size((120, 24)).columns
    blocks = ["\n".join(_lines(block)) for block in _blocks(table, width)]
    return "\n\n".join(blocks) + "\n" + FOOTER


# (items column, what its count is of, what it means)
NOTES = [("n_truncated", "inputs cut to the suite's truncate length", "docs/suites.md, `truncate`"),
         ("n_near_ties", "generations with a near tie",
          "top two logits within the tie margin: the text may differ from plain greedy decoding's"),
         ("n_extract_missed", "generations the extract pattern missed", "the raw text is kept")]


def item_notes(items: pd.DataFrame | None) -> list[str]:
    """One line per item and count that is not zero: 'candidate/variant/suite: 3 of 40 inputs cut ... (why)'."""
    if items is None or items.empty:
        return []
    lines = []
    for _, item in items.iterrows():
        where, total = f"{item['candidate']}/{item['variant']}/{item['suite']}", item.get("n_examples")
        for column, what, why in NOTES:
            count = item.get(column)
            if count is None or pd.isna(count) or int(count) == 0:
                continue
            of = f" of {int(total)}" if total is not None and not pd.isna(total) else ""
            lines.append(f"{where}: {int(count)}{of} {what} ({why})")
    return lines


def render_notes(items: pd.DataFrame | None) -> str:
    """The notes block printed under the table ('' when there is nothing to note)."""
    lines = item_notes(items)
    return "notes:\n" + "\n".join(f"  {line}" for line in lines) if lines else ""
