"""The Rubric record: what a reviewer is asked (Likert 1-5, pass/fail or pairwise preference).

It sits below the store, which keeps a queue's rubric as JSON; loading rubrics from YAML files and the
built-ins is harness/review/rubrics.py's job. Every rubric has an `overall` question; named `criteria`
add one more question each, answered on the same scale.
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.errors import HarnessError
from harness.yamlfile import FieldError

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


OPTION_VALUES = {"pass": 1.0, "fail": 0.0, "A": 1.0, "tie": 0.5, "B": 0.0}


def option_value(option: str) -> float:
    """A rubric option as a number: a Likert grade as itself, pass 1 / fail 0, pairwise A 1 / tie 0.5 / B 0."""
    return float(option) if option.isdigit() else OPTION_VALUES[option]
