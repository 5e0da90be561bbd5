"""The data checks of one suite, or of every suite of an experiment (with the LoRA training data of the run).

Each check gives a warning; the suite's `checks.fail_*` threshold (a share of the split's rows) turns it
into an error once exceeded. Every row is named by its place in its own file (`FILE:LINE`).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from harness.datacheck.text import Row, near_pairs
from harness.suites import SPLITS, Suite, check_template, label_index, load_suite

CheckKind = Literal["overlap", "label_share", "empty", "long", "duplicate"]
Severity = Literal["warning", "error"]
SHOWN = 5  # rows named per finding; the count says how many there are


@dataclass
class Finding:
    suite: str
    check: CheckKind
    severity: Severity
    message: str
    rows: list[str] = field(default_factory=list)  # every row concerned, as FILE:LINE

    def line(self) -> str:
        return f"{self.severity}: suite {self.suite}: {self.check}: {self.message}"


@dataclass
class CheckReport:
    suites: list[str]
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    def lines(self) -> list[str]:
        clean = [s for s in self.suites if not any(f.suite == s for f in self.findings)]
        return [f.line() for f in self.findings] + [f"ok: suite {s}: no finding" for s in clean]

    def to_json(self) -> str:
        return json.dumps({"suites": self.suites, "findings": [asdict(f) for f in self.findings]}, indent=1)


def rows_of(suite: Suite, split: str) -> list[Row]:
    """The input text (the fields the template reads, targets left out) and the label of every row."""
    cfg = suite.config
    targets = {v for k, v in cfg.fields.items() if k in {"label", "answer", "reference"} and isinstance(v, str)}
    read = sorted(check_template(cfg.template, suite.path) - targets)
    out = []
    for index, row in enumerate(suite.rows.get(split) or []):
        text = "\n".join(str(row.get(name, "")) for name in read)
        label = None
        if cfg.kind == "classification":
            names = list(cfg.labels or [])
            label = names[label_index(row[cfg.fields["label"]], names, suite.where(split, index),
                                      str(cfg.fields["label"]), cfg.label_values)]
        out.append(Row(_place(suite, split, index), text, label))
    return out


def _place(suite: Suite, split: str, index: int) -> str:
    places = suite.places.get(split) or []
    place = places[index] if index < len(places) else f"{split} row {index + 1}"
    here = f"{Path.cwd()}{os.sep}"
    return place.removeprefix(here)  # a path under the working folder is shown relative to it


def _severity(share: float, fail: float | None) -> Severity:
    return "error" if fail is not None and share > fail else "warning"


def _named(pairs: list[str], total: int) -> str:
    more = f" (and {total - SHOWN} more)" if total > SHOWN else ""
    return "; ".join(pairs[:SHOWN]) + more


def overlap(suite: Suite, test: list[Row], pools: dict[str, list[Row]]) -> list[Finding]:
    """Test rows also in another split (or the run's LoRA data): exact (normalised) and near duplicates."""
    c, out = suite.config.checks, []
    for pool_name, pool in pools.items():
        exact_at: dict[str, int] = {}
        for j, row in enumerate(pool):
            exact_at.setdefault(row.norm, j)
        pairs = [(i, exact_at[r.norm], 1.0) for i, r in enumerate(test) if r.norm and r.norm in exact_at]
        pairs += near_pairs(test, pool, c.near_duplicate, c.shingle)
        if not pairs:
            continue
        hit = sorted({i for i, _, _ in pairs})
        share = len(hit) / max(len(test), 1)
        shown = [f"test {test[i].place} = {pool[j].place}" + ("" if s == 1.0 else f" (near, Jaccard {s:.2f})")
                 for i, j, s in sorted(pairs)]
        out.append(Finding(suite.name, "overlap", _severity(share, c.fail_overlap),
                           f"{len(hit)} of {len(test)} test rows also in {pool_name}: {_named(shown, len(shown))}",
                           [test[i].place for i in hit]))
    return out


def split_checks(suite: Suite, split: str, rows: list[Row]) -> list[Finding]:
    """Label balance, empty, over-long and duplicated rows within one split."""
    c, n, out = suite.config.checks, max(len(rows), 1), []
    labels = Counter(r.label for r in rows if r.label is not None)
    if labels:
        top, count = labels.most_common(1)[0]
        if count / n > c.max_label_share or (c.fail_label_share is not None and count / n > c.fail_label_share):
            counts = ", ".join(f"{k} {v}" for k, v in sorted(labels.items()))
            out.append(Finding(suite.name, "label_share", _severity(count / n, c.fail_label_share),
                               f"{split} split: label {top!r} is {count / n:.0%} of the rows ({counts})"))
    groups: list[tuple[CheckKind, list[Row], float | None, str]] = [
        ("empty", [r for r in rows if not r.norm], c.fail_empty, "empty input"),
        ("long", [r for r in rows if len(r.text) > c.max_chars], c.fail_long, f"over {c.max_chars} characters"),
    ]
    for kind, found, fail, what in groups:
        if found:
            out.append(Finding(suite.name, kind, _severity(len(found) / n, fail),
                               f"{split} split: {len(found)} of {len(rows)} rows with {what}: "
                               f"{_named([r.place for r in found], len(found))}", [r.place for r in found]))
    out += _duplicates(suite, split, rows)
    return out


def _duplicates(suite: Suite, split: str, rows: list[Row]) -> list[Finding]:
    first: dict[str, Row] = {}
    pairs: list[tuple[Row, Row]] = []
    for row in rows:
        if row.norm in first:
            pairs.append((row, first[row.norm]))
        elif row.norm:
            first[row.norm] = row
    if not pairs:
        return []
    shown = [f"{a.place} = {b.place}" + (" (labels differ)" if a.label != b.label else "") for a, b in pairs]
    share = len(pairs) / max(len(rows), 1)
    return [Finding(suite.name, "duplicate", _severity(share, suite.config.checks.fail_duplicate),
                    f"{split} split: {len(pairs)} rows repeat an earlier row: {_named(shown, len(shown))}",
                    [a.place for a, _ in pairs])]


def check_suites(suites: list[Suite], lora_data: bool = False) -> CheckReport:
    """Every check of every suite; with `lora_data`, each test split also against every suite's train split
    (the LoRA training data of a run over these suites)."""
    report = CheckReport([s.name for s in suites])
    rows = {s.name: {split: rows_of(s, split) for split in SPLITS if s.has_split(split)} for s in suites}
    for suite in suites:
        own = rows[suite.name]
        pools = {f"the {split} split": own[split] for split in ("train", "validation") if split in own}
        if lora_data:
            pools |= {f"the LoRA training data of suite {o.name}": rows[o.name]["train"]
                      for o in suites if o.name != suite.name and "train" in rows[o.name]}
        report.findings += overlap(suite, own.get("test", []), pools)
        for split, split_rows in own.items():
            report.findings += split_checks(suite, split, split_rows)
    return report


def load_targets(target: str) -> tuple[list[Suite], bool]:
    """A suite reference, or an experiment file: its suites, and whether its run trains LoRA adapters."""
    from harness.config import load_experiment

    path = Path(target)
    if path.is_file() and path.suffix in {".yaml", ".yml"} and _is_experiment(path):
        cfg = load_experiment(path)
        return [load_suite(ref, base=path.parent) for ref in cfg.suites], "lora" in cfg.variants
    return [load_suite(target)], False


def _is_experiment(path: Path) -> bool:
    from harness.yamlfile import read_yaml

    data, _ = read_yaml(path)
    return isinstance(data, dict) and "candidates" in data

