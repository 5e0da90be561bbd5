"""The comparison table: experiment order, one precision per column, split per suite, pending vs n/a."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from harness.tables import FOOTER, comparison_frame, decimals, render_text


def _score(candidate, variant, suite, score, value, low, high, metric=None):
    return {"candidate": candidate, "variant": variant, "suite": suite, "metric": metric or score,
            "options_json": "{}", "score": score, "value": value, "low": low, "high": high}


def _frame():
    # written in experiment order: suite zeta before alpha, bleu before chrf (not alphabetical)
    rows = [
        _score("m1", "base", "zeta", "bleu", 2.6, 1.049, 4.3),
        _score("m1", "base", "zeta", "chrf", 30.25, 28.0, 33.0),
        _score("m1", "base", "alpha", "accuracy", 0.81234, 0.7, 0.9),
        _score("m2", "base", "zeta", "bleu", 3.1, 2.0, 4.0),
        _score("m2", "base", "zeta", "chrf", 31.0, 29.0, 34.0),
    ]
    items = pd.DataFrame([
        {"candidate": "m1", "variant": "base", "suite": "zeta", "status": "done"},
        {"candidate": "m1", "variant": "base", "suite": "alpha", "status": "done"},
        {"candidate": "m2", "variant": "base", "suite": "zeta", "status": "done"},
        {"candidate": "m2", "variant": "base", "suite": "alpha", "status": "not_applicable"},
        {"candidate": "m1", "variant": "lora", "suite": "zeta", "status": "failed"},
    ])
    return pd.DataFrame(rows), items


def test_columns_in_the_order_written_and_rows_base_first():
    scores, items = _frame()
    table = comparison_frame(scores, items)
    assert list(table.columns) == ["zeta bleu", "zeta chrf", "alpha accuracy"]
    assert list(table.index) == [("m1", "base"), ("m1", "lora"), ("m2", "base")]
    # an explicit experiment order wins over the order written; a `position` column over the frame's order
    assert list(comparison_frame(scores, items, suite_order=["alpha", "zeta"]).columns)[0] == "alpha accuracy"
    shuffled = scores.iloc[::-1].assign(position=list(range(len(scores)))[::-1])
    assert list(comparison_frame(shuffled, items).columns) == ["zeta bleu", "zeta chrf", "alpha accuracy"]


def test_one_precision_per_column():
    scores, items = _frame()
    table = comparison_frame(scores, items)
    assert table.loc[("m1", "base"), "zeta bleu"] == "2.6 [1.0, 4.3]"  # not "2.6 [1.049, 4.3]"
    assert table.loc[("m2", "base"), "zeta bleu"] == "3.1 [2.0, 4.0]*"
    assert table.loc[("m1", "base"), "alpha accuracy"] == "0.812 [0.700, 0.900]"
    for column in table.columns:
        places = {len(n.split(".")[1]) for cell in table[column] for n in re.findall(r"\d+\.\d+", str(cell))}
        assert len(places) <= 1, (column, places)


@pytest.mark.parametrize("values, places", [([0.5, 0.99, 1.0], 3), ([0.5, 1.6], 1), ([-2.0, 0.1], 1)])
def test_decimals_rule(values, places):
    assert decimals(pd.Series(values)) == places


def test_pending_failed_and_not_applicable_are_distinct():
    scores, items = _frame()
    table = comparison_frame(scores, items)
    assert table.loc[("m2", "base"), "alpha accuracy"] == "n/a"
    assert table.loc[("m1", "lora"), "zeta bleu"] == "failed"
    assert table.loc[("m1", "lora"), "alpha accuracy"] == "pending"  # no item yet
    assert "pending: not run yet" in FOOTER and "n/a: does not apply" in FOOTER


def test_split_per_suite_when_wider_than_the_terminal():
    scores, items = _frame()
    table = comparison_frame(scores, items)
    wide = render_text(table, width=500)
    assert wide.count("candidate") == 1
    narrow = render_text(table, width=60)
    blocks = narrow.split("\n\n")
    assert len(blocks) == 2 and "zeta bleu" in blocks[0] and "alpha" not in blocks[0]
    assert "alpha accuracy" in blocks[1] and "zeta" not in blocks[1].split("\n")[0]
    assert max(len(line) for line in wide.splitlines()[:-1]) > 60
