"""Bad inputs through the `harness` command: each is one line `error: ...` naming the file (line, field),
exit code 2, no traceback, and every file byte for byte as it was (no store created, no run row written)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helper import cli, error_line
from tiny_models import suite_rows, write_jsonl, write_suite

PAYLOADS = {  # server-side template injection: each would run code, read internals or write a file
    "popen": "{{ cycler.__init__.__globals__.os.popen('touch MARK').read() }}",
    "mro": "{{ ''.__class__.__mro__ }}",
    "subclasses": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "self-globals": "{{ self.__init__.__globals__.__builtins__.open('MARK', 'w') }}",
    "lipsum-globals": "{{ lipsum.__globals__['os'].popen('touch MARK').read() }}",
    "hidden-branch": "{% if text == 'never' %}{{ lipsum.__globals__.os.system('touch MARK') }}{% endif %}",
    "attr-filter": "{{ cycler|attr('__init__') }} {{ text }}",  # no literal attribute: the sandbox refuses it
}


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file's bytes; the store's empty lock file (STORE.lock, taken to read the store) is not content."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.endswith(".duckdb.lock")}


@pytest.fixture
def unchanged(tmp_path):
    """Call after writing the inputs; the test's end asserts that no file under tmp_path changed or appeared."""
    before: list[dict[str, bytes]] = []
    yield lambda: before.append(snapshot(tmp_path))
    assert before and snapshot(tmp_path) == before[0], "a file was written, changed or created"


def experiment(tmp_path: Path, model: str, suite: str, device: str = "cpu") -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(f"name: bad\ndevice: {device}\ncandidates:\n  - {{name: tiny, model: '{model}'}}\n"
                    f"variants: [base]\nsuites: ['{suite}']\nevaluation: {{bootstrap_resamples: 20}}\n")
    return path


def suite_with(tmp_path: Path, template: str, field: str = "template") -> Path:
    path = write_suite(tmp_path / "suite", "classification")
    lines = [line for line in path.read_text().splitlines() if not line.startswith(f"{field}:")]
    path.write_text("\n".join([*lines, f"{field}: {json.dumps(template)}"]) + "\n")  # JSON is YAML
    return path


# 1. templates are data: the sandbox refuses code -------------------------------------------------------
@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_template_payload_refused_by_validate(tmp_path, capsys, monkeypatch, unchanged, payload):
    mark = tmp_path / "pwned"
    suite = suite_with(tmp_path, payload.replace("MARK", str(mark)))
    unchanged()
    line = error_line(*cli(capsys, monkeypatch, "suites", "validate", str(suite)), f"{suite}:", "template: refused")
    assert line.endswith("nothing of Python's internals") and not mark.exists()


@pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_template_payload_refused_by_run(tmp_path, capsys, monkeypatch, unchanged, causal_dir, payload):
    mark = tmp_path / "pwned"
    suite = suite_with(tmp_path, payload.replace("MARK", str(mark)))
    exp = experiment(tmp_path, str(causal_dir), str(suite))
    unchanged()
    error_line(*cli(capsys, monkeypatch, "run", str(exp), "--db", str(tmp_path / "h.duckdb")), suite, "template")
    assert not mark.exists() and not (tmp_path / "h.duckdb").exists()  # no store, so no run row


def test_choice_template_payload_refused(tmp_path, capsys, monkeypatch, unchanged):
    suite = suite_with(tmp_path, "{{ choice.__class__.__base__.__subclasses__() }}", "choice_template")
    unchanged()
    error_line(*cli(capsys, monkeypatch, "suites", "validate", str(suite)), f"{suite}:", "choice_template: refused")


# 2. no run row without a model loaded -----------------------------------------------------------------
def _broken_model(tmp_path: Path, causal_dir: Path, case: str) -> tuple[str, str, str]:
    """(model reference, device, text the error names) for one way a model fails to load."""
    if case == "bad-config":
        (tmp_path / "m").mkdir()
        (tmp_path / "m" / "config.json").write_text('{"model_type": "llama"')
        return str(tmp_path / "m"), "cpu", "cannot load its config"
    if case == "truncated-safetensors":
        shutil.copytree(causal_dir, tmp_path / "m")
        weights = tmp_path / "m" / "model.safetensors"
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
        return str(tmp_path / "m"), "cpu", f"{weights} is damaged (truncated"
    if case == "offline-hub-id":
        return "no-such-org/no-such-model", "cpu", "model 'no-such-org/no-such-model': cannot load its config"
    return str(causal_dir), "cuda", "device 'cuda' requested but no CUDA GPU is available"


@pytest.mark.parametrize("case", ["bad-config", "truncated-safetensors", "offline-hub-id", "cuda-without-gpu"])
def test_model_that_cannot_load_writes_no_run(tmp_path, capsys, monkeypatch, unchanged, causal_dir, case):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    model, device, message = _broken_model(tmp_path, causal_dir, case)
    exp = experiment(tmp_path, model, str(write_suite(tmp_path / "s", "classification")), device)
    unchanged()
    error_line(*cli(capsys, monkeypatch, "run", str(exp), "--db", str(tmp_path / "h.duckdb")), message)
    assert not (tmp_path / "h.duckdb").exists()


def test_model_failing_to_load_mid_run_marks_the_run_failed_with_the_reason(tmp_path, causal_dir, monkeypatch):
    from harness.errors import HarnessError
    from harness.runner import run_experiment
    from harness.store import Store

    def refuse(ref, *args):
        raise HarnessError(f"model '{ref}': cannot load (out of disk)")

    monkeypatch.setattr("harness.runner.models.load", refuse)  # it passed the checks, then failed to load
    store = Store(tmp_path / "h.duckdb")
    run_id, status = run_experiment(experiment(tmp_path, str(causal_dir), str(write_suite(tmp_path / "s",
                                                                                            "classification"))), store)
    assert status == "failed" and store.run(run_id)["status"] == "failed"
    items = store.table("items", [run_id])
    assert list(items["status"]) == ["failed"] and "did not load: model" in items["reason"].iloc[0]


def test_an_unexpected_error_never_leaves_the_run_running(tmp_path, causal_dir, monkeypatch):
    from harness.runner import run_experiment
    from harness.store import Store

    def crash(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("harness.runner.evaluate_item", crash)
    store = Store(tmp_path / "h.duckdb")
    with pytest.raises(RuntimeError, match="a bug"):
        run_experiment(experiment(tmp_path, str(causal_dir), str(write_suite(tmp_path / "s", "classification"))),
                       store)
    assert list(store.runs()["status"]) == ["failed"]


# 3. unreadable, malformed and ambiguous inputs ----------------------------------------------------------
def test_non_utf8_experiment(tmp_path, capsys, monkeypatch, unchanged):
    exp = tmp_path / "exp.yaml"
    exp.write_bytes(b"name: caf\xe9\ncandidates: []\n")
    unchanged()
    error_line(*cli(capsys, monkeypatch, "run", str(exp)), f"{exp}:1: not UTF-8 text (byte 0xe9 at column 10)")


@pytest.mark.parametrize("ext", ["jsonl", "csv"])
def test_non_utf8_data_file(tmp_path, capsys, monkeypatch, unchanged, ext):
    suite = write_suite(tmp_path, "classification")
    data = tmp_path / f"test.{ext}"
    if ext == "jsonl":
        data.write_bytes(b'{"id": "a", "text": "fine", "label": "positive"}\n{"id": "b", "text": "na\xefve"}\n')
    else:
        data.write_bytes(b"id,text,label\na,fine,positive\nb,na\xefve,x\n")
    suite.write_text(suite.read_text().replace("test: test.jsonl", f"test: test.{ext}"))
    unchanged()
    error_line(*cli(capsys, monkeypatch, "suites", "validate", str(suite)), f"{data}:", "not UTF-8 text (byte 0xef")


def test_garbage_parquet(tmp_path, capsys, monkeypatch, unchanged):
    suite = write_suite(tmp_path, "classification")
    (tmp_path / "test.parquet").write_bytes(b"PAR1 this is not parquet at all")
    suite.write_text(suite.read_text().replace("test: test.jsonl", "test: test.parquet"))
    unchanged()
    error_line(*cli(capsys, monkeypatch, "suites", "validate", str(suite)),
               tmp_path / "test.parquet", "not a readable Parquet file")


@pytest.mark.parametrize("port", ["-1", "0", "70000"])
def test_report_port_out_of_range(tmp_path, capsys, monkeypatch, unchanged, port):
    unchanged()
    error_line(*cli(capsys, monkeypatch, "report", "--port", port, "--db", str(tmp_path / "h.duckdb")),
               f"--port {port}: not a TCP port")


def test_lock_timeout_not_a_number(tmp_path, unchanged):
    from harness.records import RunRecord
    from harness.store import Store

    store = Store(tmp_path / "h.duckdb")
    store.start_run(RunRecord("r1", "x", "x.yaml", "{}", "hash", 0, None, None, "{}", "test"))
    unchanged()
    env = {**os.environ, "HARNESS_DB_LOCK_TIMEOUT": "abc"}  # a new process: the variable is read on first use
    done = subprocess.run([sys.executable, "-m", "harness.cli", "runs", "--db", str(store.path)], env=env,
                          capture_output=True, text=True, timeout=120)
    error_line(done.returncode, done.stdout, done.stderr, "HARNESS_DB_LOCK_TIMEOUT='abc' is not a number")


@pytest.fixture
def review_store(tmp_path):
    from review_seed import seeded_copy

    return seeded_copy(tmp_path / "review.duckdb", ("alice", "bob"))[0]


def test_review_sample_absurd(tmp_path, capsys, monkeypatch, unchanged, review_store):
    from review_seed import RUN_ID, SUITE

    unchanged()
    error_line(*cli(capsys, monkeypatch, "review", "create", "--run", RUN_ID, "--suite", SUITE, "--rubric", "likert",
                    "--sample", str(10**12), "--db", str(review_store.path)), f"--sample {10**12}: at most")


def test_review_overlap_above_the_accounts(tmp_path, capsys, monkeypatch, unchanged, review_store):
    from review_seed import RUN_ID, SUITE

    unchanged()
    error_line(*cli(capsys, monkeypatch, "review", "create", "--run", RUN_ID, "--suite", SUITE, "--rubric", "likert",
                    "--overlap", "5", "--db", str(review_store.path)), "--overlap 5: only 2 accounts could grade")


DUPLICATES = {  # kind -> (file name, text with a key given twice at line 3, command)
    "experiment": ("exp.yaml", "name: x\ncandidates: [{name: a, model: m/n}]\nname: y\nsuites: [sentiment]\n",
                   ["run", "{path}"]),
    "suite": ("s.yaml", "name: s\nkind: generation\nname: t\ndata: {test: t.jsonl}\ntemplate: x\nmetrics: [bleu]\n",
              ["suites", "validate", "{path}"]),
    "rules": ("rules.yaml", "rules:\n  - {suite: a}\nrules:\n  - {suite: b}\n",
              ["gate", "--baseline", "b", "--candidate", "c", "--rules", "{path}"]),
    "rubric": ("r.yaml", "name: r\nkind: likert\nname: q\ninstructions: x\n",
               ["review", "create", "--run", "r", "--suite", "s", "--rubric", "{path}"]),
}


@pytest.mark.parametrize("kind", DUPLICATES)
def test_duplicate_yaml_key(tmp_path, capsys, monkeypatch, unchanged, kind):
    name, text, command = DUPLICATES[kind]
    path = tmp_path / name
    path.write_text(text)
    unchanged()
    args = [part.format(path=path) for part in command] + ["--db", str(tmp_path / "h.duckdb")] * (kind != "suite")
    error_line(*cli(capsys, monkeypatch, *args), f"{path}:3: duplicate key '", "(first given at line 1)")


def test_duplicate_example_ids(tmp_path, capsys, monkeypatch, unchanged):
    suite = write_suite(tmp_path, "classification")
    rows = suite_rows("classification")[:4]
    rows[3]["id"] = rows[1]["id"]
    write_jsonl(tmp_path / "test.jsonl", rows)
    unchanged()
    error_line(*cli(capsys, monkeypatch, "suites", "validate", str(suite)),
               f"{tmp_path / 'test.jsonl'}:4: duplicate example id {rows[1]['id']!r}", "first at line 2")


@pytest.mark.parametrize("last", ["rules:\n  - {suite: b, alpah: 0.1}", "  - {suite: b, max_drop: -1}"])
def test_gate_rules_error_names_its_own_line(tmp_path, capsys, monkeypatch, unchanged, last):
    """A problem at line 215 (a repeated `rules:` key, or a bad rule) is reported at line 215, not line 1."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n" + "  - {suite: a, max_drop: 0.01}\n" * 213 + last + "\n")
    unchanged()
    error_line(*cli(capsys, monkeypatch, "gate", "--baseline", "b", "--candidate", "c", "--rules", str(rules),
                    "--db", str(tmp_path / "h.duckdb")), f"{rules}:215:")


@pytest.mark.parametrize("where", ["experiment", "suite", "data", "rules", "rubric"])
def test_directory_where_a_file_is_expected(tmp_path, capsys, monkeypatch, unchanged, where):
    folder = tmp_path / "folder.yaml"
    folder.mkdir()
    suite = write_suite(tmp_path / "s", "classification")
    commands = {
        "experiment": ["run", str(folder)], "suite": ["suites", "validate", str(folder)],
        "data": ["suites", "validate", str(suite)],
        "rules": ["gate", "--baseline", "b", "--candidate", "c", "--rules", str(folder)],
        "rubric": ["review", "create", "--run", "r", "--suite", "s", "--rubric", str(folder)]}
    if where == "data":
        (tmp_path / "s" / "test.jsonl").unlink()
        (tmp_path / "s" / "test.jsonl").mkdir()
        folder = tmp_path / "s" / "test.jsonl"
    unchanged()
    line = error_line(*cli(capsys, monkeypatch, *commands[where]), folder, "is a directory")
    assert "not found" not in line


@pytest.mark.parametrize("keep", [0.003, 0.5])  # cut inside DuckDB's headers, and in the data blocks
def test_show_on_a_truncated_store(tmp_path, capsys, monkeypatch, unchanged, keep):
    from harness.records import RunRecord
    from harness.store import Store

    store = Store(tmp_path / "h.duckdb")
    store.start_run(RunRecord("r1", "x", "x.yaml", "{}", "hash", 0, None, None, "{}", "test"))
    data = store.path.read_bytes()
    store.path.write_bytes(data[: int(len(data) * keep)])
    unchanged()
    error_line(*cli(capsys, monkeypatch, "show", "r1", "--db", str(store.path)), store.path)
