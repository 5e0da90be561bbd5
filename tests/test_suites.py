"""Suites: built-ins validate without a model, rendering, few-shot, splits, sources, validation errors."""

from __future__ import annotations

import csv
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tiny_models import suite_rows, write_jsonl, write_suite

from harness.errors import HarnessError
from harness.suites import builtin_names, load_suite


@pytest.mark.parametrize("name", builtin_names())
def test_builtin_suite_loads_and_validates(name):
    suite = load_suite(name)  # load_suite validates fields, templates, labels and metrics
    assert suite.name == name and suite.has_split("test")
    examples = suite.examples("test", limit=3)
    assert len(examples) == 3 and all(ex.prompt and ex.id for ex in examples)
    if suite.kind == "generation":
        assert all(ex.answer is None and ex.reference for ex in examples)
    else:
        assert all(ex.target == ex.choices[ex.answer] for ex in examples)


def test_builtins_are_the_four_shipped():
    assert builtin_names() == ["mcqa", "sentiment", "summarise", "translate"]


def test_example_rendering():
    suite = load_suite("sentiment")
    row = suite.rows["test"][0]
    ex = suite.examples("test", limit=1)[0]
    assert ex.id == row["id"]
    assert ex.prompt == f"Review: {row['text']}\nIs this review positive or negative?\nAnswer:"
    assert ex.choices == ["negative", "positive"] and ex.choices[ex.answer] == row["label"]
    assert suite.continuation("positive") == " positive"


def test_mcqa_answer_index_and_generation_reference():
    mc = load_suite("mcqa").examples("test", limit=1)[0]
    assert mc.choices == ["quiet", "weak", "cold", "empty"] and mc.answer == 1 and mc.reference == "weak"
    gen = load_suite("translate")
    ex = gen.examples("test", limit=1)[0]
    assert ex.reference == gen.rows["test"][0]["german"] and ex.target == ex.reference


def test_few_shot_is_seeded_and_drawn_from_train(tmp_path):
    suite = load_suite(str(write_suite(tmp_path / "a", "classification", extra="few_shot: {k: 2, seed: 5}\n")))
    prompts = [ex.prompt for ex in suite.examples("test")]
    assert prompts == [ex.prompt for ex in suite.examples("test")]  # same seed, same shots
    shots = random.Random(5).sample(suite.rows["train"], 2)
    demos = [f"Review: {s['text']}\nAnswer: {s['label']}" for s in shots]
    own = f"Review: {suite.rows['test'][0]['text']}\nAnswer:"
    assert prompts[0] == "\n\n".join([*demos, own])
    # every test example gets the same k demonstrations in front of its own prompt
    assert all(p.startswith("\n\n".join(demos) + "\n\n") for p in prompts)
    other = load_suite(str(write_suite(tmp_path / "b", "classification", extra="few_shot: {k: 2, seed: 6}\n")))
    assert [ex.prompt for ex in other.examples("test")] != prompts


def test_few_shot_generation_demo_ends_with_reference(tmp_path):
    extra = 'few_shot: {k: 1, seed: 0, separator: "\\n---\\n"}\n'
    suite = load_suite(str(write_suite(tmp_path, "generation", extra=extra)))
    shot = random.Random(0).sample(suite.rows["train"], 1)[0]
    prompt = suite.examples("test", limit=1)[0].prompt
    assert prompt.startswith(f"English: {shot['english']}\nGerman: {shot['german']}\n---\nEnglish:")


def test_few_shot_larger_than_train(tmp_path):
    # refused when the suite loads (`suites validate`, or before `harness run` writes anything)
    with pytest.raises(HarnessError, match="few_shot.k is 50 but the train split has 6 rows"):
        load_suite(str(write_suite(tmp_path, "classification", extra="few_shot: {k: 50}\n")))


def _source_suite(tmp_path, data_line: str, seed: int = 0):
    path = tmp_path / f"src{seed}.yaml"
    path.write_text(
        f"name: src\nkind: classification\ndata: {{{data_line}, split_seed: {seed}}}\nlabels: [negative, positive]\n"
        "template: '{{ text }}'\nmetrics: [accuracy]\n"
    )
    return load_suite(str(path))


def test_single_source_is_split_70_15_15_with_a_seed(tmp_path):
    rows = [{"id": f"r{i}", "text": f"text {i}", "label": ["negative", "positive"][i % 2]} for i in range(40)]
    write_jsonl(tmp_path / "all.jsonl", rows)
    suite = _source_suite(tmp_path, "source: all.jsonl")
    sizes = {k: len(v) for k, v in suite.rows.items()}
    assert sizes == {"train": 28, "validation": 6, "test": 6}
    ids = [r["id"] for split in ("train", "validation", "test") for r in suite.rows[split]]
    assert sorted(ids) == sorted(r["id"] for r in rows)  # a partition: nothing lost, nothing twice
    again = _source_suite(tmp_path, "source: all.jsonl")
    assert again.rows == suite.rows
    other = _source_suite(tmp_path, "source: all.jsonl", seed=1)
    assert [r["id"] for r in other.rows["test"]] != [r["id"] for r in suite.rows["test"]]


def test_csv_source(tmp_path):
    rows = suite_rows("classification")
    with open(tmp_path / "data.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "text", "label"])
        writer.writeheader()
        writer.writerows(rows)
    path = tmp_path / "csv.yaml"
    path.write_text("name: c\nkind: classification\ndata: {test: data.csv}\nlabels: [negative, positive]\n"
                    "template: 'Review: {{ text }}'\nmetrics: [accuracy]\n")
    suite = load_suite(str(path))
    examples = suite.examples()
    assert [ex.id for ex in examples] == [r["id"] for r in rows]
    assert [ex.choices[ex.answer] for ex in examples] == [r["label"] for r in rows]


def test_parquet_source_with_list_choices(tmp_path):
    rows = suite_rows("multiple_choice")
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "mc.parquet")
    path = tmp_path / "pq.yaml"
    path.write_text("name: p\nkind: multiple_choice\ndata: {test: mc.parquet}\ntemplate: 'Q: {{ question }}'\n"
                    "metrics: [accuracy]\n")
    examples = load_suite(str(path)).examples()
    assert examples[0].choices == rows[0]["choices"] and examples[0].answer == rows[0]["answer"]
    assert examples[3].prompt == f"Q: {rows[3]['question']}"


def test_unknown_data_format(tmp_path):
    (tmp_path / "d.txt").write_text("x")
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nkind: generation\ndata: {test: d.txt}\ntemplate: x\nmetrics: [bleu]\n")
    with pytest.raises(HarnessError, match="unsupported data format '.txt'"):
        load_suite(str(path))


def _error(path) -> str:
    with pytest.raises(HarnessError) as info:
        load_suite(str(path))
    message = str(info.value)
    assert message.startswith(str(path)) or str(path.parent) in message, "the error names the file"
    return message


def test_missing_field_in_a_row(tmp_path):
    path = write_suite(tmp_path, "classification")
    rows = suite_rows("classification")
    del rows[1]["text"]
    write_jsonl(tmp_path / "test.jsonl", rows)
    message = _error(path)
    assert f"test split, row 2 ({tmp_path / 'test.jsonl'}:2): field(s) text missing" in message


def test_template_naming_an_unknown_field(tmp_path):
    path = write_suite(tmp_path, "generation")
    path.write_text(path.read_text().replace("{{ english }}", "{{ englsh }}"))
    message = _error(path)
    assert "englsh missing" in message and "english" in message  # names the field and the columns there are


def test_template_syntax_error(tmp_path):
    path = write_suite(tmp_path, "generation")
    path.write_text(path.read_text().replace("{{ english }}", "{{ english "))
    assert "Jinja syntax error" in _error(path)


def test_unknown_metric(tmp_path):
    path = write_suite(tmp_path, "multiple_choice")
    path.write_text(path.read_text().replace("metrics: [accuracy]", "metrics: [accuracy, acuracy]"))
    message = _error(path)
    assert message.startswith(f"{path}: metrics[1]: unknown metric 'acuracy'; did you mean accuracy?")


def test_empty_test_split(tmp_path):
    path = write_suite(tmp_path, "classification")
    (tmp_path / "test.jsonl").write_text("\n")
    assert _error(path) == f"{path}: data: the test split is empty"


def test_label_outside_the_label_set(tmp_path):
    path = write_suite(tmp_path, "classification")
    rows = suite_rows("classification")
    rows[0]["label"] = "neutral"
    write_jsonl(tmp_path / "train.jsonl", rows)
    message = _error(path)
    assert f"train split, row 1 ({tmp_path / 'train.jsonl'}:1): field 'label'" in message
    assert "'neutral' is outside the label set" in message


def test_answer_index_out_of_range(tmp_path):
    path = write_suite(tmp_path, "multiple_choice")
    rows = suite_rows("multiple_choice")
    rows[2]["answer"] = 4
    write_jsonl(tmp_path / "test.jsonl", rows)
    assert "field 'answer': value 4 is outside the label set" in _error(path)


def test_invalid_json_line(tmp_path):
    path = write_suite(tmp_path, "classification")
    (tmp_path / "test.jsonl").write_text('{"id": "a", "text": "x", "label": "positive"}\n{broken\n')
    assert f"{tmp_path / 'test.jsonl'}:2: invalid JSON" in _error(path)


def test_unknown_suite_name():
    with pytest.raises(HarnessError, match="not a built-in suite"):
        load_suite("no-such-suite")


def test_fingerprint_changes_with_data_not_description(tmp_path):
    path = write_suite(tmp_path, "classification")
    first = load_suite(str(path)).fingerprint
    assert load_suite(str(path)).fingerprint == first
    path.write_text(path.read_text() + "description: words only\n")
    assert load_suite(str(path)).fingerprint == first
    rows = suite_rows("classification")
    rows[3]["text"] += "!"
    write_jsonl(tmp_path / "test.jsonl", rows[2:])
    assert load_suite(str(path)).fingerprint != first


def test_sandboxed_templates_keep_filters_loops_and_items(tmp_path):
    """The sandbox refuses Python internals, not Jinja: loops, filters, format, item access still render."""
    path = write_suite(tmp_path, "multiple_choice")
    template = ("{{ question | upper }}\\n{% for c in choices %}{{ loop.index }}. {{ '%s' | format(c) }}\\n"
                "{% endfor %}{{ choices[0] }}{{ (choices | length) }}")
    path.write_text(path.read_text().replace('"Question: {{ question }}\\nAnswer:"', f'"{template}"'))
    suite = load_suite(str(path))
    row = suite.rows["test"][0]
    numbered = "".join(f"{i}. {c}\n" for i, c in enumerate(row["choices"], start=1))
    assert suite.examples("test", limit=1)[0].prompt == (f"{row['question'].upper()}\n{numbered}"
                                                        f"{row['choices'][0]}{len(row['choices'])}")


def test_sandbox_refuses_at_render_what_no_literal_names(tmp_path):
    """`attr('__class__')` names no attribute in the template's syntax: the sandbox itself refuses it."""
    path = write_suite(tmp_path, "generation")
    path.write_text(path.read_text().replace("{{ english }}", "{{ english | attr('__class__') }}"))
    with pytest.raises(HarnessError, match=r"template: refused by the template sandbox \(access to attribute "
                                           r"'__class__' of 'str' object is unsafe\)"):
        load_suite(str(path))
