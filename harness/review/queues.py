"""Review queues: building them from a run, handing items to reviewers, and taking their grades.

Assignment is by claims with leases (SQL and the concurrency argument in harness/store/claim_sql.py). A
reviewer's next item is their live claim in the queue if they hold one (its lease renewed), else a new
claim on the first item (by position) that they have not graded and that still has a free slot:
fewer than `overlap` grades and other reviewers' live claims together. Items they skipped come after the
others. A claim lapses LEASE after the page last showed it, and its slot goes back to the pool. A grade is
stored when its reviewer holds a live claim on the item or a slot is free, else refused ("full"), so every
item gets exactly `overlap` grades from different reviewers however many grade at once, and nobody sees an
item twice. The primary key (queue, item, reviewer) keeps one grade per reviewer and item.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import combinations

import numpy as np
import pandas as pd

from harness.errors import HarnessError
from harness.records.review import (
    MODES,
    STRATEGIES,
    Account,
    Candidate,
    Desk,
    Grade,
    Progress,
    Queue,
    ReviewItem,
    SubmitOutcome,
)
from harness.review.auth import check_name
from harness.review.rubrics import Rubric
from harness.review.sampling import disagreement_scores, judge_uncertainty, metric_values, sample
from harness.store import Store, claims, reviews


@dataclass
class QueueRequest:
    """What `harness review create` and the admin page ask for."""

    run: str
    suite: str
    rubric: Rubric
    mode: str = "single"
    sample: int = 20
    strategy: str = "random"
    overlap: int = 1
    blind: bool = True
    candidates: list[str] = field(default_factory=list)  # `name:variant` or `name`; empty: all in the run
    reviewers: list[str] = field(default_factory=list)  # empty: open to every reviewer
    name: str | None = None
    seed: int = 0
    created_by: str | None = None


def parse_list(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _choose_candidates(available: list[Candidate], wanted: list[str], run_id: str, suite: str) -> list[Candidate]:
    if not available:
        raise HarnessError(f"run {run_id} has no predictions for suite '{suite}'; check --run and --suite")
    if not wanted:
        return available
    chosen: list[Candidate] = []
    for ref in wanted:
        name, _, variant = ref.partition(":")
        match = [c for c in available if c.candidate == name and (not variant or c.variant == variant)]
        if not match:
            known = ", ".join(c.label for c in available)
            raise HarnessError(f"--candidates {ref}: not in run {run_id} suite '{suite}' (available: {known})")
        chosen += [c for c in match if c not in chosen]
    return chosen


def _check_request(req: QueueRequest, store: Store) -> None:
    if req.mode not in MODES:
        raise HarnessError(f"--mode {req.mode}: must be single or pairwise")
    if req.strategy not in STRATEGIES:
        raise HarnessError(f"--strategy {req.strategy}: must be one of {', '.join(STRATEGIES)}")
    if (req.mode == "pairwise") != (req.rubric.kind == "pairwise"):
        raise HarnessError(f"rubric '{req.rubric.name}' is {req.rubric.kind}; {req.mode} mode needs a "
                           f"{'pairwise' if req.mode == 'pairwise' else 'likert or pass_fail'} rubric")
    if req.sample < 1 or req.overlap < 1:
        raise HarnessError("--sample and --overlap must be at least 1")
    if req.sample > 100_000:  # a queue is graded by people; a larger number is a typo, and overflows the store
        raise HarnessError(f"--sample {req.sample}: at most 100000 examples per queue; sample fewer")
    known = {a.name for a in reviews.accounts(store)}
    for name in req.reviewers:
        if name not in known:
            raise HarnessError(f"--reviewers: '{name}' has no account; `harness review add-reviewer {name}` first")
    if req.reviewers and req.overlap > len(req.reviewers):
        raise HarnessError(f"--overlap {req.overlap} needs at least {req.overlap} reviewers; "
                           f"--reviewers names {len(req.reviewers)}")
    if known and req.overlap > len(known):  # no accounts: the local, open mode, whose graders are not counted
        raise HarnessError(f"--overlap {req.overlap}: only {len(known)} accounts could grade, so no item would "
                           f"get {req.overlap} grades; add reviewers (`harness review add-reviewer NAME`) first "
                           "or lower --overlap")
    if req.name is not None:
        check_name(req.name)
        if reviews.queue_exists(store, req.name):
            raise HarnessError(f"queue '{req.name}' already exists; choose another --name")


def _item_id() -> str:
    """Random, so that no id a reviewer sees can be derived from the candidates, the model or the example."""
    return secrets.token_hex(8)


def _build_items(queue: Queue, outputs: pd.DataFrame, chosen: list[tuple[str, float]],
                 rng: np.random.Generator) -> list[ReviewItem]:
    """outputs: one row per (example_id, label) with input, reference, output."""
    rows = outputs.set_index(["example_id", "label"])
    groups = ([[c] for c in queue.candidates] if queue.mode == "single"
              else [list(p) for p in combinations(queue.candidates, 2)])
    items: list[ReviewItem] = []
    for example_id, priority in chosen:
        for group in groups:
            swapped = bool(len(group) == 2 and rng.random() < 0.5)
            shown = group[::-1] if swapped else group
            a = rows.loc[(example_id, shown[0].label)]
            item = ReviewItem(queue.queue_id, _item_id(), 0,
                              example_id, str(a["input"]), a["reference"], shown[0].candidate, shown[0].variant,
                              str(a["output"]), swapped=swapped, priority=priority)
            if len(shown) == 2:
                b = rows.loc[(example_id, shown[1].label)]
                item.candidate_b, item.variant_b, item.output_b = shown[1].candidate, shown[1].variant, str(b["output"])
            items.append(item)
    order = rng.permutation(len(items))
    if queue.strategy in ("disagreement", "judge-uncertain"):  # the most telling items first; random among equals
        order = sorted(order, key=lambda i: -items[i].priority)
    for position, index in enumerate(order):
        items[index].position = position
    return sorted(items, key=lambda i: i.position)


def create_queue(store: Store, req: QueueRequest) -> tuple[Queue, list[ReviewItem]]:
    """Sample a run's outputs into a new queue and store it (one transaction)."""
    _check_request(req, store)
    run_id = store.resolve_run(req.run)
    preds = reviews.predictions(store, run_id, req.suite)
    available = [Candidate(c, v) for c, v in preds[["candidate", "variant"]].drop_duplicates().itertuples(index=False)]
    candidates = _choose_candidates(available, req.candidates, run_id, req.suite)
    if req.mode == "pairwise" and len(candidates) < 2:
        raise HarnessError("pairwise mode needs at least two candidates; name them with --candidates a:base,b:lora")
    preds = preds.assign(label=preds["candidate"] + ":" + preds["variant"])
    preds = preds[preds["label"].isin([c.label for c in candidates]) & preds["error"].isna()]
    counts = preds.groupby("example_id")["label"].nunique()
    examples = sorted(counts[counts == len(candidates)].index)
    if not examples:
        raise HarnessError(f"no example of suite '{req.suite}' has an output from every chosen candidate")
    queue_id = req.name or f"{req.suite}-{req.mode}-{secrets.token_hex(3)}"
    queue = Queue(queue_id, run_id, req.suite, req.mode, req.strategy, req.sample, req.overlap, req.blind,
                  req.rubric, candidates, list(req.reviewers), req.seed, req.created_by)
    rng = np.random.default_rng(req.seed)
    chosen = sample(req.strategy, examples, req.sample, rng, **_sampling_inputs(store, queue, preds, examples))
    items = _build_items(queue, preds, chosen, rng)
    reviews.insert_queue(store, queue, items)
    return queue, items


def _sampling_inputs(store: Store, queue: Queue, preds: pd.DataFrame, examples: list[str]) -> dict:
    references = preds.drop_duplicates("example_id").set_index("example_id")["reference"]
    if queue.strategy == "random":
        return {"references": references}
    stats = reviews.example_stats(store, queue.run_id, queue.suite)
    values = metric_values(stats)
    values = values.assign(label=values["candidate"] + ":" + values["variant"])
    values = values[values["label"].isin(preds["label"].unique())]
    quality = None
    if len(values):
        first = values[values["metric"] == sorted(values["metric"].unique())[0]]
        quality = first.groupby("example_id")["value"].mean()
    outputs = preds.pivot(index="example_id", columns="label", values="output")
    scores = disagreement_scores(outputs, values, examples) if queue.strategy == "disagreement" else None
    unsure = None
    if queue.strategy == "judge-uncertain":
        stats = stats.assign(label=stats["candidate"] + ":" + stats["variant"])
        auto = metric_values(stats[stats["metric"] != "judge"])  # the automatic metrics only
        auto = auto.assign(label=auto["candidate"] + ":" + auto["variant"])
        unsure = judge_uncertainty(stats[stats["label"].isin(preds["label"].unique())],
                                   auto[auto["label"].isin(preds["label"].unique())], examples)
    return {"references": references, "quality": quality, "disagreement": scores, "uncertainty": unsure}


# reviewers at work ------------------------------------------------------------------------------------------
def queues_for(store: Store, account: Account) -> list[Queue]:
    """Admins see every queue; a reviewer the queues open to them."""
    return reviews.queues(store, None if account.role == "admin" else account.name)


def get_queue(store: Store, queue_id: str, account: Account) -> Queue:
    for queue in queues_for(store, account):
        if queue.queue_id == queue_id:
            return queue
    raise HarnessError(f"queue '{queue_id}' not found (or not assigned to {account.name}); "
                       "`harness review queues` lists them")


LEASE = timedelta(minutes=10)  # a claimed item stays its reviewer's this long after their page last showed it
_now = datetime.now  # the clock of leases (tests move it)


def desk(store: Store, account: Account, queue_id: str | None = None, last: str | None = None,
         prefer: str | None = None) -> Desk:
    """The reviewer's queues, the chosen one (default: the newest), their progress and next item in it, read
    (and the item claimed) in one transaction."""
    return claims.desk(store, account, queue_id, last, prefer, _now, LEASE)


def next_item(store: Store, queue: Queue, reviewer: str, last: str | None = None,
              prefer: str | None = None) -> ReviewItem | None:
    """The reviewer's claimed item, claimed now if need be (see the module docstring); None when nothing is
    left for them."""
    return claims.next_item(store, queue, reviewer, last, prefer, _now, LEASE)


def progress(store: Store, queue: Queue, reviewer: str) -> Progress:
    return claims.progress(store, queue, reviewer, _now)


def submit(store: Store, queue: Queue, item_id: str, reviewer: str, answers: dict[str, str],
           comment: str | None = None, elapsed_s: float | None = None) -> SubmitOutcome:
    """Validate and store a grade: "stored"; "duplicate" when this reviewer had graded the item already (the
    first grade stays); "full" when they no longer held it and other reviewers took all its slots (nothing
    stored: show `submit_message`)."""
    queue.rubric.check_grade(answers, comment)
    if queue.rubric.comment == "none":
        comment = None
    grade = Grade(queue.queue_id, item_id, reviewer, dict(answers), (comment or "").strip() or None, elapsed_s)
    return claims.store_grade(store, grade, queue.overlap, _now)


def submit_message(outcome: SubmitOutcome, queue: Queue) -> str:
    """What the grading page tells the reviewer about their submit."""
    if outcome == "stored":
        return "Grade saved"
    if outcome == "duplicate":
        return "Already graded: kept your first grade"
    minutes = int(LEASE.total_seconds() // 60)
    return (f"Your grade was NOT saved: other reviewers have taken this item's {queue.overlap} grading slot(s) "
            f"(an item stays yours for {minutes} minutes after your page last showed it). Here is your next item.")


def skip(store: Store, queue: Queue, item_id: str, reviewer: str) -> None:
    """Put the item at the end of the reviewer's list and give its slot back to the pool."""
    claims.skip(store, queue.queue_id, item_id, reviewer)


def undo_last(store: Store, queue: Queue, reviewer: str) -> ReviewItem | None:
    """Delete the reviewer's latest grade in the queue and return its item, claimed for them to grade again."""
    return claims.undo_last(store, queue, reviewer, _now, LEASE)


def skipped_left(store: Store, queue: Queue, reviewer: str) -> int:
    return claims.skipped_left(store, queue, reviewer, _now)


def assign(store: Store, queue_id: str, reviewers: list[str]) -> None:
    """Replace a queue's reviewer list (empty: open to every reviewer)."""
    known = {a.name for a in reviews.accounts(store)}
    missing = [r for r in reviewers if r not in known]
    if missing:
        raise HarnessError(f"--reviewers: no account for {', '.join(missing)}; add them with add-reviewer first")
    if not reviews.queue_exists(store, queue_id):
        raise HarnessError(f"queue '{queue_id}' not found; `harness review queues` lists them")
    reviews.set_queue_reviewers(store, queue_id, reviewers)
