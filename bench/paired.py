"""4. Paired significance: the harness's paired bootstrap against sacreBLEU's `--paired-bs`.

Multi30k test 2016 (1,000 EN->DE pairs), BLEU, 1,000 resamples, sacreBLEU's default seed (12345)
on both sides. Two system outputs derived deterministically from the references:
- system A drops every 5th word of every reference;
- system B equals A, except that every 30th line is the untouched reference and the line midway
  between drops every 3rd word instead: a small difference, not significant at 0.05;
- a second pair (A against "drop every 4th word") differs clearly.
Both tools must reach the same verdict (p < 0.05 or not) with p-values within 0.02.

Two timings: from the statistics the harness stores for every evaluated example (what its paired
test reads) against sacreBLEU's whole test (it re-extracts statistics from the text each time);
and from text on both sides (the harness extracting statistics with sacreBLEU's own extractor).
"""

from __future__ import annotations

import json
from typing import Any

from bench import Row, alternate, child_main, median, offline, paired_ratio, shared_data

SEED = 12345
RESAMPLES = 1000
TARGET = 10.0
TOLERANCE = 0.02
STORED, TEXT = "from stored statistics", "from text"


def drop_every(text: str, k: int) -> str:
    return " ".join(word for i, word in enumerate(text.split()) if (i + 1) % k)


def systems() -> tuple[list[str], dict[str, tuple[list[str], list[str]]]]:
    rows = [json.loads(line) for line in shared_data("multi30k_test2016_en_de.jsonl").read_text("utf-8").splitlines()]
    refs = [r["target"] for r in rows]
    a = [drop_every(r, 5) for r in refs]
    close = [r if i % 30 == 0 else drop_every(r, 3) if i % 30 == 15 else x
             for i, (r, x) in enumerate(zip(refs, a, strict=True))]
    apart = [drop_every(r, 4) for r in refs]
    return refs, {"close systems": (a, close), "clearly different systems": (a, apart)}


def sacrebleu_side(refs: list[str], a: list[str], b: list[str]) -> float:
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest

    test = PairedTest([("a", a), ("b", b)], {"BLEU": BLEU()}, [refs], test_type="bs", n_samples=RESAMPLES)
    _, results = test()
    return float(results["BLEU"][1].p_value)


def harness_from_stats(metric: Any, stats_a: Any, stats_b: Any) -> float:
    from harness.metrics.stats import paired_test

    return paired_test(metric, stats_a, stats_b, "bootstrap", RESAMPLES, seed=SEED)["bleu"].p_value


def harness_from_text(metric: Any, refs: list[str], a: list[str], b: list[str]) -> float:
    return harness_from_stats(metric, metric.example_stats(a, refs), metric.example_stats(b, refs))


def compare(case: str, refs: list[str], a: list[str], b: list[str], reps: int) -> list[Row]:
    from harness.metrics import get_metric

    metric = get_metric("bleu")
    stats_a, stats_b = metric.example_stats(a, refs), metric.example_stats(b, refs)
    times, outputs = alternate({STORED: lambda: harness_from_stats(metric, stats_a, stats_b),
                                TEXT: lambda: harness_from_text(metric, refs, a, b),
                                "sacrebleu": lambda: sacrebleu_side(refs, a, b)}, reps)
    p_ours, p_text, p_theirs = (outputs[k] for k in (STORED, TEXT, "sacrebleu"))
    agree = (p_ours < 0.05) == (p_theirs < 0.05) and abs(p_ours - p_theirs) <= TOLERANCE and p_text == p_ours
    check = (f"p = {p_ours:.4f} vs {p_theirs:.4f} ({'same verdict' if agree else 'DIFFERENT'} at 0.05, "
             f"difference {abs(p_ours - p_theirs):.4f})")
    rows = []
    for side, target in ((STORED, TARGET), (TEXT, None)):
        ratio = paired_ratio(times["sacrebleu"], times[side])
        rows.append(Row(
            "paired", f"{case}, {side}", f"{1000 * median(times[side]):.1f} ms",
            f"{1000 * median(times['sacrebleu']):.1f} ms", ratio, f">= {target:.0f}x" if target else "-",
            (ratio.median >= target and agree) if target else None, check,
            raw={"times": times, "p": {"harness": p_ours, "sacrebleu": p_theirs}},
        ))
    return rows


def run(quick: bool) -> list[Row]:
    offline()
    refs, pairs = systems()
    reps = 5 if quick else 11
    return [row for case, (a, b) in pairs.items() for row in compare(case, refs, a, b, reps)]


if __name__ == "__main__":
    child_main(run, __doc__)
