"""The reference docs follow the code: docs/cli.md is the commands' own help, docs/metrics.md names every
registered metric."""

from __future__ import annotations

from pathlib import Path

from harness.cli.reference import render
from harness.metrics.registry import list_metrics

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_cli_reference_is_the_commands_help():
    expected = render()
    actual = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert actual == expected, "docs/cli.md is out of date: run `python -m harness.cli.reference`"
    for command in ("harness run", "harness review add-reviewer", "harness gate", "harness suites validate"):
        assert f"`{command}`" in actual


def test_metrics_doc_names_every_registered_metric():
    text = (DOCS / "metrics.md").read_text(encoding="utf-8")
    missing = [name for name in list_metrics() if f"`{name}`" not in text]
    assert not missing, f"docs/metrics.md does not describe: {missing}"
