"""The answer inside a generated text: the suite's `extract` regex (group 1, or the whole match)."""

from __future__ import annotations

import re


def extraction_matches(text: str, pattern: str) -> bool:
    return re.search(pattern, text, flags=re.DOTALL) is not None


def extract(text: str, pattern: str | None) -> str:
    """The answer inside a generation: group 1 of the regex (or the whole match); the text if no match."""
    if not pattern:
        return text
    match = re.search(pattern, text, flags=re.DOTALL)
    if not match:
        return text
    return (match.group(1) if match.groups() else match.group(0)).strip()
