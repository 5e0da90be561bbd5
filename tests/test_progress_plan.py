"""The plan's clock (item k of N, overall ETA from the estimated cost of the items left, calibrated by the
finished ones) and how both reporters show the plan."""

from __future__ import annotations

import io
import re
import time

import pytest
from rich.console import Console

from harness.console import PlainReporter, RichReporter, ends_step
from harness.costs import TRAIN_FACTOR, ItemCost
from harness.progress import PlanClock, duration

M = 1_000_000


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _plan() -> list[ItemCost]:
    """Three items: a base evaluation of 1 unit, a lora item training 6 units and evaluating 1, and an item that
    does not apply (a unit = a million token-parameters: a 1-parameter model, a million tokens)."""
    return [ItemCost("m", "base", "s", 10, eval_tokens=M, parameters=1),
            ItemCost("m", "lora", "s", 10, train_steps=5, eval_tokens=M, train_tokens=2 * M, parameters=1),
            ItemCost("e", "base", "g", parameters=1, not_applicable="an encoder cannot generate")]


def test_eta_is_the_work_left_at_the_speed_measured_so_far():
    clock = Clock()
    plan = PlanClock(_plan(), estimate_s=500, clock=clock)
    assert plan.total == pytest.approx((1 + 1 + TRAIN_FACTOR * 2) * M)
    assert plan.summary() == "item 1 of 3, overall ETA 8 min"  # nothing done yet: the machine's estimate
    clock.now += 20
    plan.started("evaluate m / base / s")
    plan.progress(5, 10)  # half of 1 unit in 20 s: 0.025 units/s, 7.5 units left
    assert plan.eta_s() == pytest.approx(7.5 * M / (0.5 * M / 20))
    plan.finish("m / base / s", "done")
    clock.now += 20  # 1 unit in 40 s; 7 units left
    assert plan.eta_s() == pytest.approx(7 * 40)
    assert plan.summary() == f"item 2 of 3, overall ETA {duration(280)}"
    plan.finish("train LoRA m / s", "done")
    clock.now += 100  # 7 units in 140 s: 1 left
    assert plan.eta_s() == pytest.approx(1 * 140 / 7)
    plan.finish("m / lora / s", "done")
    plan.finish("e / base / g", "not applicable")
    assert plan.items_done == 3 and plan.eta_s() == 0 and plan.summary() == "3 of 3 items"


def test_an_item_that_ends_otherwise_leaves_the_total_but_not_the_speed():
    clock = Clock()
    plan = PlanClock(_plan(), clock=clock)
    assert plan.eta_s() is None  # no estimate and nothing done: nothing to go on
    clock.now += 10
    plan.finish("m / base / s", "done")  # 1 unit in 10 s
    plan.finish("m / lora / s", "failed")  # its training never ran: the 7 units go, not counted as speed
    assert plan.eta_s() == 0 and plan.items_done == 2
    assert plan.summary() == "item 3 of 3, overall ETA 0 s"


def test_a_reused_adapter_closes_the_training_part_with_its_item():
    clock = Clock()
    plan = PlanClock(_plan(), clock=clock)
    clock.now += 10
    plan.finish("m / base / s", "done")
    plan.finish("m / lora / s", "done")  # its training was never announced (an adapter reused)
    assert plan.credited == pytest.approx(plan.total)


def test_labels_outside_the_plan_change_nothing():
    clock = Clock()
    plan = PlanClock(_plan(), estimate_s=60, clock=clock)
    plan.started("load m (pack:x)")
    plan.progress(3, 4)
    plan.finish("load m", "done")
    plan.finish("m / base / lmeval:arc", "done")
    assert plan.credited == 0 and plan.items_done == 0 and plan.eta_s() == 60


def test_plain_reporter_prints_the_plan_and_the_overall_eta_in_its_heartbeat():
    out = io.StringIO()
    with PlainReporter(out, every_s=0.05) as reporter:
        reporter.plan_started(_plan(), "this plan is large for the machine: test", estimate_s=120)
        reporter.item_started("evaluate m / base / s", 10)
        reporter.item_progress(4, 10)
        time.sleep(0.3)
        reporter.item_finished("m / base / s", "done", "accuracy 0.5")
        time.sleep(0.15)  # the step ended: no heartbeat for it any more
    lines = out.getvalue().splitlines()
    text = "\n".join(lines)
    assert "plan m / lora / s: 10 examples, 5 training steps, ~3.0M tokens" in text
    assert "plan e / base / g: not applicable (an encoder cannot generate)" in text
    assert "warning: this plan is large for the machine: test" in text
    beats = [ln for ln in lines if "… evaluate m / base / s: 4/10" in ln]
    assert beats and all(re.search(r"· item 1 of 3, overall ETA \d+ (s|min)$", ln) for ln in beats)
    finished = next(ln for ln in lines if ln.endswith(")") and "done m / base / s" in ln)
    assert re.search(r"accuracy 0\.5  \(item 2 of 3, overall ETA \d+ (s|min)\)$", finished)
    assert lines.index(finished) == len(lines) - 1, "a heartbeat came after its step ended"


def test_plain_reporter_keeps_beating_through_a_ray_phase():
    """Under ray one step ("ray: N tasks") spans every task: a task's end does not end it."""
    out = io.StringIO()
    with PlainReporter(out, every_s=0.05) as reporter:
        reporter.item_started("ray: 3 tasks", 3)
        reporter.item_finished("m / base / s", "done", "on 127.0.0.1 abc")
        time.sleep(0.2)
    assert "… ray: 3 tasks" in out.getvalue().split("done m / base / s")[1]


def test_rich_reporter_prints_the_plan_and_item_k_of_n():
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=200)
    with RichReporter(console) as reporter:
        reporter.plan_started(_plan(), None, estimate_s=30)
        reporter.item_started("evaluate m / base / s", 10)
        reporter.item_progress(10, 10)
        task = reporter.progress.tasks[0]
        assert task.total == 10 and task.completed == 10 and "item 1 of 3, overall ETA" in task.fields["note"]
        reporter.item_finished("m / base / s", "done", "accuracy 0.5")
    text = out.getvalue()
    assert "plan m / base / s: 10 examples, ~1.0M tokens" in text
    assert re.search(r"done m / base / s  accuracy 0\.5  \(item 2 of 3, overall ETA \d+ (s|min)\)", text)


def test_a_step_ends_with_its_own_label_only():
    assert ends_step("load llama (pack:smollm2-135m-instruct)", "load llama")
    assert ends_step("evaluate llama / base / cls", "llama / base / cls")
    assert ends_step("train LoRA llama / cls", "train LoRA llama / cls")
    assert not ends_step("ray: 8 tasks", "llama / base / cls")
    assert not ends_step("evaluate llama / base / cls", "llama / lora / cls")
    assert not ends_step(None, "llama / base / cls")


def test_rich_reporter_keeps_the_ray_bar_while_tasks_come_back():
    console = Console(file=io.StringIO(), force_terminal=False, width=200)
    with RichReporter(console) as reporter:
        reporter.item_started("ray: 3 tasks", 3)
        reporter.item_finished("m / base / s", "done", "on 127.0.0.1 abc")
        reporter.item_progress(1, 3, "done 1 · running 1 · queued 1 · retried 0")
        assert [t.description for t in reporter.progress.tasks] == ["ray: 3 tasks"]
        assert reporter.progress.tasks[0].completed == 1
