"""A DuckDB store seeded by a real run of tiny in-process models, for the report tests.

`report_db` (session) runs `harness.runner.run_experiment` with a tiny Llama and a tiny BERT on two small
suites written here (classification and generation, 10 test examples each, LoRA 2 steps). The
generation suite's first test row carries script and image markup, so tests can check that the report
shows it as inert text. A test module uses the fixtures with `pytest_plugins = ["report_fixtures"]`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

XSS_SCRIPT = "<script>window.__xss=1</script>"
XSS_IMG = '<img src=x onerror="window.__xss=2">'
XSS_TEXT = f"Ana: see {XSS_SCRIPT} and {XSS_IMG} now"
XSS_ID = "gen-xss"
CAUSAL, ENCODER = "tiny-llama", "tiny-bert"
CLS_SUITE, GEN_SUITE = "tiny_sentiment", "tiny_summary"

_CLS = [("The kettle is great and works well", "positive"), ("Awful chair, it broke in a day", "negative"),
        ("I love these headphones", "positive"), ("Terrible lamp, waste of money", "negative"),
        ("Five stars, worth every penny", "positive"), ("Cheap and flimsy, avoid it", "negative")]
_GEN = [("Hugo: Did you bring the map?\nFarid: I forgot it.", "Farid forgot the map."),
        ("Chloe: Can we move dinner to Saturday?\nGrace: Sure.", "Dinner moves to Saturday."),
        ("Emma: Coming to the match?\nFarid: I am ill.", "Farid is ill and will not come."),
        ("Sam: Lunch at noon?\nLea: Yes, see you.", "Sam and Lea meet for lunch at noon.")]

CLS_YAML = f"""name: {CLS_SUITE}
kind: classification
data: {{train: cls_train.jsonl, validation: cls_validation.jsonl, test: cls_test.jsonl}}
labels: [negative, positive]
template: "Review: {{{{ text }}}}\\nSentiment:"
chat_template: "off"
metrics: [accuracy, {{name: f1, average: macro}}]
"""
GEN_YAML = f"""name: {GEN_SUITE}
kind: generation
data: {{train: gen_train.jsonl, validation: gen_validation.jsonl, test: gen_test.jsonl}}
fields: {{reference: summary}}
template: "Summarise: {{{{ dialogue }}}}\\nSummary:"
chat_template: "off"
generation: {{max_new_tokens: 6, stop: ["\\n"]}}
metrics: [{{name: rouge, types: [rouge1, rougeL]}}, chrf]
"""


def experiment_yaml(name: str, causal: Path, encoder: Path, suites: Path) -> str:
    return f"""name: {name}
seed: 0
device: cpu
candidates:
  - {{name: {CAUSAL}, model: "{causal}"}}
  - {{name: {ENCODER}, model: "{encoder}"}}
variants: [base, lora]
lora: {{steps: 2, batch_size: 4, eval_every: 1, max_eval_examples: 4, max_length: 64}}
suites: ["{suites / 'cls.yaml'}", "{suites / 'gen.yaml'}"]
evaluation: {{max_examples: 10, bootstrap_resamples: 100, batch_size: 8}}
"""


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_suites(folder: Path) -> Path:
    """Both suites (train 6 rows, validation 3, test 10) under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    cls = [{"id": f"cls-{i}", "text": t, "label": label} for i, (t, label) in enumerate(_CLS * 2)]
    _jsonl(folder / "cls_train.jsonl", cls[:6])
    _jsonl(folder / "cls_validation.jsonl", cls[6:9])
    _jsonl(folder / "cls_test.jsonl", cls[:10])
    gen = [{"id": f"gen-{i}", "dialogue": d, "summary": s} for i, (d, s) in enumerate(_GEN * 3)]
    xss = {"id": XSS_ID, "dialogue": XSS_TEXT, "summary": f"The summary {XSS_SCRIPT} {XSS_IMG}"}
    _jsonl(folder / "gen_train.jsonl", gen[:6])
    _jsonl(folder / "gen_validation.jsonl", gen[6:9])
    _jsonl(folder / "gen_test.jsonl", [xss, *gen[:9]])
    (folder / "cls.yaml").write_text(CLS_YAML, encoding="utf-8")
    (folder / "gen.yaml").write_text(GEN_YAML, encoding="utf-8")
    return folder


@dataclass(frozen=True)
class ReportDb:
    path: Path
    run_id: str
    experiment: Path


@pytest.fixture(scope="session")
def report_models(tmp_path_factory) -> tuple[Path, Path]:
    """(causal folder, encoder folder): the tiny models, built once per session."""
    import tiny_models

    folder = tmp_path_factory.mktemp("report_models")
    return tiny_models.save_causal(folder / "causal"), tiny_models.save_encoder(folder / "encoder")


@pytest.fixture(scope="session")
def report_experiment(tmp_path_factory, report_models) -> Path:
    """The tiny experiment YAML (both models, both suites, base and LoRA)."""
    folder = tmp_path_factory.mktemp("report_experiment")
    suites = write_suites(folder / "suites")
    path = folder / "tiny.yaml"
    path.write_text(experiment_yaml("tiny", *report_models, suites), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def report_db(tmp_path_factory, report_experiment) -> ReportDb:
    """A store holding one finished run of the tiny experiment (read it; do not write to it)."""
    from harness.runner import run_experiment
    from harness.store import Store

    path = tmp_path_factory.mktemp("report_db") / "report.duckdb"
    store = Store(path)
    run_id, status = run_experiment(report_experiment, store, artifacts=path.parent / "artifacts")
    assert status == "finished", store.table("items")
    return ReportDb(path, run_id, report_experiment)
