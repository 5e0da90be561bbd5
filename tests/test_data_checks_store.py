"""Data checks recorded with a run: `harness run` stores its findings (rows by file line) in `data_checks`,
`harness store copy` keeps them, `harness show`'s summary line counts them, and the report shows them
(Runs page: table and rows per finding; Leaderboard: the overlap warning)."""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pg_server as pg
import pytest
import yaml
from streamlit.testing.v1 import AppTest

from harness.cli import data_commands, main
from harness.datacheck import CheckReport, Finding
from harness.store import Store

ROOT = Path(__file__).resolve().parents[1]
pg_server_fixture, team_address_fixture = pg.pg_server_fixture, pg.team_address_fixture  # fixtures
WORDS = "amber birch cedar dune ember fjord grove heath inlet juniper kestrel larch moor".split()


def _text(i: int) -> str:
    return " ".join(f"{WORDS[(i * 5 + k) % len(WORDS)]}{i}" for k in range(7))


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _experiment(folder: Path, model: Path, name: str, leaked: list[int]) -> Path:
    """A one-suite experiment; test lines `leaked` (1-based) copy train rows 3, 4, ..."""
    folder.mkdir()
    train = [{"text": _text(i), "label": ["neg", "pos"][i % 2]} for i in range(6)]
    test = [{"text": _text(100 + i), "label": ["neg", "pos"][i % 2]} for i in range(4)]
    for n, line in enumerate(leaked):
        test[line - 1] = dict(train[2 + n])
    _jsonl(folder / "train.jsonl", train)
    _jsonl(folder / "test.jsonl", test)
    suite = {"name": name, "kind": "classification", "data": {"train": "train.jsonl", "test": "test.jsonl"},
             "labels": ["neg", "pos"], "template": "{{ text }} =>", "metrics": ["accuracy"]}
    (folder / "suite.yaml").write_text(yaml.safe_dump(suite), encoding="utf-8")
    path = folder / "exp.yaml"
    path.write_text(f"name: {name}\ndevice: cpu\ncandidates:\n  - {{name: tiny, model: '{model}'}}\n"
                    f"variants: [base]\nsuites: ['{folder / 'suite.yaml'}']\nevaluation: {{bootstrap_resamples: 10}}\n",
                    encoding="utf-8")
    return path


def _harness(*args: str) -> int:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sys, "argv", ["harness", *args])
        try:
            main()
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else 0
    return 0


@dataclass(frozen=True)
class Runs:
    db: Path
    leaky: str  # run id of the experiment whose test lines 2 and 3 repeat train rows
    clean: str
    test_file: Path


@pytest.fixture(scope="module")
def runs(tmp_path_factory, causal_dir) -> Runs:
    """Two real `harness run`s of a tiny causal LM into one store: a leaky suite, and a clean one."""
    folder = tmp_path_factory.mktemp("dc_store")
    db = folder / "runs.duckdb"
    ids = {}
    for name, leaked in (("leaky", [2, 3]), ("clean", [])):
        assert _harness("run", str(_experiment(folder / name, causal_dir, name, leaked)), "--db", str(db)) == 0
        frame = Store(db, create=False).runs()
        ids[name] = frame.loc[frame["name"] == name, "run_id"].iloc[0]
    return Runs(db, ids["leaky"], ids["clean"], folder / "leaky" / "test.jsonl")


def test_a_run_stores_its_findings_with_file_lines(runs):
    store = Store(runs.db, create=False)
    found = store.data_checks([runs.leaky])
    assert list(found["suite"]) == ["leaky"] and list(found["check_kind"]) == ["overlap"]
    assert list(found["severity"]) == ["warning"]
    assert list(found["rows"][0]) == [f"{runs.test_file}:2", f"{runs.test_file}:3"]
    assert "2 of 4 test rows also in the train split" in found["message"][0]
    assert store.data_checks([runs.clean]).empty
    recorded = json.loads((runs.db.parent / "artifacts" / runs.leaky / "data_checks.json").read_text())
    assert recorded["findings"][0]["rows"] == list(found["rows"][0])  # the JSON is still written
    assert data_commands.summary_line(store, runs.leaky) == ("data checks: 1 finding (1 warning overlap); "
                                                             "harness data check EXPERIMENT for details")
    assert data_commands.summary_line(store, runs.clean) is None


def test_recording_again_replaces_the_runs_findings_in_one_transaction(tmp_path):
    store = Store(tmp_path / "s.duckdb")
    first = [Finding("a", "overlap", "error", "m1", ["f.jsonl:1"]), Finding("b", "empty", "warning", "m2", [])]
    assert store.write_data_checks("r1", first) == 2
    store.write_data_checks("r2", [Finding("a", "long", "warning", "other run", ["g.jsonl:9"])])
    with pytest.raises(Exception):  # noqa: B017 - whatever pyarrow raises, the earlier rows must survive
        store.write_data_checks("r1", [Finding(object(), "empty", "warning", "bad", [])])
    kept = store.data_checks(["r1"])
    assert list(kept["message"]) == ["m1", "m2"] and list(kept["rows"][1]) == []
    data_commands.record(CheckReport(["a"], [Finding("a", "duplicate", "warning", "m3", ["f.jsonl:4"])]),
                         store, "r1")
    assert list(store.data_checks(["r1"])["message"]) == ["m3"]
    assert list(store.data_checks(["r2"])["message"]) == ["other run"]  # another run's findings untouched
    data_commands.record(CheckReport(["a"]), store, "r1")
    assert store.data_checks(["r1"]).empty and data_commands.summary_line(store, "r1") is None


def test_store_copy_keeps_the_findings(runs, tmp_path):
    target = tmp_path / "copy.duckdb"
    assert _harness("store", "copy", "--from", str(runs.db), "--to", str(target)) == 0
    source, copied = Store(runs.db, create=False), Store(target, create=False)
    ids = [runs.leaky, runs.clean]
    assert copied.data_checks(ids).to_dict("list") == source.data_checks(ids).to_dict("list")
    assert len(copied.data_checks(ids)) == 1


def test_store_copy_into_a_team_store_keeps_the_findings(runs, team_address):
    """A team store keeps them in DuckLake: the list of rows and the order come back as written."""
    assert _harness("store", "copy", "--from", str(runs.db), "--to", team_address) == 0
    team = Store(team_address, create=False)
    assert team.data_checks([runs.leaky]).to_dict("list") == Store(runs.db, create=False).data_checks(
        [runs.leaky]).to_dict("list")
    assert data_commands.summary_line(team, runs.leaky).startswith("data checks: 1 finding (1 warning overlap)")


def _page(db: Path, name: str, run_id: str) -> AppTest:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HARNESS_DB", str(db))
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.query_params["run"] = run_id
        at.run()
        if name != "leaderboard":
            at.switch_page(f"reports/pages/{name}.py")
            at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _plain(markdown: str) -> str:
    return re.sub(r"\\(.)", r"\1", markdown)


def test_runs_page_shows_the_findings_and_their_rows(runs):
    at = _page(runs.db, "runs", runs.leaky)
    assert "Data checks" in [s.value for s in at.subheader]
    table = next(d.value for d in at.dataframe if "severity" in d.value.columns)
    assert list(table.columns) == ["severity", "suite", "check", "message", "n_rows"]
    assert table.iloc[0][["severity", "suite", "check", "n_rows"]].tolist() == ["warning", "leaky", "overlap", 2]
    [expander] = [e for e in at.expander if "leaky" in _plain(e.label)]
    assert _plain(expander.label) == "1. warning · leaky · overlap (2 rows)"
    assert expander.code[0].value.splitlines() == [f"{runs.test_file}:2", f"{runs.test_file}:3"]
    assert any("also in the train split" in t.value for t in expander.text)
    assert any("suite leaky (warning, 2 test rows)" in _plain(w.value) for w in at.warning)


def test_runs_page_says_no_findings_and_leaderboard_warns_only_on_overlap(runs):
    clean = _page(runs.db, "runs", runs.clean)
    assert any("no findings" in s.value for s in clean.success) and not clean.expander
    assert not _page(runs.db, "leaderboard", runs.clean).warning
    board = _page(runs.db, "leaderboard", runs.leaky)
    [marker] = [_plain(w.value) for w in board.warning]
    assert f"run {runs.leaky} suite leaky (warning, 2 test rows)" in marker and "LoRA lift" in marker


def test_show_prints_the_findings_line_under_the_table(runs, capsys):
    capsys.readouterr()
    assert _harness("show", runs.leaky, "--db", str(runs.db)) == 0
    out = capsys.readouterr().out
    assert out.rstrip().splitlines()[-1] == ("data checks: 1 finding (1 warning overlap); harness data check "
                                             "EXPERIMENT for details")
    assert _harness("show", runs.clean, "--db", str(runs.db)) == 0
    assert "data checks:" not in capsys.readouterr().out
