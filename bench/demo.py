"""6. The demo end to end: wall time, peak memory and the share spent outside model computation.

Runs the README's main command, `.venv/bin/harness demo --db <tmp>` (what `scripts/demo.sh` runs once
setup is done), once, in a child process. Model computation is what the store records:
`items.model_s` (predicting) and `adapters.wall_s` (LoRA training, its validation included). The
rest (imports, loading models, metrics and bootstrap intervals, store writes, reporting) is overhead.
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import REPO, Row, child_main, thread_env

TARGET = 0.10


def run_demo(db: Path) -> tuple[float, float, int, str]:
    """Wall seconds, peak resident MiB of the command's process tree, exit code, output tail."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    harness = Path(sys.executable).parent / "harness"
    started = time.perf_counter()
    done = subprocess.run([str(harness), "demo", "--db", str(db)], cwd=REPO, env=thread_env(),
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    peak = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024
    return wall, peak, done.returncode, (done.stdout + done.stderr)[-2000:]


def model_seconds(db: Path) -> dict[str, float]:
    from harness.store import Store

    store = Store(db)
    items = store.query("SELECT sum(model_s) AS model, sum(wall_s) AS wall, count(*) AS n FROM items")
    adapters = store.query("SELECT sum(wall_s) AS wall, count(*) AS n FROM adapters")
    return {"predict_s": float(items["model"].iloc[0] or 0), "evaluate_s": float(items["wall"].iloc[0] or 0),
            "items": int(items["n"].iloc[0]), "train_s": float(adapters["wall"].iloc[0] or 0),
            "adapters": int(adapters["n"].iloc[0])}


def run(quick: bool) -> list[Row]:
    if quick:
        return [Row("demo", "harness demo", "skipped with --quick (about 10 minutes)", "-", None,
                    f"< {TARGET:.0%} overhead", None, "-")]
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        db = Path(tmp) / "demo.duckdb"
        wall, peak, code, tail = run_demo(db)
        if code != 0:
            return [Row("demo", "harness demo", f"failed (exit {code})", "-", None, f"< {TARGET:.0%} overhead", False,
                        tail.strip().splitlines()[-1] if tail.strip() else "no output", raw={"tail": tail})]
        parts = model_seconds(db)
    model = parts["predict_s"] + parts["train_s"]
    overhead = 1 - model / wall
    metrics = parts["evaluate_s"] - parts["predict_s"]
    return [Row(
        "demo", f"harness demo ({parts['items']} work items, {parts['adapters']} adapters)",
        f"{wall:.0f} s wall, peak {peak:.0f} MiB", "-", None, f"< {TARGET:.0%} overhead", overhead < TARGET,
        f"outside model computation {overhead:.1%} ({wall - model:.0f} s: metrics and intervals {metrics:.0f} s, "
        f"the rest {wall - model - metrics:.0f} s); predict {parts['predict_s']:.0f} s, train {parts['train_s']:.0f} s",
        raw={**parts, "wall_s": wall, "peak_mib": peak},
    )]


if __name__ == "__main__":
    child_main(run, __doc__)
