"""Page addresses and deep links: a URL (relative to the app) that opens a page on a run, candidate or suite."""

from __future__ import annotations

from urllib.parse import urlencode

PAGES = {
    "leaderboard": "Leaderboard",
    "lift": "Fine-tuning lift",
    "compare": "Compare two",
    "training": "Training",
    "cost": "Cost and quality",
    "runs": "Runs",
    "gates": "Gate history",
    "judges": "Judges",
}


def deep_link(page: str, **params: str | list[str] | None) -> str:
    """'compare?run=R&a=c%2Fbase' style link; None values are left out, lists repeat the key."""
    if page not in PAGES:
        raise ValueError(f"unknown page {page!r}")
    kept = {k: v for k, v in params.items() if v not in (None, "", [])}
    query = urlencode(kept, doseq=True)
    return f"{page}?{query}" if query else page


def run_links(run_id: str, candidates: list[str], suites: list[str], variants: list[str]) -> list[dict]:
    """Links to every view of one run: the run-level pages, each candidate and each suite."""
    links = [{"view": PAGES[p], "for": "run", "link": deep_link(p, run=run_id)}
             for p in ("leaderboard", "lift", "training", "cost")]
    first = variants[0] if variants else "base"
    for candidate in candidates:
        other = f"{candidate}/lora" if "lora" in variants and first != "lora" else f"{candidate}/{first}"
        links.append({"view": PAGES["compare"], "for": f"candidate {candidate}",
                      "link": deep_link("compare", run=run_id, a=f"{candidate}/{first}", b=other)})
        links.append({"view": PAGES["training"], "for": f"candidate {candidate}",
                      "link": deep_link("training", run=run_id, candidate=candidate)})
    for suite in suites:
        links.append({"view": PAGES["compare"], "for": f"suite {suite}",
                      "link": deep_link("compare", run=run_id, suite=suite)})
        links.append({"view": PAGES["cost"], "for": f"suite {suite}",
                      "link": deep_link("cost", run=run_id, suite=suite)})
    return links
