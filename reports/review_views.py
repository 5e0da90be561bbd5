"""Plain functions behind the review pages: what a reviewer is shown, computed without Streamlit.

Blind queues never put a candidate name into anything returned here; model text is returned as is and
the pages draw it with `st.text` (no Markdown, no HTML).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.records.review import Account, Progress, Queue, ReviewItem
from harness.review.rubrics import OVERALL, Rubric


@dataclass(frozen=True)
class ItemView:
    input: str
    reference: str | None
    outputs: list[tuple[str, str]]  # (title, text), in display order


@dataclass(frozen=True)
class Question:
    name: str
    key: str
    label: str
    choices: list[str]


def item_view(queue: Queue, item: ReviewItem) -> ItemView:
    """What the grading page shows for an item: names only when the queue is not blind."""
    reference = item.reference if queue.rubric.show_reference and item.reference else None
    shown = [(item.candidate_a, item.variant_a, item.output_a)]
    if item.pairwise:
        shown.append((item.candidate_b, item.variant_b, item.output_b))
    outputs = []
    for position, (candidate, variant, text) in zip("AB", shown, strict=False):
        title = f"Output {position}" if item.pairwise else "Output"
        if not queue.blind:
            title += f" — {candidate}:{variant}"
        outputs.append((title, text or ""))
    return ItemView(item.input, reference, outputs)


def questions(rubric: Rubric, item_id: str) -> list[Question]:
    """One radio per rubric question; widget keys carry only the opaque item id."""
    scale = ""
    if rubric.kind == "likert":
        low, high = rubric.labels.get(1, "worst"), rubric.labels.get(5, "best")
        scale = f" (1 = {low}, 5 = {high})"
    out = []
    for name, description in rubric.questions():
        label = f"Overall{scale}" if name == OVERALL else f"{description}{scale}"
        out.append(Question(name, f"answer-{item_id}-{name}", label, rubric.choices()))
    return out


def comment_label(rubric: Rubric) -> str | None:
    return {"none": None, "optional": "Comment (optional)", "required": "Comment (required)"}[rubric.comment]


def progress_text(progress: Progress, skipped: int) -> str:
    text = f"{progress.done} of {progress.total} graded"
    return text + (f" · {skipped} skipped, they come back at the end" if skipped else "")


def queue_label(queue: Queue, account: Account) -> str:
    """A queue in the picker: reviewers see its name and mode; admins also the run and candidates."""
    label = f"{queue.queue_id} ({queue.mode}, {queue.rubric.kind})"
    if account.role == "admin":
        label += f" · {queue.suite} · " + ", ".join(c.label for c in queue.candidates)
    return label


def queue_summary(queues: list[Queue]) -> pd.DataFrame:
    """The admin's list of queues and how they were made."""
    return pd.DataFrame([{
        "queue": q.queue_id, "run": q.run_id, "suite": q.suite, "mode": q.mode, "strategy": q.strategy,
        "overlap": q.overlap, "blind": q.blind, "rubric": q.rubric.name,
        "candidates": ", ".join(c.label for c in q.candidates), "reviewers": ", ".join(q.reviewers) or "all",
        "created": q.created_at} for q in queues])


def run_choices(items: pd.DataFrame) -> dict[str, list[str]]:
    """suite -> ['candidate:variant', ...] of a run's finished items (the admin's queue form)."""
    done = items[items["status"] == "done"] if "status" in items else items
    out: dict[str, list[str]] = {}
    for suite, group in done.groupby("suite"):
        out[str(suite)] = sorted(set(group["candidate"] + ":" + group["variant"]))
    return out
