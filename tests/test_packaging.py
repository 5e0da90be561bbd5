"""The wheel carries everything the package needs at run time: built-in suites and their data, rubrics,
the demo experiment and the whole report app (pages and entry script), so a plain `pip install .` runs
`harness demo` and `harness report` from any folder."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> set[str]:
    out = tmp_path_factory.mktemp("wheel")
    build = tmp_path_factory.mktemp("build")
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                             "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=300,
                            env={"PATH": "/usr/bin:/bin", "TMPDIR": str(build), "HOME": str(build)})
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = out.glob("harness-*.whl")
    return set(zipfile.ZipFile(wheel).namelist())


def test_the_wheel_carries_the_built_in_suites_rubrics_and_demo(wheel_names):
    shipped = {p.relative_to(ROOT).as_posix() for p in (ROOT / "harness").rglob("*")
               if p.is_file() and p.suffix in {".yaml", ".jsonl"}}
    assert {"harness/suites/builtin/sentiment.yaml", "harness/review/builtin/likert.yaml",
            "harness/experiments/demo.yaml", "harness/suites/builtin/data/sentiment_test.jsonl"} <= shipped
    assert shipped <= wheel_names


def test_the_wheel_carries_the_whole_report_app(wheel_names):
    app = {p.relative_to(ROOT).as_posix() for p in (ROOT / "reports").rglob("*.py")}
    assert {"reports/app.py", "reports/server.py", "reports/entry/app.py", "reports/pages/grade.py"} <= app
    assert app <= wheel_names
