"""Result sets built straight from per-example statistics, for the gate tests (no model, no store)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harness.gate.results_file import MetricEntry, ResultSet
from harness.metrics import get_metric

SST2 = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2_dev.jsonl"
N_SST2 = 872


def sst2_labels() -> list[str]:
    """SST-2 dev labels where the shared data is present, else 872 seeded labels of the same balance."""
    if SST2.is_file():
        return [str(json.loads(line)["label"]) for line in SST2.read_text().splitlines() if line.strip()]
    return [str(x) for x in np.random.default_rng(872).integers(0, 2, N_SST2)]


def flip(labels: list[str], wrong: np.ndarray) -> list[str]:
    """Predictions equal to the labels except where `wrong` is true (binary labels)."""
    return [("1" if y == "0" else "0") if w else y for y, w in zip(labels, wrong, strict=True)]


def accuracy_set(name: str, labels: list[str], wrong: np.ndarray, suite: str = "sst2", fingerprint: str = "fp-sst2",
                 ids: list[str] | None = None) -> ResultSet:
    """A result set with one suite scored by accuracy, from predictions that are wrong where `wrong` is."""
    metric = get_metric("accuracy")
    stats = metric.example_stats(flip(labels, wrong), labels, labels=["0", "1"])
    ids = ids or [f"{suite}-{i}" for i in range(len(labels))]
    entry = MetricEntry(suite, "accuracy", "{}", tuple(metric.stat_names), tuple(ids), stats)
    return ResultSet(source=name, run_id=f"run-{name}", candidate="model", variant="base",
                     fingerprints={suite: fingerprint}, entries={(suite, "accuracy", "{}"): entry})


def merge(*sets: ResultSet, name: str) -> ResultSet:
    """One result set holding the entries of several (each suite keeps its fingerprint)."""
    entries, fingerprints = {}, {}
    for s in sets:
        entries.update(s.entries)
        fingerprints.update(s.fingerprints)
    return ResultSet(source=name, run_id=f"run-{name}", candidate="model", variant="base",
                     fingerprints=fingerprints, entries=entries)


def planted(n: int, base_wrong: int, right_to_wrong: int, wrong_to_right: int, seed: int = 0):
    """(baseline wrong mask, candidate wrong mask) with exactly the given discordant counts."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    base = np.zeros(n, dtype=bool)
    base[order[:base_wrong]] = True
    cand = base.copy()
    cand[order[:wrong_to_right]] = False  # baseline wrong, candidate right
    cand[order[base_wrong:base_wrong + right_to_wrong]] = True  # baseline right, candidate wrong
    return base, cand
