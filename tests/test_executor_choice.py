"""Choosing the executor (no Ray needed): the experiment field, `--executor/--address`, the one-line error
when Ray is not installed, and the store left alone on a bad choice."""

from __future__ import annotations

import sys

import pytest
from cli_helper import cli, error_line
from test_runner import write_experiment

from harness.config import ExecutorConfig, load_experiment
from harness.errors import HarnessError
from harness.executors import AdapterFiles, require_ray
from harness.runner import run_experiment
from harness.store import Store


@pytest.fixture
def no_ray(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError


def test_executor_defaults_to_local_and_is_not_part_of_the_config_hash(tmp_path, causal_dir):
    path = write_experiment(tmp_path, {"llama": causal_dir}, ["cls"])
    plain = load_experiment(path)
    assert plain.executor == ExecutorConfig(kind="local", address=None, gpus_per_item="auto", cpus_per_item=1,
                                            max_retries=2)
    path.write_text(path.read_text() + "executor: {kind: ray, address: 'auto', gpus_per_item: 1, max_retries: 0}\n")
    on_ray = load_experiment(path)
    assert on_ray.executor.kind == "ray" and on_ray.executor.max_retries == 0
    assert on_ray.config_hash() == plain.config_hash()  # a run started locally resumes on ray and back


@pytest.mark.parametrize("field", ["kind: slurm", "max_retries: -1", "cpus_per_item: 0", "nodes: 3"])
def test_a_bad_executor_field_is_refused(tmp_path, causal_dir, field):
    path = write_experiment(tmp_path, {"llama": causal_dir}, ["cls"])
    path.write_text(path.read_text() + f"executor: {{{field}}}\n")
    with pytest.raises(HarnessError, match="executor"):
        load_experiment(path)


def test_ray_missing_is_one_line_naming_the_install_command(no_ray, tmp_path, causal_dir, capsys, monkeypatch):
    with pytest.raises(HarnessError, match=r'pip install "harness\[ray\]"'):
        require_ray()
    path = write_experiment(tmp_path, {"llama": causal_dir}, ["cls"])
    db = tmp_path / "never.duckdb"
    code, _, err = cli(capsys, monkeypatch, "run", str(path), "--db", str(db), "--executor", "ray")
    line = error_line(code, '', err)
    assert 'pip install "harness[ray]"' in line
    assert not db.exists(), "a refused run must not create the store"
    with pytest.raises(HarnessError, match="harness\\[ray\\]"):
        run_experiment(path, Store(tmp_path / "lib.duckdb"), executor=ExecutorConfig(kind="ray"))


def test_address_needs_the_ray_executor(tmp_path, causal_dir, capsys, monkeypatch):
    path = write_experiment(tmp_path, {"llama": causal_dir}, ["cls"])
    code, _, err = cli(capsys, monkeypatch, "run", str(path), "--address", "auto")
    assert "--address" in error_line(code, '', err) and "--executor ray" in err
    code, _, err = cli(capsys, monkeypatch, "run", str(path), "--executor", "slurm")
    assert "choose local or ray" in error_line(code, '', err)


def test_adapter_files_round_trip_and_refuse_a_changed_byte(tmp_path):
    source = tmp_path / "adapter"
    (source / "sub").mkdir(parents=True)
    (source / "adapter_model.safetensors").write_bytes(b"\x00weights" * 10)
    (source / "sub" / "adapter_config.json").write_text('{"r": 4}')
    files = AdapterFiles.read(source)
    landed = files.write(tmp_path / "landed" / "adapter")
    assert AdapterFiles.read(landed) == files
    broken = AdapterFiles({**files.files, "adapter_model.safetensors": b"changed"}, files.hash)
    with pytest.raises(RuntimeError, match="expected"):
        broken.write(tmp_path / "other")
