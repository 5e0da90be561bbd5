"""How a run reports progress: the Reporter protocol (the terminal's is `harness.console.RichReporter`)."""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    """Told when a step starts (a load, a training, an evaluation), how far it is, and how it ended."""

    def item_started(self, label: str, total: int | None) -> None: ...
    def item_progress(self, done: int, total: int, note: str = "") -> None: ...
    def item_finished(self, label: str, status: str, note: str = "") -> None: ...


class SilentReporter:
    """Reports nothing: for library callers and tests."""

    def item_started(self, label: str, total: int | None) -> None:
        pass

    def item_progress(self, done: int, total: int, note: str = "") -> None:
        pass

    def item_finished(self, label: str, status: str, note: str = "") -> None:
        pass
