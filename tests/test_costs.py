"""Cost estimates before a run (harness.costs): examples, training steps as training takes them, tokens, the
parameter count from the config alone, one plan line per item, and the warning when a plan is large."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from test_runner import write_experiment

from harness import models
from harness.config import LoraConfig, load_experiment
from harness.costs import (
    CPU_WORK_PER_CORE_S,
    ItemCost,
    Machine,
    announce,
    estimate,
    example_tokens,
    model_facts,
    plan_lines,
    plan_warning,
    short,
    training_cost,
)
from harness.finetune import train_lora
from harness.progress import SilentReporter
from harness.suites import load_suite

GIB = 2**30
LAPTOP = Machine(cpus=2, memory_bytes=24 * GIB)


def _prepared(tmp_path: Path, causal_dir: Path, encoder_dir: Path, **kwargs):
    path = write_experiment(tmp_path, {"llama": causal_dir, "bert": encoder_dir}, ["cls", "mc", "gen"], **kwargs)
    cfg = load_experiment(path)
    return cfg, [load_suite(name, base=path.parent) for name in cfg.suites]


def test_every_item_in_the_runners_order_with_examples_steps_and_tokens(tmp_path, causal_dir, encoder_dir):
    cfg, suites = _prepared(tmp_path, causal_dir, encoder_dir, lora="steps: 7", evaluation="max_examples: 3")
    costs = estimate(cfg, suites)
    assert [c.label for c in costs] == [f"{c} / {v} / tiny_{s}" for c in ("llama", "bert")
                                        for s in ("cls", "mc", "gen") for v in ("base", "lora")]
    by = {c.label: c for c in costs}
    assert by["llama / base / tiny_cls"].examples == 3  # max_examples caps the 4 test rows
    assert by["llama / base / tiny_cls"].train_steps == 0 and by["llama / lora / tiny_cls"].train_steps == 7
    assert by["llama / lora / tiny_cls"].train_tokens > 0 and by["llama / base / tiny_cls"].train_tokens == 0
    gen = next(s for s in suites if s.name == "tiny_gen")
    prompts = [ex.prompt for ex in gen.examples("test", 3)]
    assert by["llama / base / tiny_gen"].eval_tokens == sum(math.ceil(len(p) / 4) + 6 for p in prompts)
    for label in ("bert / base / tiny_gen", "bert / lora / tiny_gen"):  # an encoder does not generate
        assert by[label].not_applicable and by[label].tokens == 0 and by[label].work == 0
    done = {("llama", "base", "tiny_cls"), ("bert", "lora", "tiny_mc")}
    assert {c.label for c in estimate(cfg, suites, done)} == set(by) - {"llama / base / tiny_cls",
                                                                        "bert / lora / tiny_mc"}


def test_choice_tokens_count_each_choice(tmp_path, causal_dir, encoder_dir):
    _, suites = _prepared(tmp_path, causal_dir, encoder_dir)
    mc = next(s for s in suites if s.name == "tiny_mc")
    ex = mc.examples("test")[0]
    assert example_tokens(mc, ex) == math.ceil(len(ex.prompt) / 4) + sum(
        math.ceil(len(mc.continuation(c)) / 4) for c in ex.choices)


@pytest.mark.parametrize("lora", [LoraConfig(steps=5, batch_size=2),
                                  LoraConfig(epochs=1.5, batch_size=4, max_train_examples=5),
                                  LoraConfig(epochs=2, batch_size=3)])
def test_training_steps_are_the_steps_training_takes(tmp_path, causal, lora):
    suite = load_suite(str(tiny_path(tmp_path, "classification")))
    lora = lora.model_copy(update={"max_length": 64, "eval_every": 2, "max_eval_examples": 2, "rank": 2})
    steps, tokens = training_cost(suite, lora)
    result = train_lora(causal, suite, lora, 1, tmp_path / "out", "run", "llama")
    assert steps == result.steps
    # the estimate is characters / 4 for the tiny word-level tokenizer too: the same order as what training saw
    assert result.train_tokens / 4 < tokens < result.train_tokens * 8


def tiny_path(folder: Path, kind: str) -> Path:
    import tiny_models

    return tiny_models.write_suite(folder / kind, kind)


@pytest.mark.parametrize("which", ["causal_dir", "encoder_dir"])
def test_parameter_count_from_the_config_equals_the_loaded_models(which, request):
    folder = request.getfixturevalue(which)
    cfg = load_experiment(write_experiment(Path(request.getfixturevalue("tmp_path")), {"m": folder}, ["cls"]))
    kind, parameters = model_facts(cfg.candidates[0], cfg)
    loaded = models.load(str(folder), device="cpu")
    assert kind == loaded.kind
    assert parameters == sum(p.numel() for p in loaded.model.parameters())


def test_a_model_whose_config_cannot_be_read_has_unknown_size(tmp_path, causal_dir):
    cfg = load_experiment(write_experiment(tmp_path, {"m": causal_dir}, ["cls"]))
    gone = cfg.candidates[0].model_copy(update={"model": str(tmp_path / "nowhere")})
    assert model_facts(gone, cfg) == (None, None)


def test_plan_line_per_item_and_totals():
    lora = ItemCost("llama", "lora", "cls", examples=200, train_steps=30, eval_tokens=9_000, train_tokens=32_000,
                    parameters=135_000_000)
    base = ItemCost("llama", "base", "cls", examples=200, eval_tokens=9_000, parameters=135_000_000)
    na = ItemCost("bert", "base", "gen", parameters=None, not_applicable="an encoder cannot generate")
    assert lora.line() == "llama / lora / cls: 200 examples, 30 training steps, ~41k tokens"
    assert base.line() == "llama / base / cls: 200 examples, ~9.0k tokens"
    assert na.line() == "bert / base / gen: not applicable (an encoder cannot generate)"
    assert plan_lines([lora, base, na])[-1] == ("total: 3 items, 400 examples, 30 training steps, ~50k tokens; "
                                                 "llama 135M parameters, bert ? parameters")
    assert [short(n) for n in (950, 41_000, 1_234_567, 8.03e9)] == ["950", "41k", "1.2M", "8.0B"]


def _item(parameters: int, eval_tokens: int, train_steps: int = 0, train_tokens: int = 0,
          kind: str = "causal") -> ItemCost:
    return ItemCost("big", "lora" if train_steps else "base", "s", 100, train_steps, eval_tokens, train_tokens,
                    parameters, kind=kind)


def test_no_warning_for_a_plan_that_fits():
    assert plan_warning([_item(135_000_000, 50_000, 30, 20_000)], LAPTOP) is None


def test_warning_when_the_work_is_past_half_an_hour_on_this_cpu():
    per_30_min = CPU_WORK_PER_CORE_S * LAPTOP.cpus * 1800
    tokens = int(per_30_min / 1e8 * 1.2)  # 20% more than half an hour's work for a 100M model
    warning = plan_warning([_item(100_000_000, tokens)], LAPTOP)
    assert warning and "token-parameters of work" in warning and "36 min" in warning and "2 CPU core" in warning
    assert plan_warning([_item(100_000_000, int(tokens / 1.5))], LAPTOP) is None
    assert plan_warning([_item(100_000_000, tokens)], Machine(2, 24 * GIB, gpus=1, gpu_memory_bytes=80 * GIB)) is None


def test_warning_when_a_model_is_bigger_than_the_memory():
    eight_b = _item(8_000_000_000, 10, 1, 10)  # float32: 32 GB; the adapter goes onto the base itself
    warning = plan_warning([eight_b], LAPTOP)
    assert warning and "big has ~8.0B parameters, ~30 GiB at 4 bytes" in warning and "head model" not in warning
    h200 = Machine(16, 128 * GIB, gpus=1, gpu_memory_bytes=139 * GIB)  # bfloat16: 15 GiB
    assert plan_warning([eight_b], h200) is None
    assert plan_warning([_item(5_000_000_000, 10, 1, 10)], LAPTOP) is None  # 19 GiB: fits beside no copy
    encoder = plan_warning([_item(5_000_000_000, 10, 1, 10, kind="encoder")], LAPTOP)  # trains a head model
    assert encoder and "~37 GiB with its LoRA head model" in encoder


class _Told(SilentReporter):
    def plan_started(self, items, warning=None, estimate_s=None):
        self.told = (items, warning, estimate_s)


def test_announce_tells_the_reporter_the_plan_its_warning_and_estimate(tmp_path, causal_dir, encoder_dir):
    cfg, suites = _prepared(tmp_path, causal_dir, encoder_dir)
    reporter = _Told()
    slow = Machine(cpus=1, memory_bytes=24 * GIB)
    costs = announce(reporter, cfg, suites, {("llama", "base", "tiny_cls")}, machine=slow)
    items, warning, estimate_s = reporter.told
    assert items == costs and len(costs) == 11 and warning is None
    assert estimate_s == pytest.approx(sum(c.work for c in costs) / CPU_WORK_PER_CORE_S)


def test_the_documented_plan_is_what_the_functions_print():
    docs = (Path(__file__).resolve().parents[1] / "docs" / "experiments.md").read_text()
    small = [ItemCost("llama", "base", "cls", 200, eval_tokens=9_000, parameters=135_000_000),
             ItemCost("llama", "lora", "cls", 200, 30, 9_000, 32_000, parameters=135_000_000),
             ItemCost("bert", "base", "gen", parameters=22_713_216, not_applicable="an encoder cannot generate")]
    big = [ItemCost("llama8b", "lora", "cls", 200, 30, 9_000, 32_000, parameters=8_030_261_248)]
    for costs in (small, big):
        block = "\n".join(f"plan {line}" for line in plan_lines(costs))
        warning = plan_warning(costs, LAPTOP)
        assert block + (f"\nwarning: {warning}" if warning else "") + "\n```" in docs
    assert plan_warning(small, LAPTOP) is None
