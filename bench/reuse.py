"""11. Reuse by content: the demo re-run with one candidate added, and the unchanged demo with `--new`.

The demo runs once into a store (not timed against anything). Then, alternating, `alone`: an experiment
with only the added candidate (a small causal LM built in-process, saved to a folder) in a fresh store, and
`added`: the demo plus that candidate on the demo's store, which must compute only the new candidate's items
(target: wall time within 10% of `alone`). Last, the demo unchanged with `--new` (`fresh`): every item
reused (target: under 15 s). Each run is the command a user types (`harness run FILE --db DB [--new]`, its
own process: start-up, checks and data checks included). `--quick` uses the tests' tiny experiment in place of
the demo.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench import REPO, Row, child_main, median, offline, thread_env

ADDED_TARGET, NEW_TARGET_S = 0.10, 15.0


def _added_model(folder: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    import tiny_models

    return tiny_models.save_causal(folder / "added-model", seed=7)  # weights unlike every other candidate's


def _experiments(folder: Path, quick: bool) -> tuple[Path, Path, Path]:
    """(base experiment, it with one candidate added, that candidate alone)."""
    if quick:
        sys.path.insert(0, str(REPO / "tests"))
        import tiny_models
        from test_runner import write_experiment

        base = write_experiment(folder, {"llama": tiny_models.save_causal(folder / "llama")}, ["cls", "mc", "gen"],
                                lora="steps: 10")
    else:
        base = REPO / "harness" / "experiments" / "demo.yaml"
    config = yaml.safe_load(base.read_text())
    config["suites"] = [s if not Path(s).suffix else str((base.parent / s).resolve()) for s in config["suites"]]
    added = {"name": "added-causal", "model": str(_added_model(folder))}
    plus = {**config, "candidates": [*config["candidates"], added]}
    alone = {**config, "name": f"{config['name']}-added-alone", "candidates": [added]}
    paths = []
    for name, body in (("base", config), ("plus", plus), ("alone", alone)):
        paths.append(folder / f"{name}.yaml")
        paths[-1].write_text(yaml.safe_dump(body, sort_keys=False))
    return paths[0], paths[1], paths[2]


def _timed(path: Path, db: Path, fresh: bool = False) -> tuple[float, str]:
    """`harness run PATH --db DB [--new]` as a user types it (start-up, checks, data checks, the run, the
    table): wall seconds and the run id."""
    import subprocess

    from harness.store import Store

    command = [sys.executable, "-c", "from harness.cli import main; main()", "run", str(path), "--db", str(db),
               *(["--new"] if fresh else [])]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=db.parent, capture_output=True, text=True, env=thread_env())
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-2000:]
    return wall, str(Store(db, create=False).runs()["run_id"].iloc[0])


def _computed(db: Path, run_id: str) -> set[str]:
    """The candidates with items this run computed (not-applicable items are recorded, never run: left out)."""
    from harness.store import Store

    items = Store(db).table("items", [run_id])
    return set(items[items["reused_from"].isna() & (items["status"] != "not_applicable")]["candidate"])


def run(quick: bool) -> list[Row]:
    offline()
    reps = 2
    with tempfile.TemporaryDirectory(prefix="bench-reuse-") as tmp:
        folder = Path(tmp)
        base, plus, alone = _experiments(folder, quick)
        first_s, _ = _timed(base, folder / "team.duckdb")
        alone_s, added_s, computed = [], [], set()
        for rep in range(reps):  # alternating; each `added` run starts from a copy of the demo's store
            import shutil

            db = folder / f"added-{rep}" / "h.duckdb"
            db.parent.mkdir()
            shutil.copy(folder / "team.duckdb", db)
            shutil.copytree(folder / "artifacts", db.parent / "artifacts")
            sides = [("alone", lambda rep=rep: _timed(alone, folder / f"alone-{rep}" / "h.duckdb")),
                     ("added", lambda db=db: _timed(plus, db))]
            for name, side in sides if rep % 2 == 0 else sides[::-1]:
                if name == "alone":
                    (folder / f"alone-{rep}").mkdir()
                wall, run_id = side()
                (alone_s if name == "alone" else added_s).append(wall)
                if name == "added":
                    computed |= _computed(db, run_id)
        fresh_s, fresh_id = _timed(base, folder / "team.duckdb", fresh=True)
        fresh_computed = _computed(folder / "team.duckdb", fresh_id)
    case = "tiny experiment (--quick)" if quick else "demo"
    over = median(added_s) / median(alone_s) - 1
    return [
        Row("reuse", f"{case} + one candidate: added run vs the candidate alone", f"{median(added_s):.1f} s",
            f"{median(alone_s):.1f} s", None, f"at most {ADDED_TARGET:.0%} more", over <= ADDED_TARGET,
            f"{over:+.1%}; items computed only for: {', '.join(sorted(computed))}",
            raw={"first_s": first_s, "alone_s": alone_s, "added_s": added_s, "computed": sorted(computed)}),
        Row("reuse", f"{case} unchanged, --new: every item reused", f"{fresh_s:.1f} s", f"{first_s:.1f} s (first)",
            None, f"< {NEW_TARGET_S:.0f} s", fresh_s < NEW_TARGET_S,
            f"candidates with items computed: {len(fresh_computed)}", raw={"fresh_s": fresh_s}),
    ]


if __name__ == "__main__":
    child_main(run, __doc__)
