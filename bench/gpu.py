"""7. GPU: LoRA training throughput and model FLOPs utilisation in bf16 at real model shapes, generation
throughput, and a tiny model's loss against the CPU float32 result.

`python -m bench.gpu` on a machine with an NVIDIA GPU; `python -m bench.gpu --cpu-tiny` runs the same
code at tiny shapes on the CPU (a smoke run: its figures say nothing about a GPU). The models are
random-initialised from configs with the shapes of Qwen2.5-0.5B and Llama-3.2-1B (no download).
Training goes through the harness's own loop (`harness.finetune`, length-grouped batches), generation
through the harness's greedy decoding (`harness.predict.greedy`).

Model FLOPs per trained (non-padding) token, LoRA with frozen base weights: 4 x the parameters of
every matrix multiply (forward, and the backward pass to the inputs; the frozen weights get no
gradient) + 12 x layers x hidden size x mean sequence length for attention (forward and backward).
Utilisation is that times tokens per second over the GPU's dense bf16 peak.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from bench import Row, offline

SHAPES: dict[str, tuple[str, dict]] = {
    "qwen2.5-0.5b shape": ("qwen2", {"hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
                                     "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
                                     "tie_word_embeddings": True, "rope_theta": 1e6}),
    "llama-3.2-1b shape": ("llama", {"hidden_size": 2048, "intermediate_size": 8192, "num_hidden_layers": 16,
                                     "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
                                     "tie_word_embeddings": True, "rope_theta": 500000.0}),
}
TINY: dict[str, tuple[str, dict]] = {
    "tiny qwen2 shape": ("qwen2", {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                                   "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512,
                                   "tie_word_embeddings": True}),
    "tiny llama shape": ("llama", {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                                   "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512,
                                   "tie_word_embeddings": True}),
}
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0,
                    "4090": 165.0}


@dataclass
class Plan:
    """Sizes of one run: real shapes on a GPU, tiny ones for the CPU smoke run."""

    device: str
    dtype: torch.dtype
    shapes: dict[str, tuple[str, dict]]
    batch: int
    lengths: tuple[int, int]
    steps: int
    warmup_steps: int
    gen_batch: int
    prompt_len: int
    new_tokens: int


def plan(cpu_tiny: bool) -> Plan:
    if cpu_tiny:
        return Plan("cpu", torch.bfloat16, TINY, 4, (16, 48), 4, 1, 4, 16, 8)
    return Plan("cuda", torch.bfloat16, SHAPES, 8, (256, 1024), 30, 5, 32, 512, 128)


def build(model_type: str, shape: dict, device: str, dtype: torch.dtype, seed: int = 0) -> Any:
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.for_model(model_type, max_position_embeddings=4096, **shape)
    torch.manual_seed(seed)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype)
    model.generation_config.eos_token_id = None  # random weights: decode every requested token
    return model.eval()


class SyntheticTask:
    """Random prompt -> completion rows (loss on the second half) for the harness's training loop."""

    def __init__(self, vocab: int, device: str, n_rows: int, lengths: tuple[int, int], seed: int = 0):
        from harness.finetune.causal_data import IGNORE, CausalRow

        gen = torch.Generator().manual_seed(seed)
        self.device = device
        self.rows = []
        for _ in range(n_rows):
            n = int(torch.randint(lengths[0], lengths[1] + 1, (1,), generator=gen))
            ids = torch.randint(3, vocab, (n,), generator=gen).tolist()
            self.rows.append(CausalRow(ids, [IGNORE] * (n // 2) + ids[n // 2:]))

    def length(self, row: Any) -> int:
        return len(row.input_ids)

    def collate(self, rows: list) -> dict:
        from harness.finetune.causal_data import collate_causal

        return {k: v.to(self.device) for k, v in collate_causal(rows, 0).items()}

    def target_count(self, batch: dict) -> int:
        return int((batch["labels"][:, 1:] != -100).sum())

    def loss(self, model: Any, batch: dict) -> Any:
        from harness.finetune.causal_data import completion_loss

        return completion_loss(model, batch)


def lora_model(model: Any) -> Any:
    from peft import LoraConfig, TaskType, get_peft_model

    from harness.finetune import AUTO_TARGETS

    targets = AUTO_TARGETS[model.config.model_type]
    return get_peft_model(model, LoraConfig(task_type=TaskType.CAUSAL_LM, r=16, lora_alpha=32, lora_dropout=0.05,
                                            target_modules=targets))


def train_throughput(model: Any, p: Plan) -> dict:
    """Tokens per second of the harness's LoRA loop (after warm-up steps) and the FLOPs it implies."""
    from harness.config import LoraConfig
    from harness.finetune.lora import training_loop

    wrapped = lora_model(model)
    task = SyntheticTask(model.config.vocab_size, p.device, p.batch * (p.steps + p.warmup_steps), p.lengths)
    lora = LoraConfig(batch_size=p.batch, learning_rate=1e-4, max_length=p.lengths[1], eval_every=10**6)
    training_loop(wrapped, task, task.rows[: p.batch * p.warmup_steps], [], lora, p.warmup_steps, 0, None)
    _sync(p.device)
    _, stats = training_loop(wrapped, task, task.rows[p.batch * p.warmup_steps:], [], lora, p.steps, 0, None)
    _sync(p.device)
    per_s = stats["tokens"] / stats["train_s"]
    mean_len = sum(task.length(r) for r in task.rows) / len(task.rows)
    flops = per_s * flops_per_token(model, mean_len)
    return {"tokens_per_s": per_s, "model_tflops": flops / 1e12, "mean_length": mean_len}


def flops_per_token(model: Any, mean_len: float) -> float:
    """4 x matmul parameters (LM head included) + 12 x layers x hidden x mean length (attention)."""
    cfg = model.config
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    matmul = sum(m.weight.numel() for name, m in base.named_modules()
                 if isinstance(m, torch.nn.Linear) and "lora_" not in name)
    return 4 * matmul + 12 * cfg.num_hidden_layers * cfg.hidden_size * mean_len


def generation_throughput(model: Any, p: Plan) -> dict:
    from harness.predict.greedy import greedy_new_tokens

    ids = torch.randint(3, model.config.vocab_size, (p.gen_batch, p.prompt_len), device=p.device)
    mask = torch.ones_like(ids)
    greedy_new_tokens(model, None, ids[:, :8], mask[:, :8], 4, [])  # warm-up
    _sync(p.device)
    started = time.perf_counter()
    new = greedy_new_tokens(model, None, ids, mask, p.new_tokens, [])
    _sync(p.device)
    seconds = time.perf_counter() - started
    return {"new_tokens_per_s": sum(len(n) for n in new) / seconds, "seconds": seconds}


def loss_check(device: str) -> dict:
    """A tiny llama's loss on a fixed batch: CPU float32 against `device` in float32 and in bf16,
    and three LoRA training steps of the harness's loop on both."""
    model_type, shape = TINY["tiny llama shape"]
    task_cpu = SyntheticTask(shape["vocab_size"], "cpu", 8, (16, 32), seed=1)
    batch = task_cpu.collate(task_cpu.rows[:4])
    out: dict[str, float] = {}
    for name, dev, dtype in (("cpu_fp32", "cpu", torch.float32), ("dev_fp32", device, torch.float32),
                             ("dev_bf16", device, torch.bfloat16)):
        model = build(model_type, shape, dev, dtype, seed=7)
        with torch.no_grad():
            out[name] = float(model(**{k: v.to(dev) for k, v in batch.items()}).loss)
        if dtype == torch.float32:
            out[f"{name}_trained"] = _trained_loss(model, shape["vocab_size"], dev)
    return out


def _trained_loss(model: Any, vocab: int, device: str) -> float:
    from harness.config import LoraConfig
    from harness.finetune.lora import seed_everything, training_loop

    seed_everything(0)
    wrapped = lora_model(model)
    for module in wrapped.modules():  # no dropout: the two devices must draw nothing random
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    task = SyntheticTask(vocab, device, 8, (16, 32), seed=1)
    log, _ = training_loop(wrapped, task, task.rows, [], LoraConfig(batch_size=4, learning_rate=1e-2, eval_every=10**6),
                   3, 0, None)
    return log[-1]["loss"]


def _count(n: int) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.0f}M" if n >= 1e6 else f"{n / 1e3:.0f}K"


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def peak_tflops(override: float | None) -> float | None:
    if override:
        return override
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)


def run_all(cpu_tiny: bool, peak_override: float | None = None) -> list[Row]:
    offline()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    p = plan(cpu_tiny)
    peak = None if cpu_tiny else peak_tflops(peak_override)
    where = "CPU smoke run at tiny shapes; GPU figures pending" if cpu_tiny else torch.cuda.get_device_name()
    rows = []
    for label, (model_type, shape) in p.shapes.items():
        model = build(model_type, shape, p.device, p.dtype)
        params = sum(x.numel() for x in model.parameters())
        gen = generation_throughput(model, p)
        train = train_throughput(model, p)
        mfu = f", MFU {train['model_tflops'] / peak:.1%} of {peak:.0f} TFLOPS" if peak else ""
        rows.append(Row(
            "gpu", f"{label} ({_count(params)} parameters, bf16, {p.device})",
            f"LoRA train {train['tokens_per_s']:.0f} tok/s ({train['model_tflops']:.2f} model TFLOPS{mfu}); "
            f"generate {gen['new_tokens_per_s']:.0f} new tok/s (batch {p.gen_batch})", "-", None, "record", None,
            where, raw={"train": train, "generate": gen, "params": params}))
        del model
    check = loss_check(p.device)
    ok = (abs(check["dev_fp32"] - check["cpu_fp32"]) < 1e-4
          and abs(check["dev_bf16"] - check["cpu_fp32"]) < 0.02 * check["cpu_fp32"]
          and abs(check["dev_fp32_trained"] - check["cpu_fp32_trained"]) < 1e-3)
    rows.append(Row("gpu", f"tiny model loss, {p.device} against CPU float32", "-", "-", None,
                    "fp32 within 1e-4, bf16 within 2%, 3 LoRA steps within 1e-3", ok,
                    ", ".join(f"{k} {v:.5f}" for k, v in check.items()), raw=check))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("--cpu-tiny", action="store_true", help="tiny shapes on the CPU (a smoke run)")
    parser.add_argument("--auto", action="store_true", help="the GPU run where there is a GPU, else --cpu-tiny")
    parser.add_argument("--quick", action="store_true", help="accepted for `python -m bench`; no effect")
    parser.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, where it is not known here")
    parser.add_argument("--json", type=Path, help="write the rows here (default: print them)")
    args = parser.parse_args()
    cpu_tiny = args.cpu_tiny or (args.auto and not torch.cuda.is_available())
    if not cpu_tiny and not torch.cuda.is_available():
        raise SystemExit("bench.gpu: no CUDA GPU here; use --cpu-tiny for the CPU smoke run")
    text = json.dumps([r.as_dict() for r in run_all(cpu_tiny, args.peak_tflops)], indent=1)
    if args.json:
        args.json.write_text(text, encoding="utf-8")
    else:
        print(text)


if __name__ == "__main__":
    main()
