"""The judge prompt, built from the same rubric YAML the reviewers answer.

The prompt carries the rubric's instructions, its criteria, the labels of its scale and (when asked
and present) the reference, then the output (two outputs, A and B, for a pairwise rubric), and ends
by asking for exactly one of the rubric's options. The template's hash (the prompt without any item)
and the rubric's hash key a judge's calibration (harness.judges.calibration).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from harness.records.rubric import (
    Rubric,
    option_value,  # noqa: F401  (used here and by the judges)
)

ANSWER_CUE = "Answer:"
# the numeric value of each option: a Likert point, pass 1 / fail 0, pairwise A 1 / tie 0.5 / B 0


@dataclass(frozen=True)
class JudgeItem:
    """What the judge reads: the input, the output (and a second output for pairwise), a reference."""

    input: str
    output: str
    reference: str | None = None
    output_b: str | None = None


def _header(rubric: Rubric) -> list[str]:
    lines = ["You are grading the way a careful human reviewer would, following these instructions.", "",
             rubric.instructions.strip()]
    if rubric.criteria:
        lines += ["", "Consider:", *[f"- {c.name}: {c.description or c.name}" for c in rubric.criteria]]
    if rubric.kind == "likert":
        lines += ["", "Scale:", *[f"{o}: {rubric.labels.get(int(o), '')}".rstrip(": ") for o in rubric.choices()]]
    return lines


def _body(rubric: Rubric, item: JudgeItem, use_reference: bool) -> list[str]:
    lines = ["", "Input:", item.input.strip()]
    if use_reference and item.reference:
        lines += ["", "Reference:", item.reference.strip()]
    if rubric.kind == "pairwise":
        if item.output_b is None:
            raise ValueError("a pairwise rubric judges two outputs; give output_b")
        lines += ["", "Output A:", item.output.strip(), "", "Output B:", item.output_b.strip()]
    else:
        lines += ["", "Output:", item.output.strip()]
    return lines


def _footer(rubric: Rubric) -> list[str]:
    return ["", f"Reply with exactly one of: {', '.join(rubric.choices())}.", ANSWER_CUE]


def build_prompt(rubric: Rubric, item: JudgeItem, use_reference: bool = False) -> str:
    """The judge prompt for one item; it ends with the answer cue, the options follow it."""
    use_reference = use_reference and rubric.show_reference
    return "\n".join([*_header(rubric), *_body(rubric, item, use_reference), *_footer(rubric)])


def template_hash(rubric: Rubric, use_reference: bool = False) -> str:
    """A hash of the prompt's fixed text: it changes when the wording, the rubric or the reference setting does."""
    placeholder = JudgeItem("{input}", "{output}", "{reference}", "{output_b}" if rubric.kind == "pairwise" else None)
    text = build_prompt(rubric, placeholder, use_reference)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def rubric_hash(rubric: Rubric) -> str:
    return hashlib.sha256(rubric.to_json().encode("utf-8")).hexdigest()[:16]
