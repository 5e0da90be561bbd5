"""What a plan will cost before it runs: per item (candidate x variant x suite) the examples evaluated, the
LoRA training steps, the tokens processed and the model's parameter count (read from its config, no weights
loaded); one plan line per item, and a warning when the plan is large for the machine.

Tokens are estimated from characters: about 4 characters a token (English text with a BPE vocabulary; other
scripts and code run denser), so every token figure here is an estimate, shown with `~`. An item's work is
token-parameters: a forward pass costs about 2 x parameters FLOPs a token, a training step about three times
a forward (backward twice the forward), so work = parameters x (evaluation tokens + 3 x training tokens).
lm-eval tasks are not estimated (lm-eval chooses its own requests).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from harness.config import CandidateConfig, ExperimentConfig, LoraConfig
from harness.kinds import ModelKind, Variant
from harness.progress import Reporter, duration
from harness.suites import Example, Suite

CHARS_PER_TOKEN = 4
TRAIN_FACTOR = 3  # a training token costs about three forward tokens (forward + backward)
UNKNOWN_PARAMETERS = 100_000_000  # an item whose model's size is unknown is weighed as a 100M model
# token-parameters a second (a token through a model of N parameters is N token-parameters). The CPU figure is
# calibrated on the demo: its estimate is 2.3e13 token-parameters, done in 225-365 s on this project's 2-core
# machine (README, bench/RESULTS.md), 3-5e10 a core. A GPU's figure is a rough order of magnitude (bfloat16 at a
# few percent of an H100's peak), enough to tell an evening from a week.
CPU_WORK_PER_CORE_S = 4e10
GPU_WORK_PER_S = 5e13
LARGE_PLAN_S = 30 * 60  # a plan estimated past this on the machine gets a warning


@dataclass(frozen=True)
class ItemCost:
    """What one item is expected to cost; `not_applicable`: why it will not run (and costs nothing)."""

    candidate: str
    variant: Variant
    suite: str
    examples: int = 0
    train_steps: int = 0
    eval_tokens: int = 0
    train_tokens: int = 0
    parameters: int | None = None
    not_applicable: str | None = None
    kind: ModelKind | None = None

    @property
    def label(self) -> str:
        """As the runner labels the item's evaluation (`llama / lora / cls`)."""
        return f"{self.candidate} / {self.variant} / {self.suite}"

    @property
    def train_label(self) -> str | None:
        """As the runner labels the item's training, for a lora item that trains."""
        return f"train LoRA {self.candidate} / {self.suite}" if self.train_steps else None

    @property
    def tokens(self) -> int:
        return self.eval_tokens + self.train_tokens

    @property
    def eval_work(self) -> float:
        """Token-parameters of the evaluation (a model of unknown size weighs UNKNOWN_PARAMETERS)."""
        return float(self.eval_tokens) * (self.parameters or UNKNOWN_PARAMETERS)

    @property
    def train_work(self) -> float:
        return float(TRAIN_FACTOR * self.train_tokens) * (self.parameters or UNKNOWN_PARAMETERS)

    @property
    def work(self) -> float:
        return self.eval_work + self.train_work

    def line(self) -> str:
        """`llama / lora / cls: 200 examples, 30 training steps, ~41k tokens`."""
        if self.not_applicable:
            return f"{self.label}: not applicable ({self.not_applicable})"
        return f"{self.label}: {self.amounts()}"

    def amounts(self) -> str:
        """`200 examples, 30 training steps, ~41k tokens`."""
        parts = [f"{self.examples} examples"]
        if self.train_steps:
            parts.append(f"{self.train_steps} training steps")
        parts.append(f"~{short(self.tokens)} tokens")
        return ", ".join(parts)


@dataclass(frozen=True)
class Machine:
    """What the plan runs on: CPU cores, memory, GPUs and the memory of one."""

    cpus: int
    memory_bytes: int
    gpus: int = 0
    gpu_memory_bytes: int = 0

    @classmethod
    def detect(cls, device: str = "auto") -> Machine:
        """This machine (the cores this process may use; memory capped by its cgroup); GPUs unless `device`
        says cpu."""
        gpus, gpu_memory = 0, 0
        if device in ("auto", "cuda"):
            import torch

            if torch.cuda.is_available():
                gpus, gpu_memory = torch.cuda.device_count(), torch.cuda.get_device_properties(0).total_memory
        return cls(len(os.sched_getaffinity(0)), _memory_bytes(), gpus, gpu_memory)

    @property
    def work_per_s(self) -> float:
        return GPU_WORK_PER_S * self.gpus if self.gpus else CPU_WORK_PER_CORE_S * self.cpus

    @property
    def model_memory_bytes(self) -> int:
        """Where a model's weights live: one GPU's memory, else the machine's."""
        return self.gpu_memory_bytes if self.gpus else self.memory_bytes

    def describe(self) -> str:
        if self.gpus:
            return f"{self.gpus} GPU(s) of {self.gpu_memory_bytes / 2**30:.0f} GiB"
        return f"{self.cpus} CPU core(s), {self.memory_bytes / 2**30:.0f} GiB"

    def seconds(self, work: float) -> float:
        return work / self.work_per_s


def _memory_bytes() -> int:
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        return min(total, int(limit)) if limit.isdigit() else total
    except OSError:
        return total


# ---------------------------------------------------------------------------------------------------
# the estimate


def estimate(cfg: ExperimentConfig, suites: list[Suite],
             done: set[tuple[str, str, str]] | frozenset = frozenset(),
             adapters: set[tuple[str, str]] | frozenset = frozenset()) -> list[ItemCost]:
    """Every native item of the plan not in `done` (candidate, variant, suite), in the runner's order;
    `adapters`: the (candidate, suite) whose LoRA adapter exists already (no training counted)."""
    out = []
    for candidate in cfg.candidates:
        kind, parameters = model_facts(candidate, cfg)
        for suite in suites:
            for variant in cfg.variants:
                if (candidate.name, variant, suite.name) in done:
                    continue
                cost = item_cost(cfg, candidate, suite, variant, kind, parameters)
                if (candidate.name, suite.name) in adapters:
                    cost = replace(cost, train_steps=0, train_tokens=0)
                out.append(cost)
    return out


def item_cost(cfg: ExperimentConfig, candidate: CandidateConfig, suite: Suite, variant: Variant,
              kind: ModelKind | None, parameters: int | None) -> ItemCost:
    """One item's cost; `kind` None (unknown): assumed applicable."""
    key = {"candidate": candidate.name, "variant": variant, "suite": suite.name, "parameters": parameters,
           "kind": kind}
    if kind == "encoder" and suite.kind == "generation":
        return ItemCost(**key, not_applicable="an encoder cannot generate")
    examples = suite.examples("test", cfg.evaluation.max_examples)
    eval_tokens = sum(example_tokens(suite, ex) for ex in examples)
    steps, train_tokens = training_cost(suite, cfg.lora_for(candidate)) if variant == "lora" else (0, 0)
    return ItemCost(**key, examples=len(examples), train_steps=steps, eval_tokens=eval_tokens,
                    train_tokens=train_tokens)


def tokens_of(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def example_tokens(suite: Suite, example: Example) -> int:
    """Tokens one example costs to evaluate: its prompt, then each choice scored or the most it may generate."""
    if suite.kind == "generation":
        return tokens_of(example.prompt) + suite.config.generation.max_new_tokens
    return tokens_of(example.prompt) + sum(tokens_of(suite.continuation(c)) for c in example.choices)


def training_cost(suite: Suite, lora: LoraConfig) -> tuple[int, int]:
    """(steps, tokens) of one LoRA training: the steps as `harness.finetune.lora` counts them; tokens of the
    training batches (rows cut at max_length) plus the validation passes every `eval_every` steps."""
    from harness.finetune.lora import training_steps

    train = suite.examples("train", lora.max_train_examples) if suite.has_split("train") else []
    val = suite.examples("validation", lora.max_eval_examples) if suite.has_split("validation") else []
    steps = training_steps(lora, len(train))

    def row(ex: Example) -> int:
        return min(lora.max_length, tokens_of(ex.prompt) + tokens_of(ex.target) + 1)

    per_row = sum(row(ex) for ex in train) / len(train) if train else 0.0
    val_tokens = sum(row(ex) for ex in val) * (steps // lora.eval_every + (steps % lora.eval_every > 0))
    return steps, round(steps * min(lora.batch_size, len(train)) * per_row) + val_tokens


def model_facts(candidate: CandidateConfig, cfg: ExperimentConfig) -> tuple[ModelKind | None, int | None]:
    """The candidate's kind and parameter count from its config, no weights loaded; (None, None) when the
    config cannot be read this way (a plug-in loader, a hub model not cached)."""
    from harness import models

    try:
        _, loader = models.loader_for(candidate.model)
        if loader.load is not None:
            return None, None
        ref = models.resolve(candidate.model)
        config = models.load_config(ref, cfg.trust_remote_code)
        kind = models.detect_kind(config, candidate.kind)
    except Exception:  # noqa: BLE001 - an estimate never stops a run; prepare() reports a bad model
        return None, None
    return kind, parameter_count(config, kind, cfg.trust_remote_code)


def parameter_count(config: Any, kind: ModelKind, trust_remote_code: bool = False) -> int | None:
    """The parameters of the model the runner loads for `kind`, built on PyTorch's meta device (shapes only,
    no memory, no weights read); None if transformers cannot build it from the config."""
    import torch

    from harness.models import model_class

    try:
        with torch.device("meta"):
            model = model_class(kind).from_config(config, trust_remote_code=trust_remote_code)
    except Exception:  # noqa: BLE001 - an architecture transformers cannot build this way: size unknown
        return None
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------------
# what to show


def short(n: float) -> str:
    """41k, 1.2M, 3.4B."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            value = n / size
            return f"{value:.1f}{suffix}" if value < 10 else f"{value:.0f}{suffix}"
    return f"{n:.0f}"


def plan_lines(costs: list[ItemCost]) -> list[str]:
    """One line per item, then the totals and each candidate's size."""
    lines = [c.line() for c in costs]
    runs = [c for c in costs if not c.not_applicable]
    sizes = {c.candidate: c.parameters for c in costs}
    shown = ", ".join(f"{name} {short(p) if p else '?'} parameters" for name, p in sizes.items())
    lines.append(f"total: {len(costs)} item{'s' if len(costs) != 1 else ''}, {sum(c.examples for c in runs)} examples, "
                 f"{sum(c.train_steps for c in runs)} training steps, ~{short(sum(c.tokens for c in runs))} tokens"
                 + (f"; {shown}" if shown else ""))
    return lines


def plan_warning(costs: list[ItemCost], machine: Machine, bytes_per_parameter: int | None = None) -> str | None:
    """A warning when the plan is large for the machine: its work past LARGE_PLAN_S at the machine's speed, or
    a model larger than the memory its weights live in (an encoder's LoRA training loads a second copy with
    its task head; causal and seq2seq adapters go onto the base itself). None: it fits.
    `bytes_per_parameter`: 4 (float32) on a CPU, 2 (bfloat16) on a GPU unless given."""
    width = bytes_per_parameter or (2 if machine.gpus else 4)
    problems = []
    for name, parameters, trains in _models(costs):
        need = parameters * width * (2 if trains else 1)  # an encoder trains a head model beside the base
        if need > machine.model_memory_bytes:
            problems.append(f"{name} has ~{short(parameters)} parameters, ~{need / 2**30:.0f} GiB "
                            f"{'with its LoRA head model ' if trains else ''}at {width} bytes each, more than "
                            f"the {machine.model_memory_bytes / 2**30:.0f} GiB of {machine.describe()}")
    work = sum(c.work for c in costs if not c.not_applicable)
    seconds = machine.seconds(work)
    if seconds > LARGE_PLAN_S:
        problems.append(f"~{work:.1e} token-parameters of work, about {duration(seconds)} on {machine.describe()} "
                        f"(at ~{machine.work_per_s:.1e}/s); cut evaluation.max_examples or lora.steps, drop "
                        "candidates, or run on GPUs (--executor ray)")
    return "this plan is large for the machine: " + "; ".join(problems) if problems else None


def _models(costs: list[ItemCost]) -> list[tuple[str, int, bool]]:
    """(candidate, parameters, trains a LoRA on a second copy: an encoder's head model) for each candidate of
    known size."""
    seen: dict[str, tuple[int, bool]] = {}
    for c in costs:
        if c.parameters:
            trains = seen.get(c.candidate, (0, False))[1] or (bool(c.train_steps) and c.kind == "encoder")
            seen[c.candidate] = (c.parameters, trains)
    return [(name, p, trains) for name, (p, trains) in seen.items()]


def announce(reporter: Reporter, cfg: ExperimentConfig, suites: list[Suite],
             done: set[tuple[str, str, str]] | frozenset = frozenset(),
             machine: Machine | None = None,
             adapters: set[tuple[str, str]] | frozenset = frozenset()) -> list[ItemCost]:
    """Estimate the items not `done` (no training where `adapters` has the adapter already), and tell the
    reporter the plan (its lines, the warning if the plan is large for the machine, the machine's estimate of
    the time it takes); the costs."""
    costs = estimate(cfg, suites, done, adapters)
    machine = machine or Machine.detect(cfg.device)
    work = sum(c.work for c in costs if not c.not_applicable)
    reporter.plan_started(costs, plan_warning(costs, machine), machine.seconds(work))
    return costs
