"""LoRA fine-tuning with peft: a training loop that reads top to bottom.

Causal LMs learn prompt -> completion with the loss on completion tokens only; encoder-decoders
(seq2seq) learn the completion as the decoder's target, the prompt as the encoder's input. Encoders
learn a classification (or multiple-choice) head plus LoRA adapters. Training logs the loss every step and
the validation loss every `eval_every` steps, and saves the adapter with a content hash.

Causal and encoder-decoder adapters are trained and evaluated on the base model itself, never on a copy of
it: the adapter goes on for one `with` block and comes off after it (`harness.finetune.inplace`).
"""

from __future__ import annotations

import math
import random
import resource
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness.config import LoraConfig
from harness.finetune.causal_data import causal_rows, collate_causal, completion_loss, length_batches
from harness.finetune.encoder import EncoderTask
from harness.finetune.inplace import adapter_on
from harness.finetune.seq2seq import Seq2SeqTask
from harness.models import LoadedModel, hash_files
from harness.predict import Predictor
from harness.records import TrainingResult
from harness.suites import Suite

AUTO_TARGETS = {
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen2": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "qwen3": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "gemma": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "phi3": ["qkv_proj", "o_proj"],
    "gpt2": ["c_attn", "c_proj"],
    "gpt_neox": ["query_key_value", "dense"],
    "bert": ["query", "key", "value", "dense"],
    "roberta": ["query", "key", "value", "dense"],
    "distilbert": ["q_lin", "k_lin", "v_lin", "out_lin"],
    # encoder-decoders: self- and cross-attention of encoder and decoder
    "t5": ["q", "k", "v", "o"],
    "mt5": ["q", "k", "v", "o"],
    "bart": ["q_proj", "k_proj", "v_proj", "out_proj"],
    "mbart": ["q_proj", "k_proj", "v_proj", "out_proj"],
}

Progress = Callable[[int, int, float], None]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def target_modules(model_type: str, lora: LoraConfig) -> list[str] | None:
    if lora.target_modules != "auto":
        return list(lora.target_modules)
    return AUTO_TARGETS.get(model_type)  # None lets peft pick its own default for the architecture


def train_lora(base: LoadedModel, suite: Suite, lora: LoraConfig, seed: int, out_dir: Path, run_id: str,
               candidate: str, progress: Progress | None = None) -> TrainingResult:
    """Train one adapter for (candidate, suite) and save it under `out_dir/adapter`; the training record.

    A causal or encoder-decoder base is trained with the adapter on the base itself (no copy of its weights),
    taken off again afterwards, also when training raises (harness/finetune/inplace.py); an encoder trains
    its own model with a task head. `adapter_applied` puts the saved adapter on the base to evaluate it."""
    seed_everything(seed)
    reset_peak_memory(base.device)
    task = make_task(base, suite, lora)
    with task.adapted(target_modules(base.model.config.model_type, lora)) as model:
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
        train_rows = task.rows("train", lora.max_train_examples)
        val_rows = task.rows("validation", lora.max_eval_examples)
        steps = training_steps(lora, len(train_rows))
        log, stats = training_loop(model, task, train_rows, val_rows, lora, steps, seed, progress)
        model.eval()
        adapter_dir = out_dir / "adapter"
        model.save_pretrained(adapter_dir)
    files = sorted(p for p in adapter_dir.rglob("*") if p.is_file())
    val_losses = [e["loss"] for e in log if e["split"] == "validation"]
    train_losses = [e["loss"] for e in log if e["split"] == "train"]
    return TrainingResult(
        run_id, candidate, suite.name, str(adapter_dir), hash_files(files), trainable, total, steps,
        stats["tokens"], stats["tokens"] / max(stats["train_s"], 1e-9), stats["wall_s"], peak_memory_mb(base.device),
        float(np.mean(train_losses[-5:])), val_losses[-1] if val_losses else None, log,
    )


def training_steps(lora: LoraConfig, n_train_rows: int) -> int:
    """The optimiser steps one training takes: `steps`, or `epochs` passes over the rows in batches."""
    return lora.steps or max(1, math.ceil((lora.epochs or 1.0) * n_train_rows / lora.batch_size))


def make_task(base: LoadedModel, suite: Suite, lora: LoraConfig) -> Any:
    """The training task of the model's kind: causal SFT, encoder + head, or encoder-decoder SFT."""
    if base.kind == "causal":
        return CausalTask(base, suite, lora)
    if base.kind == "seq2seq":
        return Seq2SeqTask(base, suite, lora)
    return EncoderTask(base, suite, lora)


def training_loop(model: Any, task: Any, train_rows: list, val_rows: list, lora: LoraConfig, steps: int, seed: int,
          progress: Progress | None) -> tuple[list[dict], dict]:
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lora.learning_rate, weight_decay=lora.weight_decay)
    warmup = int(steps * lora.warmup_ratio)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: (s + 1) / max(1, warmup) if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup))
    )
    lengths = [task.length(r) for r in train_rows]
    log: list[dict] = []
    started, train_s, tokens, step, epoch = time.perf_counter(), 0.0, 0, 0, 0
    while step < steps:
        for batch_idx in length_batches(lengths, lora.batch_size, seed + epoch, lora.group_by_length):
            if step >= steps:
                break
            tick = time.perf_counter()
            model.train()
            batch = task.collate([train_rows[i] for i in batch_idx])
            loss = task.loss(model, batch)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            train_s += time.perf_counter() - tick
            tokens += int(batch["attention_mask"].sum())
            step += 1
            elapsed = time.perf_counter() - started
            log.append({"step": step, "split": "train", "loss": loss.item(), "elapsed_s": elapsed})
            if val_rows and (step % lora.eval_every == 0 or step == steps):
                val = evaluate_loss(model, task, val_rows, lora.batch_size)
                log.append({"step": step, "split": "validation", "loss": val, "elapsed_s": elapsed})
            if progress:
                progress(step, steps, loss.item())
        epoch += 1
    return log, {"tokens": tokens, "train_s": train_s, "wall_s": time.perf_counter() - started}


@torch.no_grad()
def evaluate_loss(model: Any, task: Any, rows: list, batch_size: int) -> float:
    """Mean loss over the validation rows, weighting each batch by its number of target tokens."""
    model.eval()
    total, weight = 0.0, 0
    for start in range(0, len(rows), batch_size):
        batch = task.collate(rows[start : start + batch_size])
        n = task.target_count(batch)
        total += task.loss(model, batch).item() * n
        weight += n
    return total / max(weight, 1)


def reset_peak_memory(device: str) -> None:
    """Start a fresh peak for one adapter: CUDA's own counter, or the process's resident high-water mark
    (Linux resets VmHWM when "5" is written to /proc/self/clear_refs)."""
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        return
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # not Linux (or not allowed): the peak falls back to the process's high-water mark so far


def peak_memory_mb(device: str) -> float:
    """The peak since reset_peak_memory: CUDA's peak allocation, or the process's peak resident memory."""
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class CausalTask:
    """Supervised fine-tuning of a causal LM on prompt -> completion."""

    def __init__(self, base: LoadedModel, suite: Suite, lora: LoraConfig):
        self.base, self.suite, self.lora = base, suite, lora

    def adapted(self, targets: list[str] | None) -> AbstractContextManager[Any]:
        """A fresh adapter on the base itself for the `with` block, taken off after it."""
        from peft import LoraConfig as PeftLora
        from peft import TaskType, get_peft_model

        config = PeftLora(task_type=TaskType.CAUSAL_LM, r=self.lora.rank, lora_alpha=self.lora.alpha,
                          lora_dropout=self.lora.dropout, target_modules=targets)
        return adapter_on(self.base.model, lambda model: get_peft_model(model, config))

    def rows(self, split: str, limit: int | None) -> list:
        examples = self.suite.examples(split, limit) if self.suite.has_split(split) else []
        return causal_rows(self.suite, self.base.tokenizer, examples, self.lora.max_length)

    def length(self, row: Any) -> int:
        return len(row.input_ids)

    def collate(self, rows: list) -> dict:
        batch = collate_causal(rows, self.base.tokenizer.pad_token_id)
        return {k: v.to(self.base.device) for k, v in batch.items()}

    def target_count(self, batch: dict) -> int:
        return int((batch["labels"][:, 1:] != -100).sum())

    def loss(self, model: Any, batch: dict) -> Any:
        return completion_loss(model, batch)

    def predictor(self, model: Any) -> Predictor:
        return Predictor(model, self.base.tokenizer, "causal", self.base.device)


def adapter_intact(path: Path, expected_hash: str) -> bool:
    """The adapter folder holds files whose hash is `expected_hash` (nothing changed them since training)."""
    files = sorted(p for p in path.rglob("*") if p.is_file())
    return bool(files) and hash_files(files) == expected_hash


@contextmanager
def adapter_applied(base: LoadedModel, suite: Suite | None, path: Path,
                    expected_hash: str) -> Iterator[Predictor | None]:
    """A saved adapter as a predictor for the `with` block; None if its files changed since training.

    On a causal or encoder-decoder base the adapter goes on the base itself and comes off when the block
    ends (the base is then exactly as before, also when the block raises); an encoder's adapter goes on a
    model of its own with the suite's task head, loaded for the block."""
    from peft import PeftModel

    if not adapter_intact(path, expected_hash):
        yield None
    elif base.kind in ("causal", "seq2seq"):
        with adapter_on(base.model, lambda model: PeftModel.from_pretrained(model, str(path))) as model:
            yield Predictor(model.eval(), base.tokenizer, base.kind, base.device)
    else:
        task = EncoderTask(base, suite, LoraConfig())  # type: ignore[arg-type]  # an encoder's adapter has a suite
        yield task.predictor(PeftModel.from_pretrained(task.head_model(), str(path)).eval())
