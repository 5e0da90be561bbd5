"""User metrics from a file or an entry point, the registry's errors, and the `evaluate` bridge."""

from __future__ import annotations

import textwrap
from importlib.metadata import EntryPoint

import pytest

import harness.metrics.registry as registry
from harness.errors import HarnessError
from harness.metrics import (
    Metric,
    evaluate_path,
    get_metric,
    list_metrics,
    load_metric_plugin,
    register_metric,
)


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch):
    """Plugins registered by a test vanish after it."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_PLUGINS", {})


PLUGIN = textwrap.dedent(
    """
    from dataclasses import dataclass

    from harness.metrics import MeanMetric, register_metric


    @dataclass(frozen=True)
    class LengthOptions:
        unit: str = "words"


    class LengthRatio(MeanMetric):
        name = "length_ratio"
        Options = LengthOptions
        score_names = ["length_ratio"]

        def example_scores(self, predictions, references, labels):
            size = (lambda s: len(s.split())) if self.options.unit == "words" else len
            return {"length_ratio": [size(p) / max(size(r[0]), 1) for p, r in zip(predictions, references)]}


    def shouting(ignore_case=True):
        from harness.metrics import get_metric
        return get_metric("exact_match", ignore_case=ignore_case)


    register_metric("shouting_match", shouting)
    """
)


def test_plugin_file_registers_classes_and_factories(tmp_path):
    path = tmp_path / "my_metrics.py"
    path.write_text(PLUGIN)
    assert load_metric_plugin(path) == ["length_ratio", "shouting_match"]
    assert load_metric_plugin(str(path)) == ["length_ratio", "shouting_match"]  # a second load is harmless
    assert {"length_ratio", "shouting_match"} <= set(list_metrics())
    m = get_metric("length_ratio", unit="chars")
    stats = m.example_stats(["abcd", "ab"], ["ab", "ab"])
    assert m.corpus(stats) == {"length_ratio": 1.5}
    assert get_metric("shouting_match", ignore_case=True).name == "exact_match"
    with pytest.raises(HarnessError, match="unknown option 'units'"):
        get_metric("length_ratio", units="chars")
    with pytest.raises(HarnessError, match="shouting_match.*unexpected keyword"):
        get_metric("shouting_match", nope=1)


def test_plugin_file_errors(tmp_path):
    with pytest.raises(HarnessError, match="no such file"):
        load_metric_plugin(tmp_path / "missing.py")
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(HarnessError, match="registered no metric"):
        load_metric_plugin(empty)
    broken = tmp_path / "broken.py"
    broken.write_text("import not_a_real_module_xyz\n")
    with pytest.raises(HarnessError, match="broken.py: failed to import: ModuleNotFoundError"):
        load_metric_plugin(broken)
    clash = tmp_path / "clash.py"
    clash.write_text("from harness.metrics import register_metric\nregister_metric('bleu', lambda: None)\n")
    with pytest.raises(HarnessError, match="'bleu' is already registered"):
        load_metric_plugin(clash)


def test_register_metric_forms():
    class Upper(Metric):
        name = "upper_share"
        stat_names = ["upper", "count"]
        score_names = ["upper_share"]

        def example_stats(self, predictions, references, labels=None):
            import numpy as np

            return np.array([[float(p.isupper()), 1.0] for p in predictions])

        def scores_from_sums(self, sums):
            return {"upper_share": sums[..., 0] / sums[..., 1]}

    assert register_metric(Upper) is Upper
    assert register_metric(Upper) is Upper  # the same class again is not a clash
    register_metric("upper_alias")(Upper)
    m = get_metric("upper_alias")
    assert m.corpus(m.example_stats(["AB", "cd"], ["", ""])) == {"upper_share": 0.5}
    with pytest.raises(HarnessError, match="already registered"):
        register_metric("upper_alias", lambda: Upper())
    with pytest.raises(HarnessError, match="returned int"):
        register_metric("not_a_metric", lambda: 3)
        get_metric("not_a_metric")


def test_entry_points_are_loaded_lazily(monkeypatch):
    ep = EntryPoint(name="ep_accuracy", value="harness.metrics.labels:Accuracy", group="harness.metrics")
    bad = EntryPoint(name="ep_broken", value="not_a_module_xyz:Thing", group="harness.metrics")
    monkeypatch.setattr(registry, "entry_points", lambda group: [ep, bad] if group == "harness.metrics" else [])
    assert {"ep_accuracy", "ep_broken"} <= set(list_metrics())
    assert get_metric("ep_accuracy").name == "accuracy"
    with pytest.raises(HarnessError, match="entry point 'not_a_module_xyz:Thing' failed to load"):
        get_metric("ep_broken")


def test_evaluate_bridge_loads_offline(monkeypatch, tmp_path):
    evaluate = pytest.importorskip("evaluate")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    bleu = evaluate.load(evaluate_path("bleu"), cache_dir=str(tmp_path))
    preds, refs = ["the cat sat on the mat", "a b c d"], [["the cat sat on the mat"], ["a b c d e"]]
    m = get_metric("bleu", tokenize="intl")
    expected = m.corpus(m.example_stats(preds, refs))
    assert bleu.compute(predictions=preds, references=refs, tokenize="intl") == expected
    f1 = evaluate.load(evaluate_path("f1"), cache_dir=str(tmp_path))
    assert f1.compute(predictions=["a", "b", "a"], references=["a", "b", "b"], labels=["a", "b"], average="micro") == {
        "f1_micro": pytest.approx(2 / 3)
    }
    with pytest.raises(HarnessError, match="no evaluate module for metric 'nope'"):
        evaluate_path("nope")


def test_every_builtin_has_an_evaluate_module():
    for name in registry.builtin_metrics():
        assert evaluate_path(name).endswith(name)
