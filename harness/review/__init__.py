"""Human review: queues, accounts and sessions, sampling, statistics, analysis, rubrics.

The package's face: `from harness.review import NAME` gives the names of
`harness.review.queues`, loaded on first use, so that importing one submodule of the family never
imports the rest of it.
"""

from __future__ import annotations

import importlib

FACE = "harness.review.queues"
__all__ = [
    "LEASE",
    "Desk",
    "QueueRequest",
    "assign",
    "create_queue",
    "desk",
    "get_queue",
    "next_item",
    "parse_list",
    "progress",
    "queues_for",
    "skip",
    "skipped_left",
    "submit",
    "submit_message",
    "undo_last",
]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module(FACE), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
