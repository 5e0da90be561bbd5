"""Generation as a stream of rows (continuous batching): a finished row's place goes to the next prompt.

Batches of fixed rows decode until their slowest row ends, so late in a batch most of each forward
pass's fixed cost (reading every weight) is spent on a few rows. Here the prompts of a chunk decode
together, longest first, at most `fits(longest prompt in flight)` rows at once (the memory budget's
batch size, harness.predict.memory); as rows end, the next prompts are prefilled and join the
running batch (harness.predict.speculative). Each row's tokens are those of plain greedy decoding:
rows never attend to each other. A chunk that fails is decoded again batch by batch
(`fallback`), so one bad prompt is recorded as that example's error, as in the batch path. The
decoding itself is the caller's (harness.predict.predictor): this module orders, chunks and counts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.records import Prediction
from harness.suites import Example

CHUNK = 256  # rows encoded together; one chunk's tail (its last rows decoding alone) is paid per chunk


def stream_generate(examples: list[Example], prompts: list[str], lengths: list[int], fits: Callable[[int], int],
                    stats: Any,
                    decode: Callable[..., list[Prediction]],
                    fallback: Callable[[list[Example], list[str], list[int]], list[Prediction]],
                    progress: Callable[[int, int], None] | None = None) -> list[Prediction]:
    """Predictions in example order: `decode(examples, prompts, fits, row_done)` decodes one chunk as a stream
    (`fallback(examples, prompts, lengths)` where that raises); `progress(done, total)` as rows end."""
    order = sorted(range(len(examples)), key=lambda i: -lengths[i])
    out: dict[int, Prediction] = {}
    for start in range(0, len(order), CHUNK):
        idx = order[start:start + CHUNK]
        done = _Counter(progress, len(out), len(examples))
        chunk = ([examples[i] for i in idx], [prompts[i] for i in idx])
        stats.batch_sizes.append(fits(lengths[idx[0]]))
        try:
            preds = decode(*chunk, fits, done)
        except (RuntimeError, ValueError, IndexError):
            preds = fallback(*chunk, [lengths[i] for i in idx])
        out.update(zip(idx, preds, strict=True))
        done.report(len(out))
    return [out[i] for i in range(len(examples))]


class _Counter:
    """A row-done callback that reports `done` (the rows ended so far, from `done`), of `total`."""

    def __init__(self, progress: Callable[[int, int], None] | None, done: int, total: int):
        self.progress, self.done, self.total = progress, done, total

    def __call__(self, _row: int) -> None:
        self.report(self.done + 1)

    def report(self, done: int) -> None:
        if done != self.done and self.progress:
            self.progress(done, self.total)
        self.done = done
