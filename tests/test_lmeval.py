"""The lm-eval bridge: a tiny local multiple-choice task on a tiny in-process Llama, base and LoRA."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from harness.errors import HarnessError
from harness.store import Store

TASKS = Path(__file__).resolve().parent / "lmeval_tasks"
N_DOCS = sum(1 for line in (TASKS / "tiny_mc.jsonl").read_text().splitlines() if line.strip())


def write_experiment(folder: Path, model: str, lmeval: str, variants: str = "[base, lora]") -> Path:
    """An experiment with the built-in mcqa suite (for the adapter) and the lm-eval section given."""
    path = folder / "exp.yaml"
    path.write_text(f"""\
name: lmeval-bridge
candidates:
  - name: tiny
    model: {model}
variants: {variants}
device: cpu
lora:
  steps: 3
  batch_size: 4
  learning_rate: 0.01
  max_eval_examples: 4
suites: [mcqa]
evaluation:
  max_examples: 6
  bootstrap_resamples: 200
lmeval:
{lmeval}""", encoding="utf-8")
    return path


def counting_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the reference of every model `harness.models.load` loads."""
    from harness import models

    loads: list[str] = []
    original = models.load

    def load(ref, *args, **kwargs):
        loads.append(ref)
        return original(ref, *args, **kwargs)

    monkeypatch.setattr(models, "load", load)
    return loads


@pytest.fixture(scope="module")
def bridged_run(tmp_path_factory, causal_dir):
    """One run: mcqa (native, base + LoRA) and tiny_mc through lm-eval with mcqa's adapter."""
    from harness.runner import run_experiment

    folder = tmp_path_factory.mktemp("lmeval_run")
    lmeval = f"  tasks: [tiny_mc]\n  include_path: {TASKS}\n  adapter_from: mcqa\n  limit: {N_DOCS}\n"
    store = Store(folder / "h.duckdb")
    with pytest.MonkeyPatch.context() as monkeypatch:
        loads = counting_loads(monkeypatch)
        run_id, status = run_experiment(write_experiment(folder, str(causal_dir), lmeval), store,
                                        artifacts=folder / "artifacts")
    return SimpleNamespace(store=store, run_id=run_id, status=status, artifacts=folder / "artifacts", loads=loads)


def rows(store: Store, table: str, run_id: str, suite: str = "lmeval:tiny_mc"):
    df = store.table(table, [run_id])
    return df[df.suite == suite]


def test_items_land_in_the_native_tables(bridged_run):
    store, run_id, status = bridged_run.store, bridged_run.run_id, bridged_run.status
    assert status == "finished"
    items = rows(store, "items", run_id).set_index("variant")
    assert set(items.index) == {"base", "lora"}
    assert (items.status == "done").all()
    assert (items.n_examples == N_DOCS).all()
    preds = rows(store, "predictions", run_id)
    base = preds[preds.variant == "base"].sort_values("example_id", key=lambda s: s.astype(int))
    assert len(base) == N_DOCS
    first = base.iloc[0]
    assert first.input == "Question: What is 2 plus 2?\nAnswer:"
    assert first.reference == "4"
    assert len(first.choice_scores) == 3
    assert first.output == ["3", "4", "5"][int(np.argmax(first.choice_scores))]


def test_accuracy_stats_and_scores_match_lm_eval(bridged_run):
    store, run_id, artifacts = bridged_run.store, bridged_run.run_id, bridged_run.artifacts
    stats = rows(store, "example_stats", run_id)
    scores = rows(store, "scores", run_id)
    for variant in ("base", "lora"):
        ours = stats[(stats.variant == variant) & (stats.metric == "accuracy")]
        assert len(ours) == N_DOCS
        assert list(ours.iloc[0].stat_names) == ["accuracy", "count"]
        matrix = np.vstack(ours.stats.to_list())
        record = json.loads((artifacts / run_id / "tiny" / "lmeval" / f"{variant}.json").read_text())
        lm_acc = record["tasks"]["tiny_mc"]["results"]["acc,none"]
        assert matrix[:, 0].sum() / matrix[:, 1].sum() == pytest.approx(lm_acc)
        score = scores[(scores.variant == variant) & (scores.score == "accuracy")].iloc[0]
        assert score.value == pytest.approx(lm_acc)
        assert score.low <= score.value <= score.high
        assert score.n == N_DOCS
        # per-example correctness is the argmax of the stored log-likelihoods against the reference
        preds = rows(store, "predictions", run_id)
        preds = preds[preds.variant == variant].set_index("example_id")
        for example_id, correct in zip(ours.example_id, matrix[:, 0], strict=True):
            assert (preds.loc[example_id, "output"] == preds.loc[example_id, "reference"]) == bool(correct)


def test_lora_variant_really_uses_the_adapter(bridged_run):
    store, run_id, artifacts = bridged_run.store, bridged_run.run_id, bridged_run.artifacts
    item = rows(store, "items", run_id).set_index("variant").loc["lora"]
    assert "adapter from suite 'mcqa'" in item.reason and "active" in item.reason
    adapter = store.adapter(run_id, "tiny", "mcqa")
    assert adapter["adapter_hash"][:12] in item.reason
    preds = rows(store, "predictions", run_id)
    base = preds[preds.variant == "base"].set_index("example_id").choice_scores
    lora = preds[preds.variant == "lora"].set_index("example_id").choice_scores
    diffs = [np.abs(np.array(base[i]) - np.array(lora[i])).max() for i in base.index]
    assert max(diffs) > 1e-4
    check = json.loads((artifacts / run_id / "tiny" / "lmeval" / "lora.json").read_text())["adapter_check"]
    assert check["suite"] == "mcqa" and check["probe_max_logit_diff"] > 0
    assert check["loglik_changed"] > 0 and check["loglik_total"] == 3 * N_DOCS


def test_dataset_row_and_fingerprint(bridged_run):
    store, run_id = bridged_run.store, bridged_run.run_id
    items = rows(store, "items", run_id)
    assert items.dataset_fingerprint.nunique() == 1
    datasets = store.table("datasets")
    row = datasets[datasets.suite == "lmeval:tiny_mc"].iloc[0]
    assert row.fingerprint == items.dataset_fingerprint.iloc[0]
    assert row.path.endswith("tiny_mc.yaml") and row.n_test == N_DOCS


def test_lm_eval_loglikelihoods_equal_native_choice_scoring(causal):
    """At tiny scale: lm-eval's per-choice log-likelihoods are the harness's own choice scores."""
    from harness import lmeval
    from harness.predict import choice_logprobs, encode_pair
    from harness.predict.choices import score_naive

    manager = lmeval.task_manager(TASKS, ["tiny_mc"])
    runs = lmeval.evaluate_tasks(causal.model, causal.tokenizer, lmeval.load_tasks(manager, "tiny_mc", TASKS),
                                 manager, None, 4)
    samples = runs["tiny_mc"].samples
    assert len(samples) == N_DOCS
    pairs = [[encode_pair(causal.tokenizer, ctx, cont) for ctx, cont in s["arguments"]] for s in samples]
    native = choice_logprobs(causal.model, pairs, causal.tokenizer.pad_token_id, "cpu")
    naive = score_naive(causal.model, pairs, "cpu")
    theirs = [[r[0] for r in s["filtered_resps"]] for s in samples]
    np.testing.assert_allclose(np.array(native), np.array(theirs), atol=1e-4)
    np.testing.assert_allclose(np.array(naive), np.array(theirs), atol=1e-4)


def test_lora_without_adapter_from_is_not_applicable(tmp_path, causal_dir):
    from harness.runner import run_experiment

    lmeval = f"  tasks: [tiny_mc]\n  include_path: {TASKS}\n  limit: 2\n"
    path = write_experiment(tmp_path, str(causal_dir), lmeval, variants="[base]")
    path.write_text(path.read_text().replace("variants: [base]", "variants: [base, lora]").replace(
        "suites: [mcqa]", "suites: []"))
    store = Store(tmp_path / "h.duckdb")
    run_id, status = run_experiment(path, store)
    items = store.table("items", [run_id]).set_index("variant")
    assert status == "finished"
    assert items.loc["base", "status"] == "done" and items.loc["base", "n_examples"] == 2
    assert items.loc["lora", "status"] == "not_applicable"
    assert "lmeval.adapter_from" in items.loc["lora", "reason"]


def test_include_path_is_relative_to_the_experiment(tmp_path):
    from harness import lmeval
    from harness.config import ExperimentConfig

    (tmp_path / "tasks").mkdir()
    cfg = ExperimentConfig.model_validate({"name": "x", "candidates": [{"name": "a", "model": "m"}],
                                           "lmeval": {"tasks": ["t"], "include_path": "tasks"}})
    assert lmeval.include_dir(cfg, tmp_path / "exp.yaml") == (tmp_path / "tasks").resolve()
    with pytest.raises(HarnessError, match="lmeval.include_path: folder .*nowhere not found"):
        cfg.lmeval.include_path = "nowhere"
        lmeval.include_dir(cfg, tmp_path / "exp.yaml")


def test_unknown_task_is_named(tmp_path):
    from harness import lmeval

    manager = lmeval.task_manager(TASKS, ["tiny_mcq"])
    with pytest.raises(HarnessError, match=r"unknown task 'tiny_mcq'.*did you mean tiny_mc"):
        lmeval.load_tasks(manager, "tiny_mcq", TASKS)


def test_unreachable_data_is_named():
    from harness import lmeval

    manager = lmeval.task_manager(TASKS, ["missing_data"])
    with pytest.raises(HarnessError, match=r"task 'missing_data': cannot load its data"):
        lmeval.load_tasks(manager, "missing_data", TASKS)


def test_adapter_from_must_name_a_suite(tmp_path):
    from harness import lmeval
    from harness.config import ExperimentConfig

    cfg = ExperimentConfig.model_validate({"name": "x", "candidates": [{"name": "a", "model": "m"}],
                                           "suites": ["mcqa"],
                                           "lmeval": {"tasks": ["tiny_mc"], "include_path": str(TASKS),
                                                      "adapter_from": "sentiment"}})
    with pytest.raises(HarnessError, match=r"lmeval.adapter_from: 'sentiment' is not one of .*\(mcqa\)"):
        lmeval.check_lmeval(cfg, tmp_path / "exp.yaml", ["mcqa"])


def run_with_lmeval(tmp_path: Path, model: str, variants: str, monkeypatch: pytest.MonkeyPatch,
                    adapter_from: str | None = "mcqa"):
    """A whole run (native mcqa + tiny_mc through lm-eval); its status, lm-eval items by variant, and the loads."""
    from harness.runner import run_experiment

    lmeval = f"  tasks: [tiny_mc]\n  include_path: {TASKS}\n  limit: 2\n"
    if adapter_from:
        lmeval += f"  adapter_from: {adapter_from}\n"
    path = write_experiment(tmp_path, model, lmeval, variants=variants)
    store = Store(tmp_path / "h.duckdb")
    loads = counting_loads(monkeypatch)
    run_id, status = run_experiment(path, store, artifacts=tmp_path / "artifacts")
    return status, rows(store, "items", run_id).set_index("variant"), loads


def test_each_candidate_is_loaded_once_per_run(bridged_run, causal_dir):
    """Native suites and lm-eval tasks, base and LoRA, all ran on one load of the candidate."""
    assert bridged_run.loads == [str(causal_dir)]
    items = bridged_run.store.table("items", [bridged_run.run_id])
    assert sorted(zip(items.variant, items.suite, strict=True)) == [
        ("base", "lmeval:tiny_mc"), ("base", "mcqa"), ("lora", "lmeval:tiny_mc"), ("lora", "mcqa")]
    assert (items.status == "done").all()


def test_lm_eval_on_the_shared_model_equals_lm_eval_on_a_fresh_one(bridged_run, causal):
    """The native suites that ran first on the loaded model did not change what lm-eval sees."""
    from harness import lmeval

    manager = lmeval.task_manager(TASKS, ["tiny_mc"])
    fresh = lmeval.evaluate_tasks(causal.model, causal.tokenizer, lmeval.load_tasks(manager, "tiny_mc", TASKS),
                                  manager, N_DOCS, 4)["tiny_mc"].samples
    preds = rows(bridged_run.store, "predictions", bridged_run.run_id)
    stored = preds[preds.variant == "base"].set_index("example_id").choice_scores
    assert len(stored) == len(fresh) == N_DOCS
    for sample in fresh:
        np.testing.assert_allclose(stored[str(sample["doc_id"])], [r[0] for r in sample["filtered_resps"]],
                                   atol=1e-6)


def test_a_resumed_run_loads_only_candidates_with_pending_items(bridged_run, monkeypatch):
    from harness.runner import run_experiment

    loads = counting_loads(monkeypatch)
    before = bridged_run.store.table("items", [bridged_run.run_id]).finished_at.sort_values().tolist()
    path = Path(bridged_run.store.run(bridged_run.run_id)["experiment_path"])
    assert run_experiment(path, bridged_run.store, resume=bridged_run.run_id,
                          artifacts=bridged_run.artifacts) == (bridged_run.run_id, "finished")
    assert loads == []
    assert bridged_run.store.table("items", [bridged_run.run_id]).finished_at.sort_values().tolist() == before


def test_lora_with_a_changed_adapter_fails_with_the_reason(tmp_path, causal_dir, monkeypatch):
    """The adapter's files changed after training (its hash no longer matches): lm-eval's lora item fails."""
    import harness.runner as runner

    train = runner.train_lora

    def train_then_tamper(base, suite, lora, seed, out_dir, *args):
        result = train(base, suite, lora, seed, out_dir, *args)
        config = Path(result.adapter_path) / "adapter_config.json"
        config.write_text(config.read_text(encoding="utf-8") + "\n", encoding="utf-8")
        return result

    monkeypatch.setattr(runner, "train_lora", train_then_tamper)
    status, items, loads = run_with_lmeval(tmp_path, str(causal_dir), "[lora]", monkeypatch)
    assert status == "failed" and list(items.index) == ["lora"] and loads == [str(causal_dir)]
    assert items.loc["lora", "status"] == "failed"
    assert "no usable LoRA adapter for suite 'mcqa'" in items.loc["lora", "reason"]


def test_encoder_candidates_are_not_applicable(tmp_path, encoder_dir, monkeypatch):
    status, items, loads = run_with_lmeval(tmp_path, str(encoder_dir), "[base, lora]", monkeypatch)
    assert status == "finished" and loads == [str(encoder_dir)]
    assert (items.status == "not_applicable").all() and len(items) == 2
    assert items.reason.str.contains("causal LMs only").all()


def test_a_model_that_does_not_load_fails_its_lm_eval_items_too(tmp_path, causal_dir, monkeypatch):
    from harness import models

    def refuse(ref, *args):
        raise HarnessError(f"model '{ref}': cannot load (out of disk)")

    monkeypatch.setattr(models, "load", refuse)
    status, items, loads = run_with_lmeval(tmp_path, str(causal_dir), "[base, lora]", monkeypatch)
    assert status == "failed" and list(items.status) == ["failed", "failed"] and loads == [str(causal_dir)]
    assert items.reason.str.startswith("the model did not load: model").all()


def test_probe_tells_an_inactive_adapter_from_an_active_one(causal):
    import copy

    from peft import LoraConfig, get_peft_model

    from harness.lmeval import probe_adapter

    def wrapped(init: bool):
        config = LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=init)
        return get_peft_model(copy.deepcopy(causal.model), config).eval()

    assert probe_adapter(wrapped(True), causal.tokenizer, "cpu") == 0.0  # B = 0: the adapter changes nothing
    assert probe_adapter(wrapped(False), causal.tokenizer, "cpu") > 1e-4


def test_generation_and_loglikelihood_samples_become_predictions():
    from harness.lmeval.records import sample_prediction

    gen = {"doc_id": 3, "arguments": [("Q: 2+2?\nA:", {"until": ["\n"]})], "filtered_resps": [" 4"],
           "target": "4"}
    pred = sample_prediction(gen, "generate_until", 0.5)
    assert (pred.example_id, pred.input, pred.output, pred.reference, pred.latency_s) == ("3", "Q: 2+2?\nA:", " 4",
                                                                                          "4", 0.5)
    ll = {"doc_id": 0, "arguments": [("The cat sat on the", " mat")], "filtered_resps": [(-1.5, True)], "target": "mat"}
    pred = sample_prediction(ll, "loglikelihood", 0.0)
    assert pred.input == "The cat sat on the mat" and pred.choice_scores == [-1.5] and pred.output == "greedy=True"
    mc = {"doc_id": 1, "arguments": [("Q", " a"), ("Q", " b")], "filtered_resps": [(-2.0, False), (-1.0, False)],
          "target": "b"}
    pred = sample_prediction(mc, "multiple_choice", 0.0)
    assert (pred.output, pred.choice_index, pred.reference) == ("b", 1, "b")


def test_an_unchanged_rerun_reuses_lm_eval_items_and_a_changed_limit_recomputes_only_them(bridged_run, tmp_path,
                                                                                         monkeypatch):
    """lm-eval items are reused like native ones; with a changed lmeval.limit only they are computed, and the
    lora one uses the reused adapter of its `adapter_from` suite (nothing is trained)."""
    import shutil

    import harness.runner as runner
    from harness.runner import run_experiment

    shutil.copy(bridged_run.store.path, tmp_path / "h.duckdb")
    store = Store(tmp_path / "h.duckdb")
    path = Path(store.run(bridged_run.run_id)["experiment_path"])
    loads = counting_loads(monkeypatch)
    monkeypatch.setattr(runner, "train_lora", lambda *a, **k: pytest.fail("an adapter was trained"))
    again, status = run_experiment(path, store, fresh=True, artifacts=tmp_path / "artifacts")
    items = store.table("items", [again])
    assert status == "finished" and loads == [] and set(items["reused_from"]) == {bridged_run.run_id}
    assert {"lmeval:tiny_mc"} < set(items["suite"])
    changed = path.with_name("changed.yaml")
    changed.write_text(path.read_text().replace(f"limit: {N_DOCS}", f"limit: {N_DOCS - 1}"))
    third, status = run_experiment(changed, store, artifacts=tmp_path / "artifacts")
    items = store.table("items", [third]).set_index(["variant", "suite"])
    assert status == "finished", items[["status", "reason"]]
    computed = {key for key, source in items["reused_from"].items() if source is None or source != source}
    assert computed == {("base", "lmeval:tiny_mc"), ("lora", "lmeval:tiny_mc")}
    assert set(items.loc[("lora", "lmeval:tiny_mc"), ["status"]]) == {"done"}
    assert len(rows(store, "predictions", third)) == 2 * (N_DOCS - 1)
