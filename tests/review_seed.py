"""Seeding a store for review tests: a run with two candidates' outputs, written through Store.write_item.

No model runs: outputs are made-up strings, per-example statistics come from the real metrics. The
candidate names are unusual words so that a test can search a page's HTML for them.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from harness.metrics import get_metric
from harness.records import ItemResult, MetricStats, Prediction, RunRecord
from harness.review.auth import add_account, set_own_password
from harness.store import Store

RUN_ID = "review-run-0001"
SUITE = "summ"
CANDIDATES = ("zephyrine", "quokkamodel")  # never appear in ordinary text
N_EXAMPLES = 12
_TEMPLATES: dict[tuple, tuple[Path, dict[str, str]]] = {}


def example_texts(i: int) -> tuple[str, str]:
    return (f"Summarise note {i}: the <b>meeting</b> about topic {i} moved to day {i % 5}.",
            f"topic {i} meeting moved to day {i % 5}")


def output_for(candidate: str, variant: str, i: int) -> str:
    if candidate == CANDIDATES[0]:
        return f"the topic {i} meeting moved to day {i % 5}" + (" <script>alert(1)</script>" if i == 0 else "")
    words = ["meeting", "moved"] if i % 3 else ["nothing", "relevant", "here"]
    return " ".join(words) + f" {variant} {i}"


def item_result(candidate: str, variant: str, suite: str = SUITE, n: int = N_EXAMPLES,
                run_id: str = RUN_ID) -> ItemResult:
    preds = []
    for i in range(n):
        text, ref = example_texts(i)
        preds.append(Prediction(f"{suite}-{i}", text, ref, output_for(candidate, variant, i)))
    metric = get_metric("rouge", types=["rouge1", "rougeL"])
    stats = metric.example_stats([p.output for p in preds], [p.reference for p in preds])
    options = json.dumps({"types": ["rouge1", "rougeL"]})
    return ItemResult(run_id, candidate, variant, suite, "done", dataset_fingerprint="fp",
                      predictions=preds, stats=[MetricStats("rouge", options, metric.stat_names,
                                                            np.asarray(stats, dtype=float))])


def seed_store(path: Path, variants: tuple[str, ...] = ("base",)) -> Store:
    store = Store(path)
    store.start_run(RunRecord(RUN_ID, "review-test", "x.yaml", "{}", "hash", 0, None, None, "{}", "test"))
    for candidate in CANDIDATES:
        for variant in variants:
            store.write_item(item_result(candidate, variant))
    store.set_run_status(RUN_ID, "finished")
    return store


def write_outputs(store: Store, suite: str, references: list[str], outputs: dict[str, list[str]],
                  metric: str | None = "exact_match", run_id: str = RUN_ID) -> None:
    """One work item per `candidate:variant` in outputs, with the given outputs for examples suite-0.. ."""
    for label, texts in outputs.items():
        candidate, variant = label.split(":")
        preds = [Prediction(f"{suite}-{i}", f"input {i}", ref, out)
                 for i, (ref, out) in enumerate(zip(references, texts, strict=True))]
        stats = []
        if metric:
            m = get_metric(metric)
            values = m.example_stats([p.output for p in preds], [p.reference for p in preds])
            stats = [MetricStats(metric, "{}", m.stat_names, np.asarray(values, dtype=float))]
        store.write_item(ItemResult(run_id, candidate, variant, suite, "done", predictions=preds, stats=stats))


def own_password(store: Store, name: str, role: str = "reviewer") -> str:
    """An account past its first login: the one-time password replaced by the reviewer's own."""
    add_account(store, name, role)
    password = f"{name}-own-password"
    set_own_password(store, name, password)
    return password


def seeded_copy(path: Path, accounts: tuple[str, ...] = ()) -> tuple[Store, dict[str, str]]:
    """A copy of a seeded store with these reviewer accounts: (store, name -> password).

    The first call per account list seeds a template file (about a second); later calls copy it.
    """
    key = tuple(accounts)
    if key not in _TEMPLATES:
        template = Path(tempfile.mkdtemp(prefix="review_seed_")) / "template.duckdb"
        store = seed_store(template)
        _TEMPLATES[key] = (template, {name: own_password(store, name) for name in accounts})
    template, passwords = _TEMPLATES[key]
    shutil.copy(template, path)
    return Store(path), dict(passwords)
