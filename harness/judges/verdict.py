"""What a judge returns for one prompt, and the protocol every judge follows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Verdict:
    """One judged item: the chosen option, or an error (a failure is never a grade).

    `probabilities` (local judges) are the options' probabilities renormalised over the options;
    `mass` is how much of the model's next-text probability the options held before that.
    """

    label: str | None
    probabilities: dict[str, float] | None = None
    mass: float | None = None
    raw: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.label is not None and self.error is None


class Judge(Protocol):
    """A judge: a name, a fingerprint of the model behind it, and one verdict per prompt."""

    ref: str
    fingerprint: str

    def judge(self, prompts: Sequence[str], options: Sequence[str]) -> list[Verdict]: ...
