"""2. Generation: the harness against lm-eval's `generate_until`, SAMSum summaries, greedy, same model object.

A fixed subset of SAMSum (the first 100 dialogues), SmolLM2-135M-Instruct with its chat template on
both sides, the same prompt, stop sequence, max_new_tokens and batch size. Both sides must produce
the same summary for every dialogue (compared after stripping surrounding whitespace, which the
harness strips and lm-eval keeps).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from bench import Row, alternate, child_main, offline, paired_ratio, seconds, shared_data

MODEL = "pack:smollm2-135m-instruct"
BATCH_SIZE = 16
MAX_NEW_TOKENS = 64
N = (100, 32)  # full, quick; 2 repetitions of each side (about 5 minutes a repetition on 2 CPU cores)
TARGET = 1.2
PROMPT = "Summarise this conversation in one sentence.\\n\\n{{ document | trim }}"

SUITE = """name: bench_samsum
kind: generation
data: {{test: "{path}"}}
fields: {{reference: summary}}
template: "{prompt}"
chat_template: "on"
generation: {{max_new_tokens: {max_new}, stop: ["\\n\\n"]}}
metrics: [rouge]
"""

TASK = """task: bench_samsum
dataset_path: json
dataset_kwargs: {{data_files: {{test: "{path}"}}}}
test_split: test
output_type: generate_until
doc_to_text: "{prompt}"
doc_to_target: summary
generation_kwargs: {{until: ["\\n\\n"], max_gen_toks: {max_new}, do_sample: false}}
metric_list: [{{metric: exact_match}}]
"""


def write_configs(folder: Path) -> tuple[Path, Path]:
    data = shared_data("samsum_test.jsonl")
    suite = folder / "samsum_suite.yaml"
    suite.write_text(SUITE.format(path=data, prompt=PROMPT, max_new=MAX_NEW_TOKENS), encoding="utf-8")
    tasks = folder / "tasks"
    tasks.mkdir(exist_ok=True)
    (tasks / "bench_samsum.yaml").write_text(TASK.format(path=data, prompt=PROMPT, max_new=MAX_NEW_TOKENS),
                                             encoding="utf-8")
    return suite, tasks


def harness_side(loaded: Any, suite_path: Path, n: int) -> tuple[list[str], list[str]]:
    from harness.predict import Predictor, predict
    from harness.suites import load_suite

    suite = load_suite(str(suite_path))
    predictor = Predictor(loaded.model, loaded.tokenizer, "causal", loaded.device)
    preds = predict(predictor, suite, suite.examples("test", n), BATCH_SIZE)
    return [p.input for p in preds], [p.output for p in preds]


def lmeval_side(lm: Any, manager: Any, n: int) -> tuple[list[str], list[str]]:
    from lm_eval import simple_evaluate

    out = simple_evaluate(model=lm, tasks=["bench_samsum"], task_manager=manager, limit=n, bootstrap_iters=0,
                          log_samples=True, apply_chat_template=True)
    samples = sorted(out["samples"]["bench_samsum"], key=lambda s: s["doc_id"])
    return [s["arguments"][0][0] for s in samples], [s["resps"][0][0] for s in samples]


def run(quick: bool) -> list[Row]:
    offline()
    logging.getLogger("lm_eval").setLevel(logging.ERROR)
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    from harness import models

    loaded = models.load(MODEL, device="cpu")
    lm = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer, batch_size=BATCH_SIZE)
    n = N[1 if quick else 0]
    with tempfile.TemporaryDirectory(prefix="bench-generation-") as tmp:
        suite_path, task_dir = write_configs(Path(tmp))
        manager = TaskManager(include_path=str(task_dir), include_defaults=False)
        times, outputs = alternate({"harness": lambda: harness_side(loaded, suite_path, n),
                                    "lm-eval": lambda: lmeval_side(lm, manager, n)}, 2)
    (our_prompts, ours), (their_prompts, theirs) = outputs["harness"], outputs["lm-eval"]
    same_prompt = sum(a == b for a, b in zip(our_prompts, their_prompts, strict=True))
    same = sum(a.strip() == b.strip() for a, b in zip(ours, theirs, strict=True))
    ratio = paired_ratio(times["lm-eval"], times["harness"])
    differing = [i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a.strip() != b.strip()]
    return [Row(
        "generation", f"samsum ({n} dialogues, batch {BATCH_SIZE}, max_new_tokens {MAX_NEW_TOKENS})",
        seconds(times["harness"]), seconds(times["lm-eval"]), ratio, f">= {TARGET}x",
        ratio.median >= TARGET and same == n,
        f"same prompt {same_prompt}/{n}; same output {same}/{n}",
        raw={"times": times, "n": n, "differing": differing[:10],
             "mean_output_words": sum(len(o.split()) for o in ours) / max(1, len(ours))},
    )]


if __name__ == "__main__":
    child_main(run, __doc__)
