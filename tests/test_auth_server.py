"""The served app's doors, over real HTTP against the server `harness report` starts (reports/server.py).

Without a session: pages redirect to the login form with the address kept, the websocket and media are
refused. Logins: 30 parallel wrong passwords check at most the free attempts, 32 simultaneous logins show
no traceback, a one-time password works once. Sessions: a copied cookie stops working after logout, a
password reset and removal. Mode: a server started with accounts stays closed after every account goes.
Exports: only an admin's session.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from pg_server import seeded_team_store
from review_seed import RUN_ID, SUITE, seeded_copy

from harness import review
from harness.cli.report_commands import server_env, streamlit_command
from harness.review.auth import FREE_FAILURES, add_account, remove_account, reset_password
from harness.review.rubrics import load_rubric
from harness.store import team

ROOT = Path(__file__).resolve().parents[1]
TRACE_WORDS = ("Traceback", "Exception", "File \"/", ".py\", line", "duckdb", "Error:")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module", params=["file", "team"])
def server(request, tmp_path_factory):
    """One served app per back-end: every test here runs against a server on a DuckDB file, then on a team store."""
    folder, accounts = tmp_path_factory.mktemp("auth"), ("alice", "bob", "boss")
    if request.param == "file":
        store, passwords = seeded_copy(folder / "auth.duckdb", accounts)
    else:
        store, passwords = seeded_team_store(request.getfixturevalue("pg_server"), accounts, folder / "lake")
    try:
        yield from _served(store, passwords)
    finally:
        if request.param == "team":
            team.close_all()
            request.getfixturevalue("pg_server").drop_database(store.path.field("dbname"))


def _served(store, passwords):
    store.transaction(lambda con: con.execute("UPDATE reviewers SET role = 'admin' WHERE name = 'boss'"))
    review.create_queue(store, review.QueueRequest(RUN_ID, SUITE, load_rubric("pass_fail"), sample=4, overlap=1,
                                                   name="q1"))
    port = free_port()
    env = server_env(store.path)
    process = subprocess.Popen(streamlit_command(port), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, process)
        yield url, store, passwords
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(process.stderr.read().decode()[-2000:])
        try:
            if requests.get(f"{url}/_stcore/health", timeout=2).text.strip() == "ok":
                return
        except requests.RequestException:
            time.sleep(0.3)
    raise RuntimeError("the server did not come up")


def post_login(url: str, name: str, password: str, next_path: str = "/") -> requests.Response:
    return requests.post(f"{url}/auth/login", data={"name": name, "password": password, "next": next_path},
                         allow_redirects=False, timeout=60)


def log_in(url: str, name: str, password: str) -> str:
    response = post_login(url, name, password)
    assert response.status_code == 303, response.text[:500]
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    return response.cookies["harness_session"]


def page_status(url: str, token: str | None, path: str = "/grade") -> tuple[int, str]:
    cookies = {"harness_session": token} if token else {}
    response = requests.get(url + path, cookies=cookies, allow_redirects=False, timeout=30)
    return response.status_code, response.headers.get("location", "")


def websocket_status(url: str, token: str | None) -> int:
    """The HTTP status of a websocket handshake on Streamlit's stream (101: accepted)."""
    host, port = url.removeprefix("http://").split(":")
    key = base64.b64encode(os.urandom(16)).decode()
    cookie = f"Cookie: harness_session={token}\r\n" if token else ""
    request = (f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{cookie}\r\n")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request.encode())
        head = sock.recv(4096).decode("latin-1")
    return int(head.split()[1])


def test_no_session_no_page_websocket_or_media(server):
    url, _, _ = server
    status, location = page_status(url, None, f"/compare?run={RUN_ID}")
    assert status == 303 and location == "/auth/login?next=%2Fcompare%3Frun%3Dreview-run-0001"
    assert websocket_status(url, None) == 403
    assert requests.get(f"{url}/media/abc.csv", timeout=10).status_code == 401
    login_page = requests.get(url + location, timeout=10)
    assert login_page.status_code == 200 and 'name=next value="/compare?run=review-run-0001"' in login_page.text
    assert post_login(url, "x", "y", next_path="https://evil.example/").status_code == 401
    assert "evil" not in post_login(url, "x", "y", next_path="//evil.example/").text  # no open redirect


def test_thirty_parallel_wrong_passwords_are_mostly_refused_unchecked(server):
    url, store, _ = server
    add_account(store, "victim")
    with ThreadPoolExecutor(30) as pool:
        responses = list(pool.map(lambda i: post_login(url, "victim", f"guess-{i}"), range(30)))
    texts = [r.text for r in responses]
    assert all(r.status_code == 401 for r in responses)
    checked = sum("wrong name or password" in t for t in texts)
    assert checked <= FREE_FAILURES and sum("too many failed logins" in t for t in texts) == 30 - checked
    failures = store.query("SELECT failures FROM login_throttle WHERE name = 'victim'")["failures"].iloc[0]
    assert failures == checked  # every password checked was counted first
    assert not any(word in t for t in texts for word in TRACE_WORDS)


def test_thirty_two_simultaneous_logins_show_no_traceback(server):
    url, store, _ = server
    passwords = {f"crowd{i}": add_account(store, f"crowd{i}") for i in range(4)}
    with ThreadPoolExecutor(32) as pool:
        responses = list(pool.map(lambda i: post_login(url, f"crowd{i % 4}", passwords[f"crowd{i % 4}"]), range(32)))
    assert {r.status_code for r in responses} <= {200, 401}  # the change-password page, or throttled
    assert not any(word in r.text for r in responses for word in TRACE_WORDS)


def test_a_one_time_password_works_once(server):
    url, store, _ = server
    given = add_account(store, "newbie")
    first = post_login(url, "newbie", given)
    assert first.status_code == 200 and "Choose your password" in first.text
    token = re.search(r'name=token value="([^"]+)"', first.text).group(1)
    form = {"token": token, "new_password": "newbie-own-pass", "confirm_password": "newbie-own-pass", "next": "/"}
    changed = requests.post(f"{url}/auth/password", data=form, allow_redirects=False, timeout=30)
    assert changed.status_code == 303 and "harness_session" in changed.cookies
    again = requests.post(f"{url}/auth/password", data={**form, "new_password": "x" * 12,
                                                        "confirm_password": "x" * 12}, allow_redirects=False)
    assert again.status_code == 401  # a change token is good for one change
    assert post_login(url, "newbie", given).status_code == 401
    assert post_login(url, "newbie", "newbie-own-pass").status_code == 303


def test_a_copied_session_ends_with_logout_reset_and_removal(server):
    url, store, passwords = server
    token = log_in(url, "alice", passwords["alice"])
    assert page_status(url, token) == (200, "") and websocket_status(url, token) == 101
    requests.get(f"{url}/auth/logout", cookies={"harness_session": token}, allow_redirects=False, timeout=10)
    assert page_status(url, token)[0] == 303 and websocket_status(url, token) == 403
    add_account(store, "carol")
    carol = reset_password(store, "carol")
    token = log_in_changed(url, "carol", carol)
    assert page_status(url, token)[0] == 200
    reset_password(store, "carol")  # `harness review reset-password carol`
    assert page_status(url, token)[0] == 303
    add_account(store, "dave")
    token = log_in_changed(url, "dave", reset_password(store, "dave"))
    remove_account(store, "dave")  # `harness review remove-reviewer dave`
    assert page_status(url, token)[0] == 303 and websocket_status(url, token) == 403


def log_in_changed(url: str, name: str, given: str) -> str:
    first = post_login(url, name, given)
    token = re.search(r'name=token value="([^"]+)"', first.text).group(1)
    form = {"token": token, "new_password": f"{name}-own-password", "confirm_password": f"{name}-own-password"}
    response = requests.post(f"{url}/auth/password", data=form, allow_redirects=False, timeout=30)
    return response.cookies["harness_session"]


def test_exports_need_an_admin_session(server):
    url, _, passwords = server
    path = "/auth/export/grades.csv?queue=q1"
    assert requests.get(url + path, allow_redirects=False, timeout=10).status_code == 403
    reviewer = log_in(url, "bob", passwords["bob"])
    assert requests.get(url + path, cookies={"harness_session": reviewer}, timeout=10).status_code == 403
    admin = log_in(url, "boss", passwords["boss"])
    response = requests.get(url + path, cookies={"harness_session": admin}, timeout=30)
    assert response.status_code == 200 and response.text.startswith("queue_id,")
    assert response.headers["cache-control"] == "no-store"
    requests.get(f"{url}/auth/logout", cookies={"harness_session": admin}, timeout=10)
    assert requests.get(url + path, cookies={"harness_session": admin}, timeout=10).status_code == 403


def test_a_server_started_with_accounts_stays_closed_when_every_account_is_gone(server):
    url, store, _ = server
    for name in store.query("SELECT name FROM reviewers")["name"]:
        remove_account(store, name)
    assert store.query("SELECT count(*) AS n FROM reviewers")["n"].iloc[0] == 0
    status, location = page_status(url, None, "/leaderboard")
    assert status == 303 and location.startswith("/auth/login")
    assert websocket_status(url, None) == 403
    assert post_login(url, "local", "").status_code == 401
