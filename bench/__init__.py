"""Benchmarks: the harness side by side with what a team would otherwise use.

`python -m bench [--only NAME] [--quick] [--write]` runs every comparison in its own child process,
A against B alternating in that process, and prints one table of medians and ratios. Benchmarks are
not tests: CI times nothing; `tests/test_bench_correctness.py` checks that the optimised paths the
benchmarks drive compute what the plain paths compute.

This module holds what every comparison shares: where the real data lives, the alternating timer,
paired ratios with their spread, and the result row.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def threads() -> int:
    """Torch threads for the benchmarks: $BENCH_THREADS, default 1.

    On a small machine shared with other jobs, two OpenMP threads spin at every barrier while the
    other is descheduled; one thread measured about 5x faster per forward than two at load ~8 on
    2 cores. Both sides of a comparison always run with the same setting.
    """
    return int(os.environ.get("BENCH_THREADS", "1"))


def thread_env() -> dict[str, str]:
    """Environment for a child process (a benchmark or the demo) with the benchmark's thread count."""
    n = str(threads())
    return {**os.environ, "OMP_NUM_THREADS": n, "MKL_NUM_THREADS": n, "BENCH_THREADS": n}


def offline() -> None:
    """No hub, quiet libraries, the benchmark's thread count: the benchmarks read local files only."""
    for key, value in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                       "TRANSFORMERS_VERBOSITY": "error", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}.items():
        os.environ.setdefault(key, value)
    import torch

    torch.set_num_threads(threads())


def shared_data(name: str) -> Path:
    """A file of ../shared/data; exits with a clear message where it is absent (it is never copied here)."""
    path = DATA / name
    if not path.is_file():
        raise SystemExit(f"bench: {path} not found. The benchmarks read the real evaluation sets from "
                         f"../shared/data (see its SOURCES.md); they are not part of this project.")
    return path


@dataclass
class Ratio:
    """How many times faster (or more) one side is, per repetition; median and spread over repetitions."""

    median: float
    low: float
    high: float
    per_rep: list[float]

    def text(self) -> str:
        return f"{self.median:.2f}x [{self.low:.2f}-{self.high:.2f}]"


def paired_ratio(numerators: list[float], denominators: list[float]) -> Ratio:
    """Ratios of the i-th repetitions (A and B of one repetition ran back to back, so load is shared)."""
    values = [n / d for n, d in zip(numerators, denominators, strict=True) if d > 0]
    return Ratio(statistics.median(values), min(values), max(values), values)


def median(values: list[float]) -> float:
    return statistics.median(values)


def alternate(sides: dict[str, Callable[[], Any]], reps: int) -> tuple[dict[str, list[float]], dict[str, Any]]:
    """Run the sides in turn, `reps` times, reversing the order every other repetition.

    Returns the wall times of each side (one per repetition) and each side's last output, which the
    comparison checks for sameness. Alternation shares the machine's load (other jobs, thermal state)
    fairly between the sides; the reversal removes an advantage of always running first or second.
    """
    times: dict[str, list[float]] = {name: [] for name in sides}
    outputs: dict[str, Any] = {}
    names = list(sides)
    for rep in range(reps):
        for name in names if rep % 2 == 0 else names[::-1]:
            started = time.perf_counter()
            outputs[name] = sides[name]()
            times[name].append(time.perf_counter() - started)
    return times, outputs


@dataclass
class Row:
    """One line of the results table."""

    comparison: str
    case: str
    ours: str
    baseline: str
    ratio: Ratio | None
    target: str
    met: bool | None
    check: str
    note: str = ""
    raw: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Row:
        ratio = data.get("ratio")
        return cls(**{**data, "ratio": Ratio(**ratio) if ratio else None})


def seconds(values: list[float]) -> str:
    return f"{median(values):.2f} s"


def verdict(met: bool | None) -> str:
    return {True: "met", False: "missed", None: "-"}[met]


def child_main(run: Callable[[bool], list[Row]], doc: str | None) -> None:
    """`python -m bench.NAME [--quick] [--json FILE]`: one comparison, its rows as JSON."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and smaller subsets")
    parser.add_argument("--json", type=Path, help="write the rows here (default: print them)")
    args = parser.parse_args()
    text = json.dumps([row.as_dict() for row in run(args.quick)], indent=1)
    if args.json:
        args.json.write_text(text, encoding="utf-8")
    else:
        print(text)
