"""Rubrics: what a reviewer is asked, as a small YAML file (Likert 1-5, pass/fail or pairwise preference).

Every rubric has an `overall` question; named `criteria` add one more question each, answered on the
same scale. The overall answer is what the analysis uses; criteria answers are stored beside it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.errors import HarnessError
from harness.yamlfile import FieldError, load_model

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
KINDS = ("likert", "pass_fail", "pairwise")
OVERALL = "overall"


class Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""


class Rubric(BaseModel):
    """A grading rubric. `choices()` lists the answers a question accepts, in display order."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$")
    kind: Literal["likert", "pass_fail", "pairwise"]
    instructions: str = Field(min_length=1)
    labels: dict[int, str] = Field(default_factory=dict)
    criteria: list[Criterion] = Field(default_factory=list)
    comment: Literal["none", "optional", "required"] = "optional"
    show_reference: bool = True

    @field_validator("criteria")
    @classmethod
    def _unique(cls, value: list[Criterion]) -> list[Criterion]:
        names = [c.name for c in value]
        if OVERALL in names:
            raise ValueError("'overall' is always asked; name the criteria after what they judge")
        if len(set(names)) != len(names):
            raise ValueError(f"criterion names must be unique, got {', '.join(names)}")
        return value

    @model_validator(mode="after")
    def _labels_fit(self) -> Rubric:
        if self.labels and self.kind != "likert":
            raise FieldError(("labels",), "labels: names of the points 1-5 apply to a likert rubric only")
        bad = sorted(k for k in self.labels if not 1 <= k <= 5)
        if bad:
            raise FieldError(("labels",), f"labels: likert labels are for the points 1-5, got {bad}")
        return self

    def questions(self) -> list[tuple[str, str]]:
        """(name, description) of every question, overall first."""
        return [(OVERALL, "Overall"), *[(c.name, c.description or c.name) for c in self.criteria]]

    def choices(self) -> list[str]:
        return {"likert": ["1", "2", "3", "4", "5"], "pass_fail": ["pass", "fail"],
                "pairwise": ["A", "B", "tie"]}[self.kind]

    def choice_label(self, choice: str) -> str:
        if self.kind == "likert" and int(choice) in self.labels:
            return f"{choice} – {self.labels[int(choice)]}"
        return {"tie": "Tie", "pass": "Pass", "fail": "Fail"}.get(choice, choice)

    def check_grade(self, answers: dict[str, str], comment: str | None) -> None:
        """Raise HarnessError naming the first unanswered or invalid question."""
        for name, _ in self.questions():
            value = answers.get(name)
            if value is None:
                raise HarnessError(f"answer '{name}' before submitting")
            if value not in self.choices():
                raise HarnessError(f"'{name}': {value!r} is not one of {', '.join(self.choices())}")
        extra = sorted(set(answers) - {n for n, _ in self.questions()})
        if extra:
            raise HarnessError(f"rubric '{self.name}' has no question {', '.join(extra)}")
        if self.comment == "required" and not (comment or "").strip():
            raise HarnessError("this rubric asks for a comment; write one before submitting")

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str) -> Rubric:
        return cls.model_validate(json.loads(text))


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
