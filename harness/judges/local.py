"""A local judge: a model the harness loads scores each rubric option as a continuation of the prompt.

No text is generated and nothing is parsed. Each option's summed log-probability as the continuation
` OPTION` after the prompt comes from harness.predict's choice scoring (each context run once, its
cache shared by the options); the probabilities renormalised over the options give the most likely
option and the probability-weighted grade (G-Eval, Liu et al. 2023).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from harness.judges.prompt import option_value
from harness.judges.verdict import Verdict


class LocalJudge:
    """Judge with a loaded causal model (harness.models.LoadedModel)."""

    def __init__(self, loaded: Any, batch_size: int = 8, chat: bool | None = None) -> None:
        if loaded.kind != "causal":
            raise ValueError(f"a judge needs a causal model; {loaded.ref.ref} is {loaded.kind}")
        self.loaded = loaded
        self.ref = loaded.ref.ref
        self.fingerprint = loaded.fingerprint
        self.batch_size = batch_size
        self.chat = bool(getattr(loaded.tokenizer, "chat_template", None)) if chat is None else chat

    def context(self, prompt: str) -> str:
        """The text the options continue: the prompt, in the model's chat template where it has one."""
        if not self.chat:
            return prompt
        messages = [{"role": "user", "content": prompt}]
        return self.loaded.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def logprobs(self, prompts: Sequence[str], options: Sequence[str]) -> list[list[float]]:
        """Summed log-probability of ` OPTION` after each prompt, one row per prompt."""
        from harness.predict import choice_logprobs, encode_pair

        tok = self.loaded.tokenizer
        rows: list[list[float]] = []
        for start in range(0, len(prompts), self.batch_size):
            batch = prompts[start:start + self.batch_size]
            pairs = [[encode_pair(tok, self.context(p), f" {o}") for o in options] for p in batch]
            rows += choice_logprobs(self.loaded.model, pairs, tok.pad_token_id, self.loaded.device)
        return rows

    def judge(self, prompts: Sequence[str], options: Sequence[str]) -> list[Verdict]:
        return [verdict_from_logprobs(options, row) for row in self.logprobs(prompts, options)]


def verdict_from_logprobs(options: Sequence[str], logprobs: Sequence[float]) -> Verdict:
    top = max(logprobs)
    weights = [math.exp(lp - top) for lp in logprobs]
    total = sum(weights)
    probabilities = {o: w / total for o, w in zip(options, weights, strict=True)}
    best = max(options, key=lambda o: probabilities[o])
    return Verdict(best, probabilities, mass=math.exp(top) * total)


def expected_grade(verdict: Verdict) -> float | None:
    """The probability-weighted grade (G-Eval); for an endpoint verdict, the chosen option's value."""
    if not verdict.ok:
        return None
    if verdict.probabilities is None:
        return option_value(verdict.label)
    return sum(p * option_value(o) for o, p in verdict.probabilities.items())
