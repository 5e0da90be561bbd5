"""The `harness` command in-process, for tests that drive the CLI, and the check every user mistake shares: one
`error:` line on stderr, exit code 2, no traceback. Test modules import it as `from cli_helper import cli`
(tests/conftest.py puts this folder on sys.path)."""

from __future__ import annotations

import sys

import pytest

from harness.cli import main


def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    """Run `harness ARGS` in-process the way the console script does; (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["harness", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_line(code: int, out: str, err: str, *words: object) -> str:
    """The one `error:` line (exit 2, nothing else on stderr, no traceback), checked to contain each of `words`."""
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for word in words:
        assert str(word) in lines[0], (word, lines[0])
    return lines[0]
