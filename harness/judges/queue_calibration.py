"""Calibrating a judge on a review queue: the judge grades the queue's items, its answers are compared
with the reviewers' `overall` grades (harness.judges.calibration), and the record is stored.

`harness judge calibrate` calls `calibrate_queue`; it only prints. The record's `meta` keeps what the
Judges report page shows beside the agreement: the queue, the judge reference, every item's judge
answer (option, probability-weighted grade, top-option probability) and human consensus, the length
correlation of the judge's grades and, for a pairwise rubric, the judge's position consistency.
"""

from __future__ import annotations

from dataclasses import dataclass

from harness.errors import HarnessError
from harness.judges.bias import length_correlation
from harness.judges.calibration import CalibrationKey, CalibrationRecord, calibrate, consensus
from harness.judges.local import expected_grade
from harness.judges.pairwise import judge_pairs, summarise
from harness.judges.prompt import JudgeItem, build_prompt, option_value
from harness.judges.verdict import Judge, Verdict
from harness.records.review import Queue, ReviewItem
from harness.store import Store, reviews
from harness.store.judges import save_calibration


@dataclass(frozen=True)
class QueueCalibration:
    record: CalibrationRecord
    record_id: str
    queue: Queue


def find_queue(store: Store, queue_id: str) -> Queue:
    found = [q for q in reviews.queues(store) if q.queue_id == queue_id]
    if not found:
        raise HarnessError(f"queue '{queue_id}' not found in {store.path}; `harness review progress` lists queues")
    return found[0]


def human_grades(store: Store, queue: Queue) -> dict[str, dict[str, str]]:
    """item -> reviewer -> the `overall` option, for the items with at least one grade."""
    frame = reviews.grades_frame(store, queue.queue_id)
    out: dict[str, dict[str, str]] = {}
    for row in frame.itertuples(index=False):
        if isinstance(row.overall, str) and row.overall in queue.rubric.choices():
            out.setdefault(row.item_id, {})[row.reviewer] = row.overall
    if not out:
        raise HarnessError(f"queue '{queue.queue_id}' has no grades yet; calibrate once reviewers have graded it")
    return out


def judge_items(judge: Judge, queue: Queue, items: list[ReviewItem],
                use_reference: bool) -> tuple[dict[str, Verdict], float | None]:
    """(the judge's verdict per item id, pairwise position consistency or None); a pairwise verdict is the shown
    order's, and counts only when it survives the swap (else a failure)."""
    rubric = queue.rubric
    shown = [JudgeItem(i.input, i.output_a, i.reference, i.output_b) for i in items]
    if rubric.kind == "pairwise":
        results = judge_pairs(judge, rubric, shown, use_reference)
        return {i.item_id: (r.forward if r.outcome not in ("inconsistent", "failed")
                            else Verdict(None, error=f"pair {r.outcome}"))
                for i, r in zip(items, results, strict=True)}, summarise(results).position_consistency
    prompts = [build_prompt(rubric, item, use_reference) for item in shown]
    return dict(zip([i.item_id for i in items], judge.judge(prompts, rubric.choices()), strict=True)), None


def _meta(queue: Queue, judge_ref: str, items: list[ReviewItem], verdicts: dict[str, Verdict],
          humans: dict[str, dict[str, str]], consistency: float | None) -> dict:
    kind = queue.rubric.kind
    rows = []
    for item in items:
        if item.item_id not in humans:
            continue
        v = verdicts[item.item_id]
        cons = consensus(kind, [option_value(g) for g in humans[item.item_id].values()])
        top = max(v.probabilities.values()) if v.probabilities else None
        rows.append({"item_id": item.item_id, "example_id": item.example_id, "judge": v.label,
                     "grade": expected_grade(v), "top_probability": top, "consensus": cons, "error": v.error})
    graded = [(r["grade"], i.output_a) for r, i in zip(rows, [i for i in items if i.item_id in humans], strict=True)]
    return {"queue_id": queue.queue_id, "judge_ref": judge_ref, "items": rows,
            "length_correlation": length_correlation([g for g, _ in graded], [o for _, o in graded]),
            "position_consistency": consistency}


def calibrate_queue(store: Store, queue_id: str, judge: Judge, use_reference: bool = False,
                    n_resamples: int = 1000, seed: int = 0, judge_ref: str | None = None) -> QueueCalibration:
    """Judge a graded queue, calibrate against its reviewers, store the record under `judge_ref` (default
    judge.ref: the reference the gate looks it up by, the judge metric's `model` option)."""
    if n_resamples < 1:
        raise HarnessError(f"--resamples {n_resamples}: must be at least 1")
    queue = find_queue(store, queue_id)
    humans = human_grades(store, queue)
    items = [i for i in reviews.items(store, queue_id) if i.item_id in humans]
    verdicts, consistency = judge_items(judge, queue, items, use_reference)
    key = CalibrationKey.of(judge.fingerprint, queue.rubric, use_reference)
    record = calibrate(key, queue.rubric, {k: v.label for k, v in verdicts.items()}, humans, n_resamples, seed)
    record.meta = _meta(queue, judge_ref or judge.ref, items, verdicts, humans, consistency)
    record_id = save_calibration(store, record, judge_ref or judge.ref, queue_id)
    return QueueCalibration(record, record_id, queue)
