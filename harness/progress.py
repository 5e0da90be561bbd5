"""How a run reports progress: the Reporter protocol (the terminal's is `harness.console.RichReporter`), and the
plan's clock: which item of how many, and the overall ETA from the estimated cost of the items left
(`harness.costs`), calibrated by how fast the finished ones went."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from harness.costs import ItemCost

EVALUATE = "evaluate "  # the runner starts an item's evaluation as "evaluate LABEL" and finishes it as "LABEL"


class Reporter(Protocol):
    """Told the plan (its items' expected costs), when a step starts (a load, a training, an evaluation), how
    far it is, and how it ended."""

    def plan_started(self, items: list[ItemCost], warning: str | None = None,
                     estimate_s: float | None = None) -> None: ...
    def item_started(self, label: str, total: int | None) -> None: ...
    def item_progress(self, done: int, total: int, note: str = "") -> None: ...
    def item_finished(self, label: str, status: str, note: str = "") -> None: ...


class SilentReporter:
    """Reports nothing: for library callers and tests."""

    def plan_started(self, items: list[ItemCost], warning: str | None = None,
                     estimate_s: float | None = None) -> None:
        pass

    def item_started(self, label: str, total: int | None) -> None:
        pass

    def item_progress(self, done: int, total: int, note: str = "") -> None:
        pass

    def item_finished(self, label: str, status: str, note: str = "") -> None:
        pass


class PlanClock:
    """Item k of N and the overall ETA. Each item weighs its estimated work (token-parameters; a lora item's
    training and evaluation apart). The speed is the work of the parts finished `done` (plus the running
    part's fraction) over the time since the plan started, so loads, parallel items (Ray) and the machine's
    load are all in it; parts that end otherwise (failed, reused, skipped, not applicable) leave the total
    without counting as speed. Before any work is done the ETA is `estimate_s` (the machine's figure), if any."""

    def __init__(self, items: Sequence[ItemCost], estimate_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.parts: dict[str, float] = {}
        self.items = [c.label for c in items]
        self.train_of = {c.label: c.train_label for c in items if c.train_label}
        for c in items:
            if c.not_applicable:
                self.parts[c.label] = 0.0
                continue
            self.parts[c.label] = c.eval_work
            if c.train_label:
                self.parts[c.train_label] = c.train_work
        self.total = sum(self.parts.values())
        self.estimate_s, self.clock, self.started_at = estimate_s, clock, clock()
        self.credited = self.dropped = 0.0
        self.finished: set[str] = set()
        self.current: str | None = None
        self.fraction = 0.0

    def started(self, label: str) -> None:
        label = label.removeprefix(EVALUATE)
        self.current, self.fraction = (label, 0.0) if label in self.parts else (None, 0.0)

    def progress(self, done: int, total: int) -> None:
        if self.current is not None and total:
            self.fraction = min(1.0, done / total)

    def finish(self, label: str, status: str) -> None:
        """A step ended; an item's end also closes its training part (a reused adapter trains nothing)."""
        for part in (label, self.train_of.get(label)):
            if part in self.parts and part not in self.finished:
                self.finished.add(part)
                if status == "done":
                    self.credited += self.parts[part]
                else:
                    self.dropped += self.parts[part]
        if label == self.current:
            self.current, self.fraction = None, 0.0

    @property
    def items_done(self) -> int:
        return sum(1 for label in self.items if label in self.finished)

    def eta_s(self) -> float | None:
        """Seconds left: the work left at the speed measured so far; None when there is nothing to go on."""
        elapsed = self.clock() - self.started_at
        running = self.parts.get(self.current, 0.0) * self.fraction if self.current else 0.0
        spent = self.credited + running
        left = max(0.0, self.total - self.dropped - spent)
        if spent > 0 and elapsed > 0:
            return left / (spent / elapsed)
        if self.estimate_s is not None:
            return max(0.0, self.estimate_s - elapsed)
        return None

    def summary(self) -> str:
        """`item 3 of 16, overall ETA 4 min`."""
        n = len(self.items)
        k = min(self.items_done + 1, n)
        eta = self.eta_s()
        if self.items_done >= n:
            return f"{n} of {n} items"
        return f"item {k} of {n}" + (f", overall ETA {duration(eta)}" if eta is not None else "")


def duration(seconds: float) -> str:
    """`45 s`, `12 min`, `3 h 10 min`."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"
