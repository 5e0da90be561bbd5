"""Progress on the terminal: one line per finished item, a live bar with ETA for the running one."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class RichReporter:
    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True, soft_wrap=True)
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                                 TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[note]}"),
                                 console=self.console, transient=True)
        self.task = None

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def item_started(self, label: str, total: int | None) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(label, total=total, note="")

    def item_progress(self, done: int, total: int, note: str = "") -> None:
        if self.task is not None:
            self.progress.update(self.task, completed=done, total=total, note=note)

    def item_finished(self, label: str, status: str, note: str = "") -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
            self.task = None
        colour = {"done": "green", "failed": "red"}.get(status, "yellow")
        self.console.print(f"[{colour}]{status:>14}[/] {label}  {note}")
