"""House rules a reader relies on: no module reaches into another module's private names, the store's
migrations read in number order, and no family hides behind "is this module there?" guards."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from harness.store.migrations import MIGRATIONS

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for folder in ("harness", "reports", "bench") for p in (ROOT / folder).rglob("*.py")]


def test_no_private_name_is_imported_from_another_module():
    found = []
    for path in SOURCES:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(("harness", "reports")):
                private = [a.name for a in node.names if a.name.startswith("_") and a.name != "__version__"]
                if private and node.module != "harness.cli":  # harness.cli._register: the CLI's own entry
                    found.append(f"{path.relative_to(ROOT)}: from {node.module} import {', '.join(private)}")
    assert not found, found


def test_migrations_are_listed_in_number_order():
    numbers = [number for number, _ in MIGRATIONS]
    assert numbers == sorted(numbers) == list(range(1, len(numbers) + 1))


def test_no_module_guards_against_a_sibling_being_absent():
    guarded = [str(p.relative_to(ROOT)) for p in SOURCES
               if re.search(r"except ModuleNotFoundError", p.read_text(encoding="utf-8"))]
    assert not guarded, guarded
