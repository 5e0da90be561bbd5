"""app.py's navigation and login contract, and the `harness report` command line."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from harness.store import Store

ROOT = Path(__file__).resolve().parents[1]


def fake_review_modules(monkeypatch, role: str | None) -> None:
    """Stand-ins for reports.login and reports.review_pages, so the contract is tested on its own."""
    login = types.ModuleType("reports.login")

    def login_gate(store):
        assert isinstance(store, Store)
        if role is None:
            st.title("Log in")
        return role

    login.login_gate = login_gate
    pages = types.ModuleType("reports.review_pages")

    def queue() -> None:
        st.title("Fake review queue")

    def grade() -> None:
        st.title("Fake grading")

    # built when called, inside the script run (as the real module does)
    pages.admin_pages = lambda: [st.Page(queue, title="Queues", url_path="queues")]
    pages.reviewer_pages = lambda: [st.Page(grade, title="Grade", url_path="grade")]
    monkeypatch.setitem(sys.modules, "reports.login", login)
    monkeypatch.setitem(sys.modules, "reports.review_pages", pages)


def run_app(page: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    if page:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def test_admin_sees_report_and_review_pages(monkeypatch):
    fake_review_modules(monkeypatch, "admin")
    assert titles(run_app()) == ["Leaderboard"]  # an empty store: the page explains how to start
    assert titles(run_app("reports/pages/runs.py")) == ["Runs"]
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    at.switch_page("reports/pages/gates.py").run()
    assert titles(at) == ["Gate history"]


def test_reviewer_sees_only_reviewer_pages(monkeypatch):
    fake_review_modules(monkeypatch, "reviewer")
    at = run_app()
    assert titles(at) == ["Fake grading"] and not at.dataframe
    with pytest.raises(ValueError, match=r"Known pages: \['Home', 'grade'\]"):  # no report page in the navigation
        at.switch_page("reports/pages/leaderboard.py")


def test_no_role_stops_after_the_login_form(monkeypatch):
    fake_review_modules(monkeypatch, None)
    assert titles(run_app()) == ["Log in"]


def test_open_mode_without_accounts_everyone_is_admin(monkeypatch, tmp_path):
    monkeypatch.setenv("HARNESS_DB", str(tmp_path / "open.duckdb"))
    monkeypatch.setenv("HARNESS_AUTH", "open")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert titles(at) == ["Leaderboard"]
    assert at.session_state["user"]["name"] == "local"


def test_report_command_serves_app_on_localhost(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from harness.cli import _register, app, report_commands

    _register()
    calls = {}

    def fake_serve(command, env):
        calls.update(command=command, env=env)
        return 0

    monkeypatch.setattr(report_commands, "serve", fake_serve)
    result = CliRunner().invoke(app, ["report", "--db", str(tmp_path / "x.duckdb"), "--port", "8765"])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:8765" in result.output
    command = calls["command"]
    assert command[1:4] == ["-m", "streamlit", "run"] and command[4].endswith("reports/server.py")
    assert command[command.index("--client.showErrorDetails") + 1] == "none"  # no traceback in a browser
    assert calls["env"]["HARNESS_AUTH"] == "open"  # no accounts when it started
    assert command[command.index("--server.address") + 1] == "127.0.0.1"
    assert command[command.index("--server.port") + 1] == "8765"
    assert calls["env"]["HARNESS_DB"] == str((tmp_path / "x.duckdb").resolve())


@pytest.mark.parametrize("text, expected", [("a_b*c", "a\\_b\\*c"), ("<img src=x>", "\\<img src\\=x\\>")])
def test_markdown_escape(text, expected):
    from reports.ui import md_escape

    assert md_escape(text) == expected


def test_report_on_a_network_address_needs_accounts(tmp_path):
    """Without accounts everyone is admin, so serving beyond loopback is refused with one line."""
    import subprocess
    import sys

    db = tmp_path / "empty.duckdb"
    result = subprocess.run([sys.executable, "-m", "harness.cli", "report", "--db", str(db), "--host", "0.0.0.0"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "no accounts" in result.stderr and "add-reviewer" in result.stderr
