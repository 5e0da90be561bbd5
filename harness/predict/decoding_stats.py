"""What generation cost and where its output may differ from plain greedy decoding, summed over batches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class DecodingStats:
    """What generation cost and where its output may differ from plain greedy decoding (summed over batches).

    near_tie_rows: rows where an emitted token's top two logits were within the tie margin, so a
    different kernel shape (speculative verification, another batch) may have flipped the argmax.
    truncated: prompts cut to the suite's `truncate` length (harness.predict.truncation).
    """

    rows: int = 0
    new_tokens: int = 0
    forward_passes: int = 0
    drafted: int = 0
    accepted: int = 0
    near_tie_rows: int = 0
    near_tie_inputs: list[str] = field(default_factory=list)
    batch_sizes: list[int] = field(default_factory=list)
    truncated: int = 0

    def add(self, decoded: Any, prompts: Sequence[str]) -> None:
        self.rows += len(decoded.tokens)
        self.new_tokens += sum(len(t) for t in decoded.tokens)
        self.forward_passes += decoded.forward_passes
        self.drafted, self.accepted = self.drafted + decoded.drafted, self.accepted + decoded.accepted
        self.near_tie_rows += len(decoded.near_tie_rows)
        self.near_tie_inputs += [prompts[row] for row in decoded.near_tie_rows]
