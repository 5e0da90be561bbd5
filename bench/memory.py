"""9. Peak memory: base + LoRA evaluation of SmolLM2-135M on long documents, with and without the budget.

The first 100 SAMSum dialogues (16 with --quick; `$BENCH_MEMORY_DOCS` overrides either), each repeated
until it is about 1,000 tokens long, as a summarisation suite (chat template on, greedy, max_new_tokens
16, batch 16). One child process per side (both at once), so that the peaks do not mix: it loads the model, evaluates
the base, then the base with a LoRA adapter (rank 8 on q/k/v/o, saved, then loaded the way the runner
loads a saved adapter: `harness.finetune.adapter_applied`, on the base itself, no copy of its weights, taken
off after), and reports its peak resident memory (`VmHWM`, the whole process: weights, both evaluations).
"No budget" sets `evaluation.max_memory_gb` far above the machine (every batch keeps 16 rows); "budget" sets
it to BUDGET_GB (harness/predict/memory.py shrinks batches of long rows to what fits beside what the process
already holds: weights, libraries).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

from bench import REPO, Row, child_main, offline, shared_data, thread_env

MODEL = "pack:smollm2-135m-instruct"
N = (100, 16)  # full, quick
BATCH_SIZE = 16
DOC_TOKENS = 1000
MAX_NEW_TOKENS = 16
BUDGET_GB = 2.5  # the process's budget, under the 3 GB target (harness/predict/memory.py)
TARGET_GB = 3.0
SIDES = {"no budget": 1e6, "budget": BUDGET_GB}
SUITE = """name: bench_long
kind: generation
data: {{test: "{path}"}}
fields: {{reference: summary}}
template: "Summarise this conversation in one sentence.\\n\\n{{{{ document | trim }}}}"
chat_template: "on"
generation: {{max_new_tokens: {max_new}, stop: ["\\n\\n"]}}
metrics: [rouge]
"""


def long_documents(tokenizer, n: int) -> list[dict]:
    """The first n SAMSum dialogues, each repeated until DOC_TOKENS tokens and cut there."""
    rows = [json.loads(line) for line in shared_data("samsum_test.jsonl").read_text("utf-8").splitlines()[:n]]
    out = []
    for row in rows:
        text = row["document"]
        while len(tokenizer(text, add_special_tokens=False)["input_ids"]) < DOC_TOKENS:
            text += "\n" + row["document"]
        ids = tokenizer(text, add_special_tokens=False)["input_ids"][:DOC_TOKENS]
        out.append({"id": row.get("id", str(len(out))), "document": tokenizer.decode(ids), "summary": row["summary"]})
    return out


def peak_mb() -> float:
    """The process's peak resident memory so far (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def evaluate_side(budget_gb: float, n: int) -> dict:
    """In this (child) process: load, evaluate base then LoRA; peaks and batch sizes."""
    offline()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    from harness import models
    from harness.finetune import adapter_applied
    from harness.predict import Predictor
    from harness.suites import load_suite

    loaded = models.load(MODEL, device="cpu")
    after_load = peak_mb()
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        data = Path(tmp) / "long.jsonl"
        data.write_text("".join(json.dumps(r) + "\n" for r in long_documents(loaded.tokenizer, n)), "utf-8")
        suite_path = Path(tmp) / "long.yaml"
        suite_path.write_text(SUITE.format(path=data, max_new=MAX_NEW_TOKENS), encoding="utf-8")
        suite = load_suite(str(suite_path))
        adapter, digest = save_adapter(loaded, Path(tmp) / "adapter")
        examples = suite.examples("test")
        result: dict = {"after_load_mb": after_load, "n": len(examples)}
        base = Predictor(loaded.model, loaded.tokenizer, "causal", "cpu")
        result["base"] = evaluate_variant(nullcontext(base), loaded.tokenizer, suite, examples, budget_gb)
        result["lora"] = evaluate_variant(adapter_applied(loaded, suite, adapter, digest), loaded.tokenizer, suite,
                                          examples, budget_gb)
    result["peak_mb"] = peak_mb()
    return result


def save_adapter(loaded, folder: Path) -> tuple[Path, str]:
    """A fresh LoRA adapter (rank 8 on q/k/v/o) for the model, saved to `folder`: the folder and its hash."""
    from peft import LoraConfig, get_peft_model

    from harness.finetune.inplace import adapter_on
    from harness.models import hash_files

    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "k_proj", "v_proj", "o_proj"])
    with adapter_on(loaded.model, lambda model: get_peft_model(model, config)) as fresh:
        fresh.save_pretrained(folder)
    return folder, hash_files(sorted(p for p in folder.rglob("*") if p.is_file()))


def evaluate_variant(predictor_block, tokenizer, suite, examples, budget_gb: float) -> dict:
    """One variant's predictions with the predictor `predictor_block` gives for its block: peak, wall, batches."""
    from harness.predict import DecodingStats, predict

    stats, started = DecodingStats(), time.perf_counter()
    with predictor_block as predictor:
        if predictor is None:
            raise RuntimeError("bench.memory: the saved adapter's files changed before it was loaded")
        preds = predict(predictor, suite, examples, BATCH_SIZE, max_memory_gb=budget_gb, stats=stats)
    return {"peak_mb": peak_mb(), "wall_s": time.perf_counter() - started, "batch_sizes": stats.batch_sizes,
            "failed": sum(1 for p in preds if p.error),
            "prompt_tokens": max(len(tokenizer(p.input, add_special_tokens=False)["input_ids"]) for p in preds)}


def run_sides(n: int) -> dict[str, dict]:
    """Each side in its own child process (their peaks are their own, so they may run at once)."""
    with tempfile.TemporaryDirectory(prefix="bench-memory-side-") as tmp:
        outs = {name: Path(tmp) / f"side{i}.json" for i, name in enumerate(SIDES)}
        children = {name: subprocess.Popen([sys.executable, "-m", "bench.memory", "side", str(SIDES[name]), str(n),
                                            str(out)], cwd=REPO, env=thread_env(), stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT, text=True) for name, out in outs.items()}
        results = {}
        for name, child in children.items():
            log, _ = child.communicate()
            if child.returncode != 0 or not outs[name].is_file():
                raise SystemExit(f"bench.memory: side {name!r} failed: {log[-2000:]}")
            results[name] = json.loads(outs[name].read_text("utf-8"))
        return results


def run(quick: bool) -> list[Row]:
    n = int(os.environ.get("BENCH_MEMORY_DOCS") or N[1 if quick else 0])
    sides = run_sides(n)
    rows = []
    for name, side in sides.items():
        gb = side["peak_mb"] / 1024
        batches = sorted(set(side["base"]["batch_sizes"]))
        case = (f"{side['n']} documents of ~{DOC_TOKENS} tokens, batch {BATCH_SIZE}, base + LoRA, "
                f"max_memory_gb {'unset (1e6)' if name == 'no budget' else BUDGET_GB}")
        check = (f"peak {gb:.2f} GB (after loading {side['after_load_mb'] / 1024:.2f} GB, after base "
                 f"{side['base']['peak_mb'] / 1024:.2f} GB); batch sizes {batches}; failed "
                 f"{side['base']['failed'] + side['lora']['failed']}; wall base {side['base']['wall_s']:.0f} s, "
                 f"LoRA {side['lora']['wall_s']:.0f} s")
        rows.append(Row("memory", case + f" ({name})", f"{gb:.2f} GB", "-", None, f"< {TARGET_GB} GB",
                        gb < TARGET_GB, check, raw=side))
    return rows


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "side":  # a child: one side, its figures as JSON
        budget, count, target = float(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
        target.write_text(json.dumps(evaluate_side(budget, count)), encoding="utf-8")
    else:
        child_main(run, __doc__)
