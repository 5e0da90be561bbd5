"""Progress: on a terminal one line per finished item and a live bar with ETA for the running one; in a log
file (no terminal) plain timestamped lines with a heartbeat (PlainReporter). Both print the plan (a line per
item with its expected cost) when told it, and show "item k of N, overall ETA" (harness.progress.PlanClock)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from harness.costs import plan_lines
from harness.progress import EVALUATE, PlanClock

if TYPE_CHECKING:
    from harness.costs import ItemCost


def ends_step(running: str | None, finished: str) -> bool:
    """Whether `finished` ends the running step (`load X (ref)` by `load X`, `evaluate L` by `L`); under ray
    the step (`ray: N tasks`) is every task, and one task's end does not end it."""
    return running is not None and running.removeprefix(EVALUATE).startswith(finished)


class RichReporter:
    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True, soft_wrap=True)
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                                 TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[note]}"),
                                 console=self.console, transient=True)
        self.task = None
        self.label: str | None = None
        self.plan: PlanClock | None = None

    def plan_started(self, items: list[ItemCost], warning: str | None = None,
                     estimate_s: float | None = None) -> None:
        self.plan = PlanClock(items, estimate_s)
        for line in plan_lines(items):
            self.console.print(f"[dim]plan[/] {line}", highlight=False)
        if warning:
            self.console.print(f"[yellow]warning:[/] {warning}", highlight=False)

    def _with_plan(self, note: str) -> str:
        overall = self.plan.summary() if self.plan else ""
        return f"{note} · {overall}" if note and overall else note or overall

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def item_started(self, label: str, total: int | None) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        if self.plan:
            self.plan.started(label)
        self.label = label
        self.task = self.progress.add_task(label, total=total, note=self._with_plan(""))

    def item_progress(self, done: int, total: int, note: str = "") -> None:
        if self.plan:
            self.plan.progress(done, total)
        if self.task is not None:
            self.progress.update(self.task, completed=done, total=total, note=self._with_plan(note))

    def item_finished(self, label: str, status: str, note: str = "") -> None:
        if self.plan:
            self.plan.finish(label, status)
        if self.task is not None and ends_step(self.label, label):
            self.progress.remove_task(self.task)
            self.task, self.label = None, None
        colour = {"done": "green", "failed": "red"}.get(status, "yellow")
        overall = f"  [dim]({self.plan.summary()})[/]" if self.plan and label in self.plan.parts else ""
        self.console.print(f"[{colour}]{status:>14}[/] {label}  {note}{overall}")


class PlainReporter:
    """Progress as plain, timestamped lines for a log file (CI, nohup, a redirected terminal): one when a step
    starts and ends, and a heartbeat with counts, elapsed time and ETA at least every `every_s` seconds
    (HARNESS_PROGRESS_EVERY_S, default 30) while a step runs, even one that reports no counts (a load)."""

    def __init__(self, stream=None, every_s: float | None = None):
        import os
        import sys
        import threading

        self.stream = stream or sys.stderr
        self.every_s = every_s or float(os.environ.get("HARNESS_PROGRESS_EVERY_S") or 30)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)
        self._label, self._done, self._total, self._note, self._started = None, 0, None, "", 0.0
        self.plan: PlanClock | None = None

    def plan_started(self, items: list[ItemCost], warning: str | None = None,
                     estimate_s: float | None = None) -> None:
        self.plan = PlanClock(items, estimate_s)
        for line in plan_lines(items):
            self._line(f"plan {line}")
        if warning:
            self._line(f"warning: {warning}")

    def _overall(self) -> str:
        return f" · {self.plan.summary()}" if self.plan else ""

    def __enter__(self) -> PlainReporter:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _line(self, text: str) -> None:
        import time

        with self._lock:
            self.stream.write(f"[{time.strftime('%H:%M:%S')}] {text}\n")
            self.stream.flush()

    def _beat(self) -> None:
        while not self._stop.wait(self.every_s):
            if self._label is not None:
                self._line(f"  … {self._label}: {self._status()}{self._overall()}")

    def _status(self) -> str:
        import time

        elapsed = time.monotonic() - self._started
        if not self._total:
            return f"{elapsed:.0f} s so far"
        eta = elapsed / max(self._done, 1) * (self._total - self._done) if self._done else None
        rest = f", ETA {eta:.0f} s" if eta is not None else ""
        return f"{self._done}/{self._total}, {elapsed:.0f} s{rest}" + (f"  {self._note}" if self._note else "")

    def item_started(self, label: str, total: int | None) -> None:
        import time

        if self.plan:
            self.plan.started(label)
        self._label, self._done, self._total, self._note, self._started = label, 0, total, "", time.monotonic()
        self._line(f"started {label}")

    def item_progress(self, done: int, total: int, note: str = "") -> None:
        if self.plan:
            self.plan.progress(done, total)
        self._done, self._total, self._note = done, total, note

    def item_finished(self, label: str, status: str, note: str = "") -> None:
        if self.plan:
            self.plan.finish(label, status)
        if ends_step(self._label, label):
            self._label = None
        overall = f"  ({self.plan.summary()})" if self.plan and label in self.plan.parts else ""
        self._line(f"{status:>14} {label}  {note}{overall}")


def make_reporter():
    """The live bars on a terminal; plain timestamped lines when stderr is not one."""
    import sys

    return RichReporter() if sys.stderr.isatty() else PlainReporter()
