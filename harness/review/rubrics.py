"""Rubrics: what a reviewer is asked, as a small YAML file (Likert 1-5, pass/fail or pairwise preference).

Every rubric has an `overall` question; named `criteria` add one more question each, answered on the
same scale. The overall answer is what the analysis uses; criteria answers are stored beside it. The
Rubric model itself is a record (harness/records/rubric.py, below the store); this module loads it.
"""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError
from harness.records.rubric import KINDS, OVERALL, Criterion, Rubric
from harness.yamlfile import load_model

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
__all__ = ["BUILTIN_DIR", "KINDS", "OVERALL", "Criterion", "Rubric", "builtin_rubrics", "load_rubric", "numeric"]


def numeric(kind: str, value: str) -> float:
    """A single-mode answer as a number: likert 1-5, pass 1 / fail 0."""
    if kind == "likert":
        return float(value)
    if kind == "pass_fail":
        return 1.0 if value == "pass" else 0.0
    raise ValueError(f"{kind} answers are preferences, not numbers")


def load_rubric(ref: str | Path) -> Rubric:
    """A rubric from a YAML path, or a built-in name (`likert`, `pass_fail`, `pairwise`)."""
    path = Path(ref)
    if not path.exists() and (BUILTIN_DIR / f"{ref}.yaml").is_file():
        path = BUILTIN_DIR / f"{ref}.yaml"
    if path.is_dir():
        raise HarnessError(f"rubric {ref}: is a directory, not a rubric file; give a YAML path or a built-in name")
    if not path.is_file():
        builtins = ", ".join(sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))) or "none"
        raise HarnessError(f"rubric {ref}: file not found; give a YAML path or a built-in name ({builtins})")
    return load_model(path, Rubric)


def builtin_rubrics() -> dict[str, Path]:
    return {p.stem: p for p in sorted(BUILTIN_DIR.glob("*.yaml"))}
