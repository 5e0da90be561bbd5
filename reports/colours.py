"""One colour per candidate, the same on every page and every chart."""

from __future__ import annotations

from collections.abc import Iterable

import altair as alt

# Tableau 10, then its lighter half of Tableau 20: distinguishable, colour-blind friendly for the first few.
PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2", "#ff9da6",
           "#9d755d", "#bab0ac", "#9ecae9", "#ffbf79", "#88d27a", "#ff9d98", "#83bcb6", "#d6a5c9"]


def candidate_colours(candidates: Iterable[str]) -> dict[str, str]:
    """Candidate name -> colour. Pass every candidate in the store (not only those shown) so that a
    candidate keeps its colour whatever the page filters: colours follow the sorted names."""
    names = sorted({str(c) for c in candidates})
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def colour_scale(colours: dict[str, str], shown: Iterable[str] | None = None) -> alt.Scale:
    """An Altair colour scale for the candidates shown, with their fixed colours."""
    domain = [c for c in colours if shown is None or c in set(shown)]
    return alt.Scale(domain=domain, range=[colours[c] for c in domain])
