"""Runs: history, what reproduces each run (config, fingerprints, versions, command) and its deep links."""

from __future__ import annotations

import json
import shlex

import pandas as pd

from harness.store import Store
from harness.store import report_queries as q
from reports.links import run_links

HISTORY_COLUMNS = ["run_id", "name", "status", "started_at", "finished_at", "wall_s", "n_candidates",
                   "n_items_done", "n_items_failed", "seed", "config_hash", "git_commit", "git_dirty"]


def run_history(store: Store) -> pd.DataFrame:
    """Every run, newest first."""
    runs = q.runs(store)
    if runs.empty:
        return pd.DataFrame(columns=HISTORY_COLUMNS)
    wall = (pd.to_datetime(runs["finished_at"]) - pd.to_datetime(runs["started_at"])).dt.total_seconds()
    return runs.assign(wall_s=wall)[HISTORY_COLUMNS]


def _json(text: str | None) -> dict:
    try:
        return json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {"unparsed": text}


def fingerprints(store: Store, run_id: str) -> pd.DataFrame:
    """Model and dataset fingerprints of a run: what must match for its numbers to be comparable."""
    models = q.candidates(store, [run_id])
    data = q.datasets(store, [run_id])
    rows = [{"kind": "model", "name": r.candidate, "source": r.model_ref, "fingerprint": r.fingerprint,
             "detail": f"{r.kind}, {r.total_params:,} parameters"} for r in models.itertuples(index=False)]
    rows += [{"kind": "dataset", "name": r.suite, "source": r.path, "fingerprint": r.fingerprint,
              "detail": f"{r.n_train} train / {r.n_validation} validation / {r.n_test} test rows"}
             for r in data.itertuples(index=False)]
    return pd.DataFrame(rows, columns=["kind", "name", "source", "fingerprint", "detail"])


def reproduce_command(run: dict) -> str:
    """Shell lines that reproduce a run: the commit, then the experiment as a fresh run."""
    lines = []
    if run.get("git_commit"):
        lines.append(f"git checkout {run['git_commit']}")
        if run.get("git_dirty"):
            lines.append("# the working tree had uncommitted changes when this run started")
    lines.append(f"harness run {shlex.quote(str(run.get('experiment_path') or 'experiment.yaml'))} --new")
    lines.append(f"# as recorded: {run.get('command')}")
    lines.append(f"# config hash {run.get('config_hash')}, seed {run.get('seed')}")
    return "\n".join(lines)


def run_details(store: Store, run_id: str) -> dict:
    """Config, versions, fingerprints, the reproducing command and deep links of one run."""
    runs = q.runs(store)
    run = runs[runs["run_id"] == run_id].iloc[0].to_dict()
    items = q.items(store, [run_id])
    links = run_links(run_id, sorted(set(items["candidate"])), sorted(set(items["suite"])),
                      sorted(set(items["variant"])))
    return {
        "run": run,
        "config": _json(run.get("config_json")),
        "versions": _json(run.get("versions_json")),
        "fingerprints": fingerprints(store, run_id),
        "reproduce": reproduce_command(run),
        "items": items.drop(columns=[c for c in ("run_id",) if c in items]),
        "links": pd.DataFrame(links, columns=["view", "for", "link"]),
    }
