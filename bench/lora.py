"""3. LoRA fine-tuning: the harness's loop against the plain recipe (transformers.Trainer + peft).

Same model (SmolLM2-135M-Instruct), data (SAMSum dialogue -> summary rows, built once by the
harness's own `causal_rows`, loss on the summary only), LoRA settings, number of examples, steps,
batch size and seed. Baselines: Trainer padding every batch to max_length (the recipe's common
default), and Trainer with dynamic padding (pad to the longest row of each random batch). Reported:
non-padding tokens per second of training and the final eval loss, computed by the same function
(`harness.finetune.evaluate_loss`) on the same held-out rows for all three.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import Row, child_main, median, offline, paired_ratio, shared_data

MODEL = "pack:smollm2-135m-instruct"
SEED = 1234
TARGETS = {"trainer, pad to max_length": 1.5, "trainer, dynamic padding": 1.1}
LOSS_TOLERANCE = 0.01  # "equal" eval loss: different batch orders alone move it by about this much

SUITE = """name: bench_samsum_sft
kind: generation
data: {{source: "{path}", split_seed: 0}}
fields: {{reference: summary}}
template: "Summarise this conversation in one sentence.\\n\\n{{{{ document | trim }}}}"
chat_template: "on"
metrics: [rouge]
"""


def lora_config(quick: bool) -> Any:
    from harness.config import LoraConfig

    return LoraConfig(rank=8, alpha=16, dropout=0.05, learning_rate=5e-4, batch_size=8, max_length=384,
                      max_train_examples=16 if quick else 32, max_eval_examples=16 if quick else 24,
                      epochs=1.0, eval_every=10_000, warmup_ratio=0.1)


def load_task(folder: Path, quick: bool) -> tuple[Any, Any, Any]:
    from harness import models
    from harness.finetune import CausalTask
    from harness.suites import load_suite

    suite_path = folder / "samsum_sft.yaml"
    suite_path.write_text(SUITE.format(path=shared_data("samsum_test.jsonl")), encoding="utf-8")
    base = models.load(MODEL, device="cpu")
    suite = load_suite(str(suite_path))
    return base, suite, CausalTask(base, suite, lora_config(quick))


def harness_side(base: Any, suite: Any, lora: Any, out: Path) -> dict:
    from harness.finetune import CausalTask, train_lora
    from harness.finetune.causal_data import length_batches

    result = train_lora(base, suite, lora, SEED, out, "bench", "smollm2")
    lengths = [len(r.input_ids) for r in CausalTask(base, suite, lora).rows("train", lora.max_train_examples)]
    cells = sum(len(b) * max(lengths[i] for i in b) for b in length_batches(lengths, lora.batch_size, SEED, True))
    return {"tokens_per_s": result.tokens_per_s, "tokens": result.train_tokens, "eval_loss": result.final_val_loss,
            "padding_share": 1 - result.train_tokens / cells}


def trainer_side(task: Any, lora: Any, out: Path, pad_to_max: bool) -> dict:
    """The plain recipe: peft.get_peft_model + transformers.Trainer + DataCollatorForSeq2Seq."""
    import copy

    from peft import LoraConfig as PeftLora
    from peft import TaskType, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from harness.finetune import evaluate_loss, seed_everything, target_modules

    seed_everything(SEED)
    base = task.base
    model = get_peft_model(_float_copy(base.model), PeftLora(
        task_type=TaskType.CAUSAL_LM, r=lora.rank, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
        target_modules=target_modules(base.model.config.model_type, lora)))
    train_rows = task.rows("train", lora.max_train_examples)
    data = [{"input_ids": r.input_ids, "labels": r.labels, "attention_mask": [1] * len(r.input_ids)}
            for r in train_rows]
    tokenizer = copy.copy(base.tokenizer)
    tokenizer.padding_side = "right"
    pad = DataCollatorForSeq2Seq(tokenizer, padding="max_length" if pad_to_max else "longest",
                                 max_length=lora.max_length, label_pad_token_id=-100)
    cells = []

    def collator(features: list[dict]) -> dict:
        batch = pad(features)
        cells.append(batch["input_ids"].numel())
        return batch

    steps = -(-len(data) // lora.batch_size)
    args = TrainingArguments(
        output_dir=str(out), per_device_train_batch_size=lora.batch_size, max_steps=steps,
        learning_rate=lora.learning_rate, weight_decay=lora.weight_decay, warmup_steps=int(steps * lora.warmup_ratio),
        lr_scheduler_type="linear", max_grad_norm=1.0, seed=SEED, save_strategy="no", eval_strategy="no",
        logging_strategy="no", report_to=[], disable_tqdm=True, use_cpu=True, dataloader_num_workers=0,
        remove_unused_columns=False)
    trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=collator)
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    tokens = sum(len(r.input_ids) for r in train_rows)
    val_rows = task.rows("validation", lora.max_eval_examples)
    return {"tokens_per_s": tokens / seconds, "tokens": tokens, "padding_share": 1 - tokens / sum(cells),
            "eval_loss": evaluate_loss(model, task, val_rows, lora.batch_size)}


def _float_copy(model: Any) -> Any:
    """A copy of the model that Trainer accepts.

    The GGUF pack is dequantized to float32 when loaded, but transformers still marks the model as
    GGUF-quantized and Trainer refuses to train it; the weights are plain float tensors, so the copy
    drops the mark.
    """
    import copy

    clone = copy.deepcopy(model)
    clone.hf_quantizer = None
    clone.is_quantized = False
    return clone


def run(quick: bool) -> list[Row]:
    offline()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    reps = 2  # a repetition trains three adapters: about 4 minutes on 2 CPU cores
    lora = lora_config(quick)
    with tempfile.TemporaryDirectory(prefix="bench-lora-") as tmp:
        folder = Path(tmp)
        base, suite, task = load_task(folder, quick)
        sides = {"harness": lambda: harness_side(base, suite, lora, folder / "harness"),
                 "trainer, pad to max_length": lambda: trainer_side(task, lora, folder / "padmax", True),
                 "trainer, dynamic padding": lambda: trainer_side(task, lora, folder / "dynamic", False)}
        results: dict[str, list[dict]] = {name: [] for name in sides}
        names = list(sides)
        for rep in range(reps):
            for name in names if rep % 2 == 0 else names[::-1]:
                results[name].append(sides[name]())
    return [_row(name, results, lora, quick) for name in TARGETS]


def _row(baseline: str, results: dict[str, list[dict]], lora: Any, quick: bool) -> Row:
    ours, theirs = results["harness"], results[baseline]
    ratio = paired_ratio([r["tokens_per_s"] for r in ours], [r["tokens_per_s"] for r in theirs])
    our_loss, their_loss = median([r["eval_loss"] for r in ours]), median([r["eval_loss"] for r in theirs])
    target = TARGETS[baseline]
    same_tokens = {r["tokens"] for r in ours} == {r["tokens"] for r in theirs}
    return Row(
        "lora", f"vs {baseline} ({lora.max_train_examples} examples, batch {lora.batch_size}, "
        f"max_length {lora.max_length})",
        f"{median([r['tokens_per_s'] for r in ours]):.0f} tok/s, eval loss {our_loss:.4f}",
        f"{median([r['tokens_per_s'] for r in theirs]):.0f} tok/s, eval loss {their_loss:.4f}",
        ratio, f">= {target}x at eval loss <= (+{LOSS_TOLERANCE})",
        ratio.median >= target and our_loss <= their_loss + LOSS_TOLERANCE,
        f"same non-padding tokens trained: {'yes' if same_tokens else 'no'}; padding share "
        f"{median([r['padding_share'] for r in ours]):.0%} vs {median([r['padding_share'] for r in theirs]):.0%}",
        raw={"harness": ours, baseline: theirs, "quick": quick},
    )


if __name__ == "__main__":
    child_main(run, __doc__)
