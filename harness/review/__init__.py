"""Human review: queues, accounts and sessions, sampling, statistics, analysis, rubrics.

The package's face: `from harness.review import NAME` gives the names of
`harness.review.queues`, loaded on first use, so that importing one submodule of the family never
imports the rest of it.
"""

from __future__ import annotations

from harness.plugins import lazy_face

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


__getattr__ = lazy_face(__name__, FACE, __all__)
