"""Typed records of human review: accounts, queues, items, grades, progress, the grading desk."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from harness.records.rubric import Rubric

ROLES = ("reviewer", "admin")
MODES = ("single", "pairwise")
STRATEGIES = ("random", "stratified", "disagreement", "judge-uncertain")
# what became of a submitted grade: stored; this reviewer had graded the item already (the first grade is kept);
# refused because the item already has its `overlap` grades and holds (the reviewer's hold on it had lapsed)
SubmitOutcome = Literal["stored", "duplicate", "full"]


@dataclass(frozen=True)
class Account:
    name: str
    role: str  # reviewer | admin


@dataclass(frozen=True)
class Candidate:
    """One (candidate, variant) of a run, written `name:variant` on the command line."""

    candidate: str
    variant: str

    @property
    def label(self) -> str:
        return f"{self.candidate}:{self.variant}"


@dataclass
class Queue:
    queue_id: str
    run_id: str
    suite: str
    mode: str
    strategy: str
    sample_n: int
    overlap: int
    blind: bool
    rubric: Rubric
    candidates: list[Candidate]
    reviewers: list[str] = field(default_factory=list)  # empty: open to every reviewer account
    seed: int = 0
    created_by: str | None = None
    created_at: datetime = field(default_factory=datetime.now)


@dataclass
class ReviewItem:
    """What a reviewer grades: one output (single) or two outputs A and B (pairwise) for one input.

    In pairwise mode A and B are the display positions; `swapped` records whether A is the second
    candidate of the queue's pair (positions are drawn at random per item).
    """

    queue_id: str
    item_id: str
    position: int
    example_id: str
    input: str
    reference: str | None
    candidate_a: str
    variant_a: str
    output_a: str
    candidate_b: str | None = None
    variant_b: str | None = None
    output_b: str | None = None
    swapped: bool = False
    priority: float = 0.0

    @property
    def pairwise(self) -> bool:
        return self.candidate_b is not None


@dataclass(frozen=True)
class Grade:
    queue_id: str
    item_id: str
    reviewer: str
    answers: dict[str, str]
    comment: str | None = None
    elapsed_s: float | None = None
    created_at: datetime = field(default_factory=datetime.now)


@dataclass(frozen=True)
class Progress:
    """A reviewer's place in a queue: grades given and items still open to them."""

    done: int
    remaining: int

    @property
    def total(self) -> int:
        return self.done + self.remaining

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


@dataclass
class Desk:
    """What the grading page shows a reviewer, read (and their item claimed) in one transaction."""

    queues: list[Queue]
    queue: Queue | None
    progress: Progress
    skipped: int
    item: ReviewItem | None
