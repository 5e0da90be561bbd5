"""1. Multiple-choice scoring: the harness against lm-eval's `simple_evaluate` on the same model object.

SST-2 (2 one-token labels) and ARC-Easy (4 multi-token choices), SmolLM2-135M-Instruct, the same
prompt (lm-eval's own sst2 / arc_easy prompts, no chat template), the same batch size. lm-eval
reads the shared JSONL through local task YAMLs written to a temporary folder; the harness reads it
through a suite YAML written next to them. Both sides must pick the same choice for every example.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from bench import Row, alternate, child_main, offline, paired_ratio, seconds, shared_data

MODEL = "pack:smollm2-135m-instruct"
BATCH_SIZE = 16

SST2_TEXT = "{{ text }}\nQuestion: Is this sentence positive or negative?\nAnswer:"
ARC_TEXT = "Question: {{ question }}\nAnswer:"

# name -> data file, harness suite YAML, lm-eval task YAML, prompt, examples and repetitions (full, quick),
# target speed-up. The first 200 ARC-Easy questions and 2 SST-2 repetitions keep the run near 10 minutes
# on 2 CPU cores (lm-eval scores ARC's 4 choices as 4 full sequences: about 1 s per question here).
CASES: dict[str, dict[str, Any]] = {
    "sst2": {
        "file": "sst2_dev.jsonl",
        "suite": """name: bench_sst2
kind: classification
data: {{test: "{path}"}}
labels: [negative, positive]
template: "{text}"
choice_template: " {{{{ choice }}}}"
chat_template: "off"
metrics: [accuracy]
""",
        "task": """task: bench_sst2
dataset_path: json
dataset_kwargs: {{data_files: {{test: "{path}"}}}}
test_split: test
output_type: multiple_choice
doc_to_text: "{text}"
doc_to_target: label
doc_to_choice: ["negative", "positive"]
metric_list: [{{metric: acc}}]
""",
        "template": SST2_TEXT,
        "n": (872, 96),
        "reps": (2, 2),
        "target": 1.2,
    },
    "arc_easy": {
        "file": "arc_easy_test.jsonl",
        "suite": """name: bench_arc_easy
kind: multiple_choice
data: {{test: "{path}"}}
template: "{text}"
choice_template: " {{{{ choice }}}}"
chat_template: "off"
metrics: [accuracy]
""",
        "task": """task: bench_arc_easy
dataset_path: json
dataset_kwargs: {{data_files: {{test: "{path}"}}}}
test_split: test
output_type: multiple_choice
doc_to_text: "{text}"
doc_to_target: answer
doc_to_choice: "{{{{ choices }}}}"
metric_list: [{{metric: acc}}]
""",
        "template": ARC_TEXT,
        "n": (200, 64),
        "reps": (3, 2),
        "target": 2.0,
    },
}


def yaml_text(template: str) -> str:
    """A Jinja prompt as a double-quoted YAML scalar."""
    return template.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def write_configs(folder: Path, case: str) -> tuple[Path, Path]:
    """The harness suite and the lm-eval task for one case, both pointing at the shared JSONL."""
    spec = CASES[case]
    data = shared_data(spec["file"])
    text = yaml_text(spec["template"])
    suite = folder / f"{case}_suite.yaml"
    suite.write_text(spec["suite"].format(path=data, text=text), encoding="utf-8")
    tasks = folder / "tasks"
    tasks.mkdir(exist_ok=True)
    (tasks / f"bench_{case}.yaml").write_text(spec["task"].format(path=data, text=text), encoding="utf-8")
    return suite, tasks


def harness_side(loaded: Any, suite_path: Path, n: int) -> tuple[list[int], list[list[float]]]:
    from harness.predict import Predictor, predict
    from harness.suites import load_suite

    suite = load_suite(str(suite_path))
    predictor = Predictor(loaded.model, loaded.tokenizer, "causal", loaded.device)
    preds = predict(predictor, suite, suite.examples("test", n), BATCH_SIZE)
    return [p.choice_index for p in preds], [p.choice_scores for p in preds]


def lmeval_side(lm: Any, manager: Any, task: str, n: int) -> tuple[list[int], list[list[float]]]:
    from lm_eval import simple_evaluate

    out = simple_evaluate(model=lm, tasks=[task], task_manager=manager, limit=n, bootstrap_iters=0,
                          log_samples=True)
    samples = sorted(out["samples"][task], key=lambda s: s["doc_id"])
    scores = [[float(r[0]) for r in s["filtered_resps"]] for s in samples]
    return [max(range(len(sc)), key=sc.__getitem__) for sc in scores], scores


def compare(case: str, loaded: Any, lm: Any, folder: Path, quick: bool) -> Row:
    from lm_eval.tasks import TaskManager

    n, reps = CASES[case]["n"][1 if quick else 0], CASES[case]["reps"][1 if quick else 0]
    suite_path, task_dir = write_configs(folder, case)
    manager = TaskManager(include_path=str(task_dir), include_defaults=False)
    sides = {"harness": lambda: harness_side(loaded, suite_path, n),
             "lm-eval": lambda: lmeval_side(lm, manager, f"bench_{case}", n)}
    times, outputs = alternate(sides, reps)
    (ours, our_scores), (theirs, their_scores) = outputs["harness"], outputs["lm-eval"]
    same = sum(a == b for a, b in zip(ours, theirs, strict=True))
    gap = max(abs(x - y) for a, b in zip(our_scores, their_scores, strict=True) for x, y in zip(a, b, strict=True))
    ratio = paired_ratio(times["lm-eval"], times["harness"])
    target = CASES[case]["target"]
    return Row(
        "choices", f"{case} ({n} examples, batch {BATCH_SIZE})", seconds(times["harness"]), seconds(times["lm-eval"]),
        ratio, f">= {target}x", ratio.median >= target and same == n,
        f"same prediction {same}/{n}; log-likelihoods within {gap:.1e}",
        raw={"times": times, "n": n},
    )


def run(quick: bool) -> list[Row]:
    offline()
    logging.getLogger("lm-eval").setLevel(logging.ERROR)
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    from lm_eval.models.huggingface import HFLM

    from harness import models

    loaded = models.load(MODEL, device="cpu")
    lm = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=BATCH_SIZE)
    with tempfile.TemporaryDirectory(prefix="bench-choices-") as tmp:
        return [compare(case, loaded, lm, Path(tmp), quick) for case in CASES]


if __name__ == "__main__":
    child_main(run, __doc__)
