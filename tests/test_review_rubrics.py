"""Rubric YAML: the shipped examples load, mistakes name the file, line and field."""

from __future__ import annotations

import pytest

from harness.errors import HarnessError
from harness.review.rubrics import BUILTIN_DIR, builtin_rubrics, load_rubric, numeric


def test_shipped_rubrics_load():
    assert set(builtin_rubrics()) == {"likert", "pass_fail", "pairwise"}
    likert = load_rubric("likert")
    assert likert.kind == "likert" and [n for n, _ in likert.questions()] == ["overall", "correctness", "fluency"]
    assert likert.choice_label("5") == "5 – excellent"
    assert load_rubric("pass_fail").choices() == ["pass", "fail"]
    assert load_rubric(BUILTIN_DIR / "pairwise.yaml").choices() == ["A", "B", "tie"]


def test_check_grade():
    rubric = load_rubric("likert")
    rubric.check_grade({"overall": "4", "correctness": "5", "fluency": "3"}, None)
    with pytest.raises(HarnessError, match="answer 'fluency'"):
        rubric.check_grade({"overall": "4", "correctness": "5"}, None)
    with pytest.raises(HarnessError, match="'overall': '7' is not one of"):
        rubric.check_grade({"overall": "7", "correctness": "5", "fluency": "3"}, None)
    with pytest.raises(HarnessError, match="no question style"):
        rubric.check_grade({"overall": "4", "correctness": "5", "fluency": "3", "style": "1"}, None)


def test_required_comment(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: r\nkind: pass_fail\ninstructions: ok?\ncomment: required\n")
    rubric = load_rubric(path)
    with pytest.raises(HarnessError, match="asks for a comment"):
        rubric.check_grade({"overall": "pass"}, "  ")
    rubric.check_grade({"overall": "pass"}, "fine")
    assert numeric("pass_fail", "pass") == 1.0 and numeric("likert", "3") == 3.0


@pytest.mark.parametrize("body, message", [
    ("name: r\nkind: stars\ninstructions: x\n", r"r.yaml:2: kind: Input should be"),
    ("name: r\nkind: likert\ninstructions: x\nlabels: {7: great}\n", r"r.yaml:4: labels: .*points 1-5"),
    ("name: r\nkind: pairwise\ninstructions: x\ncriteria:\n  - name: overall\n", r"r.yaml:4: criteria: .*always"),
    ("name: r\nkind: likert\ninstructions: x\nshow_refrence: true\n", r"r.yaml:4: show_refrence: unknown key; "
                                                                       r"did you mean 'show_reference'"),
    ("name: r\nkind: likert\n", r"r.yaml:1: instructions: required field is missing"),
])
def test_mistakes_name_file_line_and_field(tmp_path, body, message):
    path = tmp_path / "r.yaml"
    path.write_text(body)
    with pytest.raises(HarnessError, match=message):
        load_rubric(path)


def test_unknown_rubric_lists_builtins():
    with pytest.raises(HarnessError, match=r"not found; .*likert, pairwise, pass_fail"):
        load_rubric("stars")
