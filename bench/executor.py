"""8. Executors: the same experiment under `local` and under `ray` (one local node), and ray with two worker
processes against one: wall time, the overhead per item, the speed-up.

`--quick` runs a tiny experiment (the tests' in-process-built models: 2 candidates x 3 suites x base and LoRA);
the full run uses the demo (harness/experiments/demo.yaml, about 5 minutes a side), one repetition a side, after
an untimed warm-up run of the tiny experiment (this process's lazy imports). Ray's start-up (a local node, its
workers importing torch) is timed apart from the run: it is paid once per `harness run`, not per item. A last
row sets the plan's estimate (harness.costs, the machine's speed figure) against the measured `local` wall.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from bench import REPO, Row, child_main, median, offline

TARGET = 0.10


def _tiny_experiment(folder: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    import tiny_models
    from test_runner import write_experiment

    causal = tiny_models.save_causal(folder / "causal")
    encoder = tiny_models.save_encoder(folder / "encoder")
    return write_experiment(folder, {"llama": causal, "bert": encoder}, ["cls", "mc", "gen"], lora="steps: 30")


def _demo(folder: Path) -> Path:
    """The demo; smaller where BENCH_EXECUTOR_EXAMPLES / BENCH_EXECUTOR_STEPS set its evaluation.max_examples
    and lora.steps (the same 2 candidates x 4 suites x base and LoRA, smaller items)."""
    import os

    import yaml

    demo = REPO / "harness" / "experiments" / "demo.yaml"
    examples, steps = os.environ.get("BENCH_EXECUTOR_EXAMPLES"), os.environ.get("BENCH_EXECUTOR_STEPS")
    if not examples and not steps:
        return demo
    data = yaml.safe_load(demo.read_text())
    if examples:
        data["evaluation"]["max_examples"] = int(examples)
    if steps:
        data["lora"]["steps"] = int(steps)
    (folder / "demo").mkdir()
    path = folder / "demo" / "demo.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _local(path: Path, db: Path) -> float:
    from harness.runner import run_experiment
    from harness.store import Store

    started = time.perf_counter()
    _, status = run_experiment(path, Store(db))
    assert status == "finished", status
    return time.perf_counter() - started


def _ray(path: Path, db: Path, workers: int) -> tuple[float, float, int]:
    """(start-up s, run s, tasks) on a fresh one-node cluster with `workers` CPUs, one item per CPU."""
    import ray

    from harness.config import ExecutorConfig
    from harness.runner import run_experiment
    from harness.store import Store

    started = time.perf_counter()
    ray.init(address="local", num_cpus=workers, num_gpus=0, include_dashboard=False, log_to_driver=False)
    ray.get([ray.remote(lambda: __import__("torch").zeros(1).sum().item()).remote() for _ in range(workers)])
    startup = time.perf_counter() - started
    try:
        started = time.perf_counter()
        _, status = run_experiment(path, Store(db), executor=ExecutorConfig(kind="ray", gpus_per_item=0))
        assert status == "finished", status
        wall = time.perf_counter() - started
    finally:
        ray.shutdown()
    items = Store(db).query("SELECT count(*) AS n FROM items")
    adapters = Store(db).query("SELECT count(*) AS n FROM adapters")
    return startup, wall, int(items["n"].iloc[0]) + int(adapters["n"].iloc[0])


def run(quick: bool) -> list[Row]:
    import os

    offline()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    with tempfile.TemporaryDirectory(prefix="bench-executor-") as tmp:
        folder = Path(tmp)
        tiny = _tiny_experiment(folder)
        path = tiny if quick else _demo(folder)
        _local(tiny, folder / "warm.duckdb")  # not timed: this process's first run pays its lazy imports
        estimate_s, machine = _estimate(path)
        reps = 2 if quick else 1
        runs = []
        for rep in range(reps):  # alternating, so the machine's load falls on every side alike
            sides = [("local", 0), ("ray", 1), ("ray", 2)]
            for kind, workers in sides if rep % 2 == 0 else sides[::-1]:
                db = folder / f"{kind}{workers}-{rep}.duckdb"
                runs.append((kind, workers, (0.0, _local(path, db), 0) if kind == "local" else _ray(path, db, workers)))
    local = median([r[2][1] for r in runs if r[0] == "local"])
    up1, one = (median([r[2][i] for r in runs if r[1] == 1]) for i in (0, 1))
    up2, two = (median([r[2][i] for r in runs if r[1] == 2]) for i in (0, 1))
    tasks = next(r[2][2] for r in runs if r[1] == 1)
    case = "tiny experiment (--quick)" if quick else f"demo ({path.parent.name}/{path.name})"
    overhead = one / local - 1
    return [
        Row("executor", f"{case}: ray, 1 worker vs local", f"{one:.1f} s (+{up1:.1f} s start-up)", f"{local:.1f} s",
            None, f"< {TARGET:.0%} more wall", overhead < TARGET,
            f"{overhead:+.1%} wall, {(one - local) / tasks * 1000:+.0f} ms per task ({tasks} tasks)",
            raw={"local_s": local, "ray1_s": one, "ray1_startup_s": up1, "tasks": tasks, "reps": reps,
                 "runs": [[k, w, list(t)] for k, w, t in runs]}),
        Row("executor", f"{case}: ray, 2 workers vs 1", f"{two:.1f} s (+{up2:.1f} s start-up)", f"{one:.1f} s",
            None, "speed-up measured", None, f"{one / two:.2f}x", raw={"ray2_s": two, "ray2_startup_s": up2}),
        Row("executor", f"{case}: plan estimate vs local wall", f"{estimate_s:.0f} s estimated", f"{local:.1f} s",
            None, "same order", 1 / 3 < estimate_s / local < 3, f"{estimate_s / local:.2f}x of measured",
            note=machine, raw={"estimate_s": estimate_s, "local_s": local}),
    ]


def _estimate(path: Path) -> tuple[float, str]:
    """The plan's estimated seconds on this machine (what `harness run` prints before it starts)."""
    from harness.costs import Machine, estimate
    from harness.runner import prepare

    prepared = prepare(path)
    machine = Machine.detect(prepared.cfg.device)
    costs = estimate(prepared.cfg, prepared.suites)
    return machine.seconds(sum(c.work for c in costs if not c.not_applicable)), machine.describe()


if __name__ == "__main__":
    child_main(run, __doc__)
