"""Suites: data sources, splits, prompt templates, few-shot examples, fingerprints.

A suite file (YAML, see docs/suites.md) names its data, the fields it reads, a Jinja prompt
template and the metrics. `load_suite` validates all of it without touching a model.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from harness.config import SuiteConfig, load_suite_config
from harness.errors import HarnessError
from harness.kinds import SuiteKind
from harness.suites.labels import label_index
from harness.suites.sources import (  # noqa: F401 - re-exported: the package's face is this module
    BUILTIN_DIR,
    builtin_names,
    find_suite,
    register_suite_source,
    suite_sources,
)
from harness.yamlfile import key_line

SPLITS = ("train", "validation", "test")
# Suites are shared and downloaded: their templates are data. The sandbox refuses Python internals
# (attributes starting with "_", functions' globals) and never changes the values it is given.
_ENV = ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)
REFUSED = "templates may use the row's fields, filters and tests, nothing of Python's internals"


@dataclass
class Example:
    """One row of a suite, ready for a predictor."""

    id: str
    prompt: str
    choices: list[str]
    answer: int | None
    reference: str | list[str]
    row: dict[str, Any] = field(repr=False)

    @property
    def target(self) -> str:
        """The text a fine-tune learns to produce after the prompt."""
        if self.answer is not None:
            return self.choices[self.answer]
        return self.reference if isinstance(self.reference, str) else self.reference[0]


@dataclass
class Suite:
    config: SuiteConfig
    path: Path
    rows: dict[str, list[dict]]
    places: dict[str, list[str]] = field(default_factory=dict)  # per split, each row's "FILE:LINE"

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def kind(self) -> SuiteKind:
        return self.config.kind

    @cached_property
    def fingerprint(self) -> str:
        """Content hash of the data and of everything in the config that changes the examples."""
        unset = {"truncate"} if self.config.truncate is None else set()  # fingerprints from before the field
        digest = hashlib.sha256(self.config.model_dump_json(exclude={"description", "checks", *unset}).encode())
        if self.config.label_values != list(self.config.labels or []):
            digest.update(json.dumps(self.config.label_values).encode())
        for split in SPLITS:
            for row in self.rows.get(split, []):
                digest.update(json.dumps(row, sort_keys=True, default=str).encode())
        return digest.hexdigest()[:16]

    def examples(self, split: str = "test", limit: int | None = None) -> list[Example]:
        rows = self.rows.get(split, [])
        if limit is not None:
            rows = rows[:limit]
        shots = self._shots()
        return [self._example(row, i, split, shots) for i, row in enumerate(rows)]

    def where(self, split: str, index: int) -> str:
        """Where a row is, for errors: the suite, the split's row and the row's place in its data file
        (`FILE:LINE`, the file's own line whatever the split's shuffle)."""
        places = self.places.get(split) or []
        place = f" ({places[index]})" if index < len(places) else ""
        return f"{self.path}: {split} split, row {index + 1}{place}"

    def has_split(self, split: str) -> bool:
        return bool(self.rows.get(split))

    def _shots(self) -> list[tuple[dict, str]]:
        fs = self.config.few_shot
        pool = self.rows.get("train", [])
        if fs.k == 0:
            return []
        if len(pool) < fs.k:
            raise HarnessError(f"{self.path}: few_shot.k is {fs.k} but the train split has {len(pool)} rows")
        # the same rows as sampling the pool itself: random.sample picks positions from the length alone
        return [(pool[i], self.where("train", i)) for i in random.Random(fs.seed).sample(range(len(pool)), fs.k)]

    def _example(self, row: dict, index: int, split: str, shots: list[tuple[dict, str]]) -> Example:
        choices, answer, reference = self._targets(row, self.where(split, index))
        prompt = render(self.config.template, row, self.path)
        if shots:
            demos = [self._demo(shot, where) for shot, where in shots]
            prompt = self.config.few_shot.separator.join([*demos, prompt])
        example_id = str(row.get(self.config.fields.get("id", "id"), f"{split}-{index}"))
        return Example(example_id, prompt, choices, answer, reference, row)

    def _demo(self, row: dict, where: str) -> str:
        """A few-shot demonstration: the prompt and its answer, spaced as fine-tuning spaces it."""
        prompt = render(self.config.template, row, self.path)
        choices, answer, reference = self._targets(row, where)
        if answer is not None:
            return prompt + self.continuation(choices[answer])
        text = reference if isinstance(reference, str) else reference[0]
        return prompt + (text if prompt.endswith((" ", "\n")) else " " + text)

    def continuation(self, choice: str) -> str:
        """The text scored (or learned) after the prompt for one label or choice."""
        return render(self.config.choice_template, {"choice": choice}, self.path, "choice_template")

    def _targets(self, row: dict, where: str) -> tuple[list[str], int | None, str | list[str]]:
        cfg, f = self.config, self.config.fields
        if cfg.kind == "classification":
            names = list(cfg.labels or [])
            answer = label_index(row[f["label"]], names, where, str(f["label"]), cfg.label_values)
            return names, answer, names[answer]
        if cfg.kind == "multiple_choice":
            choices = [str(c) for c in row[f["choices"]]]
            answer = label_index(row[f["answer"]], choices, where, str(f["answer"]))
            return choices, answer, choices[answer]
        return [], None, references(row, f["reference"], where)


def references(row: dict, columns: str | list[str], where: str) -> str | list[str]:
    """One reference (a column), or several: a list of columns or a list-valued column; null ones are skipped."""
    if isinstance(columns, str) and not isinstance(row[columns], list):
        return str(row[columns])
    values = row[columns] if isinstance(columns, str) else [row[c] for c in columns]
    refs = [str(v) for v in values if v is not None]
    if not refs:
        raise HarnessError(f"{where}: field '{columns}': no reference (every value is null or the list is empty); "
                           "give each row at least one reference")
    return refs


@functools.lru_cache(maxsize=64)
def _compiled(template: str) -> jinja2.Template:
    return _ENV.from_string(template)


def render(template: str, row: dict, path: Path, field_name: str = "template") -> str:
    """A suite template rendered in the sandbox; what it refuses is a one-line error naming the file and field."""
    try:
        return _compiled(template).render(**row)
    except SecurityError as exc:
        raise HarnessError(f"{_where(path, field_name)}: {field_name}: refused by the template sandbox "
                           f"({_one_line(exc)}); {REFUSED}") from None
    except jinja2.TemplateError as exc:
        raise HarnessError(f"{_where(path, field_name)}: {field_name}: {_one_line(exc)}") from None


def check_template(template: str, path: Path, field_name: str = "template") -> set[str]:
    """The fields a template reads; a syntax error, or a literal reach into Python internals (`x.__class__`,
    `x['__globals__']`, even in a branch no sample row takes), is a one-line error."""
    try:
        tree = _ENV.parse(template)
    except jinja2.TemplateSyntaxError as exc:
        raise HarnessError(f"{_where(path, field_name)}: {field_name}: Jinja syntax error on template line "
                           f"{exc.lineno}: {_one_line(exc.message or exc)}") from None
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        name = node.attr if isinstance(node, nodes.Getattr) else getattr(node.arg, "value", None)
        internal = isinstance(name, str) and (name.startswith("__") or (name.startswith("_") and
                                                                        isinstance(node, nodes.Getattr)))
        if internal:
            raise HarnessError(f"{_where(path, field_name)}: {field_name}: refused: '{name}' (template line "
                               f"{node.lineno}) reaches into Python internals; {REFUSED}")
    return jinja2.meta.find_undeclared_variables(tree)


def _where(path: Path, field_name: str) -> str:
    line = key_line(path, (field_name,))
    return f"{path}:{line}" if line else str(path)


def _one_line(exc: object) -> str:
    return " ".join(str(exc).split()).rstrip(".")


def load_suite(name_or_path: str, base: Path | None = None) -> Suite:
    """A suite by reference (a file, a built-in name or `SCHEME:...` of a suite source), loaded and validated."""
    from harness.suites.data import load_rows_with_places

    path = find_suite(name_or_path, base)
    config = load_suite_config(path)
    rows, places = load_rows_with_places(config, path)
    suite = Suite(config, path, rows, places)
    validate_suite(suite)
    return suite


def validate_suite(suite: Suite) -> None:
    """Check fields, templates, labels and metrics without running a model."""
    from harness.metrics import get_metric

    cfg, path = suite.config, suite.path
    if not suite.has_split("test"):
        raise HarnessError(f"{path}: data: the test split is empty")
    if cfg.few_shot.k and not suite.has_split("train"):
        raise HarnessError(f"{path}: few_shot: k={cfg.few_shot.k} needs a non-empty train split")
    wanted = _columns(cfg.fields) | check_template(cfg.template, path)
    check_template(cfg.choice_template, path, "choice_template")
    for split, rows in suite.rows.items():
        for index, row in enumerate(rows):
            missing = sorted(wanted - set(row))
            if missing:
                raise HarnessError(f"{suite.where(split, index)}: field(s) {', '.join(missing)} missing (columns: "
                                   f"{', '.join(sorted(row))}); fix 'fields', the template or the data"
                                   f"{_list_hint(missing, row)}")
            suite._targets(row, suite.where(split, index))
    for number, ref in enumerate(cfg.metrics):
        try:
            get_metric(ref.name, **ref.options)
        except HarnessError as exc:
            raise HarnessError(f"{path}: metrics[{number}]: {exc}") from None
    render_samples(suite)


def _columns(fields: dict[str, str | list[str]]) -> set[str]:
    out: set[str] = set()
    for role, column in fields.items():
        if role != "id":
            out |= set(column) if isinstance(column, list) else {column}
    return out


def _list_hint(missing: list[str], row: dict) -> str:
    """`reference: a, b` is one column named "a, b": say how to name several."""
    for name in missing:
        parts = [p.strip() for p in name.split(",")]
        if len(parts) > 1 and all(p in row for p in parts):
            return f"; to name several columns give a list: [{', '.join(parts)}]"
    return ""


def label_summary(suite: Suite) -> list[str]:
    """Per split, how many rows carry each label (classification suites; empty for others)."""
    from harness.suites.labels import label_counts

    cfg = suite.config
    if cfg.kind != "classification":
        return []
    column = str(cfg.fields["label"])
    names = list(cfg.labels or [])
    out = []
    for split in SPLITS:
        rows = suite.rows.get(split) or []
        if rows:
            places = [suite.where(split, i) for i in range(len(rows))]
            counts = label_counts(rows, column, names, cfg.label_values, places)
            out.append(f"{split}: " + ", ".join(f"{name} {counts[name]}" for name in names))
    return out


def render_samples(suite: Suite) -> None:
    """Render the first row of every split (with its few-shot demonstrations and every choice), in the
    sandbox, so that what `harness run` would refuse is refused before any model or store is touched."""
    shots = suite._shots()
    for split in SPLITS:
        rows = suite.rows.get(split) or []
        if rows:
            example = suite._example(rows[0], 0, split, shots)
            for choice in example.choices:
                suite.continuation(choice)
