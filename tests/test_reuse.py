"""Reuse by content: an item is copied from an earlier run exactly when everything that determines it is equal;
each input changed alone forces the items it determines to be recomputed (and only those); an adapter of an
unchanged recipe is reused, never retrained; `--no-reuse` recomputes."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
from cli_helper import cli
from test_runner import write_experiment

import harness.runner as runner_module
from harness.reuse import fingerprints
from harness.runner import run_experiment
from harness.store import Store

ITEMS = {(v, s) for v in ("base", "lora") for s in ("tiny_cls", "tiny_gen")}


@pytest.fixture(autouse=True)
def _no_gc_between_items(monkeypatch):
    monkeypatch.setattr("harness.runner.gc", SimpleNamespace(collect=lambda: 0))


@pytest.fixture
def trainings(monkeypatch) -> list[str]:
    """The suites LoRA adapters were trained for, in order (train_lora wrapped, not replaced)."""
    seen: list[str] = []
    real = runner_module.train_lora

    def counting(base, suite, *args, **kwargs):
        seen.append(suite.name)
        return real(base, suite, *args, **kwargs)

    monkeypatch.setattr(runner_module, "train_lora", counting)
    return seen


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, causal_dir):
    """One finished run of (llama) x (base, lora) x (cls, gen), in a store each test copies."""
    folder = tmp_path_factory.mktemp("reuse")
    path = write_experiment(folder, {"llama": causal_dir}, ["cls", "gen"])
    store = Store(folder / "first.duckdb")
    run_id, status = run_experiment(path, store, artifacts=folder / "artifacts")
    assert status == "finished"
    return SimpleNamespace(folder=folder, path=path, db=folder / "first.duckdb", run_id=run_id)


def _copy(first_run, tmp_path: Path) -> tuple[Path, Store]:
    """The first run's experiment folder (suites, store, adapters) copied; the same absolute adapter paths."""
    work = tmp_path / "work"
    shutil.copytree(first_run.folder, work, ignore=shutil.ignore_patterns("artifacts"))
    return work, Store(work / "first.duckdb")


def _items(store: Store, run_id: str) -> dict[tuple[str, str], str | None]:
    frame = store.table("items", [run_id])
    return {(r.variant, r.suite): (None if r.reused_from is None or r.reused_from != r.reused_from else r.reused_from)
            for r in frame.itertuples()}


def _rerun(work: Path, store: Store, **kwargs) -> str:
    run_id, status = run_experiment(work / "experiment.yaml", store, fresh=True, artifacts=work / "artifacts",
                                    **kwargs)
    assert status == "finished"
    return run_id


def _table(store: Store, run_id: str) -> str:
    from harness.store.report_queries import scores
    from harness.tables import comparison_frame, render_text

    return render_text(comparison_frame(scores(store, [run_id]), store.table("items", [run_id])))


def test_an_unchanged_experiment_reuses_every_item_and_its_table_equals_the_original(first_run, tmp_path,
                                                                                    trainings, monkeypatch):
    work, store = _copy(first_run, tmp_path)
    monkeypatch.setattr(runner_module.models, "load", lambda *a, **k: pytest.fail("a model was loaded"))
    again = _rerun(work, store)
    assert _items(store, again) == {key: first_run.run_id for key in ITEMS}
    assert trainings == []
    assert _table(store, again) == _table(store, first_run.run_id)
    for name in ("predictions", "example_stats", "scores"):
        old, new = (store.table(name, [r]).drop(columns="run_id") for r in (first_run.run_id, again))
        sort = [c for c in ("candidate", "variant", "suite", "example_id", "metric", "score") if c in old.columns]
        assert old.sort_values(sort).reset_index(drop=True).equals(new.sort_values(sort).reset_index(drop=True))
    adapters = store.table("adapters", [again])
    assert set(adapters["reused_from"]) == {first_run.run_id} and len(adapters) == 2
    assert len(store.table("candidates", [again])) == 1
    third = _rerun(work, store)  # a copy of a copy names the run that computed it
    assert set(_items(store, third).values()) == {first_run.run_id}


def test_no_reuse_recomputes_every_item_and_trains_again(first_run, tmp_path, trainings):
    work, store = _copy(first_run, tmp_path)
    again = _rerun(work, store, reuse=False)
    assert _items(store, again) == {key: None for key in ITEMS}
    assert sorted(trainings) == ["tiny_cls", "tiny_gen"]
    assert store.table("adapters", [again])["reused_from"].isna().all()


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def _perturb_model(work: Path, causal_dir: Path) -> None:
    """A copy of the tiny model with one weight changed, and the experiment pointed at it."""
    import torch
    from safetensors.torch import load_file, save_file

    model = work / "model"
    shutil.copytree(causal_dir, model)
    weights = next(model.glob("*.safetensors"))
    tensors = load_file(weights)
    name = next(iter(tensors))
    tensors[name] = tensors[name] + torch.full_like(tensors[name], 1e-3)
    save_file(tensors, weights, metadata={"format": "pt"})
    _edit(work / "experiment.yaml", str(causal_dir), str(model))


# change -> (items recomputed, adapters trained again); every other item must be reused
CHANGES = {
    "model weights": (ITEMS, {"tiny_cls", "tiny_gen"}),
    "test data": ({("base", "tiny_gen"), ("lora", "tiny_gen")}, set()),
    "training data": ({("lora", "tiny_gen")}, {"tiny_gen"}),
    "template": ({("base", "tiny_cls"), ("lora", "tiny_cls")}, {"tiny_cls"}),
    "few-shot": ({("base", "tiny_cls"), ("lora", "tiny_cls")}, {"tiny_cls"}),
    "decoding": ({("base", "tiny_gen"), ("lora", "tiny_gen")}, set()),
    "metric options": ({("base", "tiny_cls"), ("lora", "tiny_cls")}, set()),
    "evaluation examples": (ITEMS, set()),
    "seed": (ITEMS, {"tiny_cls", "tiny_gen"}),
    "lora settings": ({("lora", "tiny_cls"), ("lora", "tiny_gen")}, {"tiny_cls", "tiny_gen"}),
    "evaluation code": (ITEMS, set()),
    "training code": ({("lora", "tiny_cls"), ("lora", "tiny_gen")}, {"tiny_cls", "tiny_gen"}),
}


def _change(name: str, work: Path, causal_dir: Path, monkeypatch) -> None:
    exp, cls, gen = work / "experiment.yaml", work / "cls" / "tiny_cls.yaml", work / "gen" / "tiny_gen.yaml"
    if name == "model weights":
        _perturb_model(work, causal_dir)
    elif name == "test data":
        _edit(work / "gen" / "test.jsonl", '"german": "', '"german": "x')
    elif name == "training data":
        _edit(work / "gen" / "train.jsonl", '"german": "', '"german": "x')
    elif name == "template":
        _edit(cls, "Review:", "Text:")
    elif name == "few-shot":
        cls.write_text(cls.read_text() + "few_shot: {k: 1}\n")
    elif name == "decoding":
        _edit(gen, "max_new_tokens: 6", "max_new_tokens: 5")
    elif name == "metric options":
        _edit(cls, "average: macro", "average: micro")
    elif name == "evaluation examples":
        _edit(exp, "bootstrap_resamples: 50", "bootstrap_resamples: 50, max_examples: 3")
    elif name == "seed":
        _edit(exp, "seed: 1", "seed: 2")
    elif name == "lora settings":
        _edit(exp, "rank: 4", "rank: 2")
    elif name == "evaluation code":
        monkeypatch.setitem(fingerprints.CODE_PATHS, "evaluate", fingerprints.CODE_PATHS["evaluate"] + 1)
    elif name == "training code":
        monkeypatch.setitem(fingerprints.CODE_PATHS, "train", fingerprints.CODE_PATHS["train"] + 1)


@pytest.mark.parametrize("change", list(CHANGES))
def test_each_input_changed_alone_recomputes_exactly_what_it_determines(change, first_run, tmp_path, causal_dir,
                                                                       trainings, monkeypatch):
    work, store = _copy(first_run, tmp_path)
    _change(change, work, causal_dir, monkeypatch)
    again = _rerun(work, store)
    recomputed, retrained = CHANGES[change]
    items = _items(store, again)
    assert {k for k, source in items.items() if source is None} == recomputed
    assert {k for k, source in items.items() if source is not None} == ITEMS - recomputed
    assert set(trainings) == retrained and len(trainings) == len(retrained)  # never trained twice
    adapters = store.table("adapters", [again]).set_index("suite")["reused_from"]
    assert {s for s, source in adapters.items() if source != source or source is None} == retrained
    assert {s for s, source in adapters.items() if isinstance(source, str)} == {"tiny_cls", "tiny_gen"} - retrained


def test_plan_shows_reused_and_computed_items_and_writes_nothing(first_run, tmp_path, monkeypatch, capsys):
    work, store = _copy(first_run, tmp_path)
    _edit(work / "experiment.yaml", "rank: 4", "rank: 2")  # a new config: base items reusable, LoRA ones not
    db = str(work / "first.duckdb")
    before = store.runs()
    code, out, _ = cli(capsys, monkeypatch, "run", str(work / "experiment.yaml"), "--db", db, "--plan")
    assert code == 0, out
    assert "plan: a new run" in out
    for suite in ("tiny_cls", "tiny_gen"):
        assert f"llama / base / {suite}: reuse from run {first_run.run_id}" in out
        assert f"llama / lora / {suite}: compute (train adapter)" in out
    assert "4 items: 2 reused, 2 to compute, 0 not applicable, 0 done in this run; 2 adapters to train" in out
    code, out, _ = cli(capsys, monkeypatch, "run", str(work / "experiment.yaml"), "--db", db, "--plan", "--no-reuse")
    assert code == 0 and "reuse from" not in out and "0 reused, 4 to compute" in out
    assert store.runs().equals(before)  # nothing written
    missing = tmp_path / "none.duckdb"
    code, out, _ = cli(capsys, monkeypatch, "run", str(work / "experiment.yaml"), "--db", str(missing), "--plan")
    assert code == 0 and "not created yet" in out and not missing.exists()


def test_plan_of_a_finished_experiment_says_so_and_plans_a_new_run(first_run, tmp_path, monkeypatch, capsys):
    work, _ = _copy(first_run, tmp_path)
    code, out, _ = cli(capsys, monkeypatch, "run", str(work / "experiment.yaml"), "--db",
                       str(work / "first.duckdb"), "--plan")
    assert code == 0 and f"already finished as run {first_run.run_id}" in out
    assert "4 items: 4 reused, 0 to compute" in out


def test_run_new_reuses_and_no_reuse_recomputes_from_the_command_line(first_run, tmp_path, monkeypatch, capsys,
                                                                     trainings):
    work, store = _copy(first_run, tmp_path)
    args = ["run", str(work / "experiment.yaml"), "--db", str(work / "first.duckdb"), "--new"]
    code, out, err = cli(capsys, monkeypatch, *args)
    assert code == 0, err
    newest = store.runs()["run_id"].iloc[0]
    assert set(_items(store, newest).values()) == {first_run.run_id} and trainings == []
    assert err.count("reused") >= 4
    assert f"reused: 4 of 4 items copied from run {first_run.run_id}" in out
    code, out, err = cli(capsys, monkeypatch, *args, "--no-reuse")
    assert code == 0, err
    newest = store.runs()["run_id"].iloc[0]
    assert set(_items(store, newest).values()) == {None} and sorted(trainings) == ["tiny_cls", "tiny_gen"]


def test_reuse_on_a_team_store_copies_whole_items(team_address, tmp_path, causal_dir, trainings):
    """The copies are SQL inside the store: on DuckLake too, every reused item arrives whole."""
    path = write_experiment(tmp_path, {"llama": causal_dir}, ["cls", "gen"])
    store = Store(team_address)
    first, status = run_experiment(path, store, artifacts=tmp_path / "artifacts")
    assert status == "finished" and sorted(trainings) == ["tiny_cls", "tiny_gen"]
    again, status = run_experiment(path, store, fresh=True, artifacts=tmp_path / "artifacts")
    assert status == "finished" and len(trainings) == 2  # nothing trained the second time
    assert _items(store, again) == {key: first for key in ITEMS}
    for name in ("predictions", "example_stats", "scores", "adapters", "training_log", "candidates"):
        assert len(store.table(name, [again])) == len(store.table(name, [first])) > 0, name
    assert _table(store, again) == _table(store, first)


def test_plan_counts_no_training_for_an_adapter_it_reuses(first_run, tmp_path, monkeypatch, capsys):
    work, _ = _copy(first_run, tmp_path)
    _edit(work / "experiment.yaml", "bootstrap_resamples: 50", "bootstrap_resamples: 50, max_examples: 3")
    code, out, _ = cli(capsys, monkeypatch, "run", str(work / "experiment.yaml"), "--db",
                       str(work / "first.duckdb"), "--plan")
    assert code == 0, out
    line = next(x for x in out.splitlines() if "llama / lora / tiny_cls:" in x)
    assert f"compute with the adapter of run {first_run.run_id}: 3 examples" in line and "training" not in line
    line = next(x for x in out.splitlines() if "llama / base / tiny_cls:" in x)
    assert line.endswith(": compute: 3 examples" + line.split("3 examples", 1)[1])
    assert "0 adapters to train, 2 reused" in out
