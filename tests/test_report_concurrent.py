"""The report reads a store while `harness run` writes into it from another process: neither fails, and new
results show up on the next read."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness.store import Store  # noqa: E402
from reports.compare import suite_differences  # noqa: E402
from reports.leaderboard import leaderboard_frame, leaderboard_table  # noqa: E402
from reports.lift import lift_frame  # noqa: E402
from reports.runs import run_history  # noqa: E402
from reports.scores import PRIMARY, selection_options  # noqa: E402
from reports.training import training_summary  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
pytest_plugins = ["report_fixtures"]


def read_everything(store: Store) -> int:
    """What the pages read; returns how many scored cells the leaderboard has so far."""
    history = run_history(store)
    if history.empty:
        return 0
    run_ids = [history["run_id"].iloc[0]]
    options = selection_options(store, run_ids)
    reference = options["systems"][0] if options["systems"] else None
    long = leaderboard_frame(store, run_ids, PRIMARY, reference, n_resamples=200)
    leaderboard_table(long)
    lift_frame(store, run_ids, n_resamples=200)
    training_summary(store, run_ids)
    if len(options["systems"]) >= 2:
        rows = [tuple(k.split("/")[1:]) for k in options["systems"][:2]]
        suite_differences(store, run_ids[0], rows[0], rows[1], n_resamples=200)
    return int(long["value"].notna().sum())


def test_report_reads_while_a_run_writes(report_experiment, tmp_path):
    db = tmp_path / "live.duckdb"
    env = {**os.environ, "HARNESS_DB": str(db)}
    command = [sys.executable, "-c", "from harness.cli import main; main()", "run", str(report_experiment),
               "--db", str(db), "--new"]
    writer = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    store = Store(db)
    seen, reads, renders = [], 0, 0
    deadline = time.monotonic() + 600
    try:
        while writer.poll() is None and time.monotonic() < deadline:
            seen.append(read_everything(store))
            reads += 1
            if reads % 10 == 0:
                os.environ["HARNESS_DB"] = str(db)
                at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
                assert not at.exception and not at.error, [e.value for e in at.exception]
                renders += 1
            time.sleep(0.05)
    finally:
        if writer.poll() is None:
            writer.kill()
        output = writer.communicate()[0].decode(errors="replace")
    assert writer.returncode == 0, output[-3000:]
    final = read_everything(store)
    assert final == 6  # 4 rows x 2 suites, less the encoder base and LoRA on generation (not applicable)
    assert reads >= 5 and renders >= 1
    assert seen == sorted(seen), "scores only ever appear, never vanish"
    assert len(set(seen + [final])) >= 3, f"results should appear as the run writes them: {seen}"
