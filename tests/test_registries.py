"""Plug-in suite sources and model loaders (in-process and through entry points) are used exactly like the
built-ins; unknown schemes are one-line errors naming the known ones; statuses and kinds are spelt once."""

from __future__ import annotations

import importlib.metadata
import shutil
import sys
import textwrap
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import get_args

import pytest
from tiny_models import write_suite

import harness.suites.sources as sources
from harness import models
from harness.config import CandidateConfig, ExperimentConfig, SuiteConfig
from harness.errors import HarnessError
from harness.kinds import ITEM_STATUSES, MODEL_KINDS, RUN_STATUSES, SUITE_KINDS, VARIANTS
from harness.models import LoadedModel, ModelLoader, ResolvedRef, model_schemes, register_model_loader
from harness.suites import load_suite, register_suite_source, suite_sources


@pytest.fixture(autouse=True)
def clean_registries(monkeypatch):
    """What a test registers vanishes after it; no installed package's entry points leak in."""
    for registry in (sources._SOURCES, models._LOADERS):
        monkeypatch.setattr(registry, "registered", dict(registry.registered))
        monkeypatch.setattr(registry, "origins", dict(registry.origins))
    fake_entry_points(monkeypatch, [])


def fake_entry_points(monkeypatch, eps: list[EntryPoint]) -> None:
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group=None: [ep for ep in eps if ep.group == group])


@pytest.fixture
def shelf(tmp_path) -> Path:
    """A folder of suites a plug-in serves as `shelf:NAME`."""
    for kind, name in (("classification", "tiny_cls"), ("multiple_choice", "tiny_mc")):
        write_suite(tmp_path / "shelf" / name, kind)
    return tmp_path / "shelf"


def on_shelf(shelf: Path, name: str) -> Path:
    """The file of the suite NAME (or `shelf:NAME`) on the shelf."""
    name = name.removeprefix("shelf:")
    return shelf / name / f"{name}.yaml"


def one_line_error(call, *args, **kwargs) -> str:
    with pytest.raises(HarnessError) as info:
        call(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


# ---- suite sources


def test_plugin_suite_source_in_process_is_loaded_like_a_file(shelf, tmp_path):
    seen = []

    def shelf_source(ref: str, base: Path | None) -> Path:
        seen.append((ref, base))
        return on_shelf(shelf, ref)

    register_suite_source("shelf", shelf_source)
    assert "shelf" in suite_sources() and {"builtin", "file"} <= set(suite_sources())
    for name in ("tiny_cls", "tiny_mc"):
        plugged, direct = load_suite(f"shelf:{name}", base=tmp_path), load_suite(str(on_shelf(shelf, name)))
        assert plugged.path == direct.path and plugged.fingerprint == direct.fingerprint
        assert [e.prompt for e in plugged.examples()] == [e.prompt for e in direct.examples()]
    assert seen == [("shelf:tiny_cls", tmp_path), ("shelf:tiny_mc", tmp_path)]


def test_a_plugin_suite_is_validated_like_any_suite(shelf):
    broken = on_shelf(shelf, "broken")
    broken.parent.mkdir()
    broken.write_text(on_shelf(shelf, "tiny_cls").read_text().replace("accuracy", "acuracy"))
    shutil.copytree(shelf / "tiny_cls", broken.parent, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.yaml"))
    register_suite_source("shelf", lambda ref, base: on_shelf(shelf, ref))
    assert "metrics[0]: unknown metric 'acuracy'" in one_line_error(load_suite, "shelf:broken")


@pytest.mark.parametrize(("source", "message"), [
    (lambda ref, base: Path("/nowhere/x.yaml"), "suite source 'bad' returned PosixPath('/nowhere/x.yaml'), not a "
                                                "suite file"),
    (lambda ref, base: None, "suite source 'bad' returned None, not a suite file"),
    (lambda ref, base: {}["x"], "suite source 'bad' failed: KeyError: 'x'"),
    (lambda ref, base: (_ for _ in ()).throw(HarnessError("bad: the shelf is closed")), "bad: the shelf is closed"),
])
def test_a_failing_suite_source_is_one_line(source, message):
    register_suite_source("bad", source)
    assert message in one_line_error(load_suite, "bad:thing")


def test_suite_source_from_an_entry_point_is_loaded_on_first_use(monkeypatch, tmp_path, shelf):
    (tmp_path / "shelf_plugin.py").write_text(textwrap.dedent(f"""
        from pathlib import Path

        def source(ref, base):
            name = ref.split(":", 1)[1]
            return Path({str(shelf)!r}) / name / (name + ".yaml")
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    fake_entry_points(monkeypatch, [
        EntryPoint(name="shelf", value="shelf_plugin:source", group="harness.suite_sources"),
        EntryPoint(name="broken", value="no_such_module_xyz:source", group="harness.suite_sources"),
        EntryPoint(name="other", value="shelf_plugin:source", group="harness.model_loaders"),
    ])
    monkeypatch.delitem(sys.modules, "shelf_plugin", raising=False)
    assert {"shelf", "broken"} <= set(suite_sources()) and "other" not in suite_sources()
    assert "shelf_plugin" not in sys.modules  # listed, not imported
    assert load_suite("shelf:tiny_mc").fingerprint == load_suite(str(on_shelf(shelf, "tiny_mc"))).fingerprint
    assert "suite source 'broken': entry point 'no_such_module_xyz:source' failed to load" in one_line_error(
        load_suite, "broken:x")


def test_builtin_schemes_name_what_bare_references_name(shelf, tmp_path):
    assert load_suite("builtin:sentiment").fingerprint == load_suite("sentiment").fingerprint
    rel = str(on_shelf(shelf, "tiny_cls").relative_to(tmp_path))
    assert load_suite(f"file:{rel}", base=tmp_path).path == load_suite(rel, base=tmp_path).path
    assert "not a built-in suite; built-in suites: mcqa, sentiment" in one_line_error(load_suite, "builtin:nope")
    assert "no such file" in one_line_error(load_suite, "file:nope.yaml", base=tmp_path)
    assert "is a directory" in one_line_error(load_suite, f"file:{shelf}")


def test_unknown_suite_scheme_lists_the_known_ones():
    register_suite_source("shelf", lambda ref, base: Path(ref))
    message = one_line_error(load_suite, "nope:thing")
    assert "suite 'nope:thing': unknown suite source 'nope:'; known sources: builtin:, file:, shelf:" in message


def test_an_existing_file_that_looks_like_a_scheme_is_a_file(shelf, tmp_path):
    shutil.copy(on_shelf(shelf, "tiny_cls"), shelf / "tiny_cls" / "ab:cls.yaml")
    assert load_suite("shelf/tiny_cls/ab:cls.yaml", base=tmp_path).name == "tiny_cls"  # '/' before ':': no scheme
    assert load_suite("ab:cls.yaml", base=shelf / "tiny_cls").name == "tiny_cls"  # looks like one; the file exists


@pytest.mark.parametrize("register", [register_suite_source, register_model_loader])
def test_registering_a_taken_or_malformed_scheme_is_refused(register):
    taken = "file" if register is register_suite_source else "pack"
    assert "already registered" in one_line_error(register, taken, lambda *a: None)
    register(taken, lambda *a: None, replace=True)
    for bad in ("x", "a:b", "1up", ""):
        assert "a scheme is two or more" in one_line_error(register, bad, lambda *a: None)
    decorated = register("deco")(lambda *a: None)
    assert callable(decorated) and "deco" in (suite_sources() if register is register_suite_source else model_schemes())


def test_a_suite_source_must_be_callable():
    assert "suite source 'notfn': a source must be callable" in one_line_error(register_suite_source, "notfn", 3)


# ---- model loaders


def test_plugin_resolver_loads_like_a_local_folder(causal_dir):
    register_model_loader("tiny", lambda ref: ResolvedRef(ref, str(causal_dir.resolve())))
    assert "tiny" in model_schemes() and {"hf", "pack"} <= set(model_schemes())
    assert models.check("tiny:llama", device="cpu").location == str(causal_dir.resolve())
    loaded = models.load("tiny:llama", device="cpu")
    assert loaded.ref.ref == "tiny:llama" and loaded.kind == "causal" and not loaded.model.training
    assert loaded.fingerprint == models.fingerprint(models.resolve(str(causal_dir)))
    assert loaded.tokenizer.pad_token == "<pad>"


def test_plugin_loader_with_its_own_load_and_check(causal):
    calls = []

    def load(ref: ResolvedRef, options: models.LoadOptions) -> LoadedModel:
        calls.append(("load", options))
        return LoadedModel(ref, "causal", causal.model, causal.tokenizer, "cpu", causal.dtype, "mem-fp")

    loader = ModelLoader(resolve=lambda ref: ResolvedRef(ref, ref, is_local=False), load=load,
                         check=lambda ref, options: calls.append(("check", options)))
    register_model_loader("mem", loader)
    models.check("mem:x", kind="causal", device="cpu")
    assert models.load("mem:x", device="cpu", dtype="float32").fingerprint == "mem-fp"
    assert calls == [("check", models.LoadOptions("causal", "cpu", "auto", False)),
                     ("load", models.LoadOptions("auto", "cpu", "float32", False))]


@pytest.mark.parametrize(("loader", "call", "message"), [
    (lambda ref: {}["k"], models.resolve, "model loader 'bad' failed to resolve: KeyError: 'k'"),
    (lambda ref: "somewhere", models.resolve, "model loader 'bad' returned str, not a ResolvedRef"),
    (ModelLoader(lambda ref: ResolvedRef(ref, "x"), load=lambda ref, o: 3), models.load,
     "model loader 'bad' returned int, not a LoadedModel"),
    (ModelLoader(lambda ref: ResolvedRef(ref, "x"), load=lambda ref, o: 1 / 0), models.load,
     "model loader 'bad' failed to load: ZeroDivisionError"),
    (3, None, "model loader 'bad': give a ModelLoader or a function"),
])
def test_a_failing_model_loader_is_one_line(loader, call, message):
    if call is None:
        assert message in one_line_error(register_model_loader, "bad", loader)
        return
    register_model_loader("bad", loader)
    assert message in one_line_error(call, "bad:thing")


def test_model_loader_from_an_entry_point(monkeypatch, tmp_path, causal_dir):
    (tmp_path / "loader_plugin.py").write_text(textwrap.dedent(f"""
        from harness.models import ModelLoader, ResolvedRef

        LOADER = ModelLoader(resolve=lambda ref: ResolvedRef(ref, {str(causal_dir.resolve())!r}))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "loader_plugin", raising=False)
    fake_entry_points(monkeypatch, [
        EntryPoint(name="shelf", value="loader_plugin:LOADER", group="harness.model_loaders"),
        EntryPoint(name="broken", value="no_such_module_xyz:LOADER", group="harness.model_loaders"),
    ])
    assert {"shelf", "broken"} <= set(model_schemes()) and "loader_plugin" not in sys.modules
    ref = models.resolve("shelf:llama")
    assert ref.location == str(causal_dir.resolve()) and ref.is_local
    assert models.fingerprint(ref) == models.fingerprint(models.resolve(str(causal_dir)))
    assert "model loader 'broken': entry point 'no_such_module_xyz:LOADER' failed to load" in one_line_error(
        models.resolve, "broken:x")


@pytest.mark.parametrize("call", [models.resolve, models.check, models.load])
def test_unknown_model_scheme_lists_the_known_ones(call):
    register_model_loader("tiny", lambda ref: ResolvedRef(ref, ref))
    message = one_line_error(call, "nope:thing")
    assert "model 'nope:thing': unknown reference scheme 'nope:'; known schemes: hf:, pack:, tiny:" in message


def test_builtin_schemes_and_bare_references_still_resolve(causal_dir, tmp_path, monkeypatch):
    assert models.resolve("hf:org/model") == ResolvedRef("hf:org/model", "org/model", is_local=False)
    assert "not a hub id" in one_line_error(models.resolve, "hf:a/b/c")
    colon = shutil.copytree(causal_dir, tmp_path / "ab:model")
    assert models.resolve(str(colon)).location == str(colon.resolve())  # an absolute path has no scheme
    monkeypatch.chdir(tmp_path)
    assert models.resolve("ab:model").location == str(colon.resolve())  # looks like one, but the folder exists


# ---- end to end, and the kinds


def test_a_run_uses_a_plugin_suite_and_a_plugin_model(tmp_path, shelf, causal_dir):
    from harness.runner import run_experiment
    from harness.store import Store

    register_suite_source("shelf", lambda ref, base: on_shelf(shelf, ref))
    register_model_loader("tiny", lambda ref: ResolvedRef(ref, str(causal_dir.resolve())))
    path = tmp_path / "experiment.yaml"
    path.write_text("name: plug\ndevice: cpu\ncandidates:\n  - {name: llama, model: 'tiny:llama'}\n"
                    "variants: [base]\nsuites: ['shelf:tiny_cls']\nevaluation: {bootstrap_resamples: 20}\n")
    store = Store(tmp_path / "run.duckdb")
    run_id, status = run_experiment(path, store)
    assert status == "finished" and status in RUN_STATUSES
    items = store.table("items", [run_id])
    assert list(zip(items.candidate, items.variant, items.suite, items.status, strict=True)) == [
        ("llama", "base", "tiny_cls", "done")]
    assert set(items.status) <= set(ITEM_STATUSES)
    candidate = store.table("candidates", [run_id]).iloc[0]
    assert candidate.model_ref == "tiny:llama" and candidate.kind in MODEL_KINDS
    assert candidate.fingerprint == models.fingerprint(models.resolve(str(causal_dir)))


def test_the_schemas_use_the_kinds_defined_once():
    assert get_args(SuiteConfig.model_fields["kind"].annotation) == SUITE_KINDS
    assert get_args(CandidateConfig.model_fields["kind"].annotation) == ("auto", *MODEL_KINDS)
    assert get_args(get_args(ExperimentConfig.model_fields["variants"].annotation)[0]) == VARIANTS
    assert RUN_STATUSES == ("running", "finished", "failed")
    assert ITEM_STATUSES == ("done", "not_applicable", "failed")
