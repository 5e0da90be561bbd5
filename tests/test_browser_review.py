"""The review flow in headless Chromium against the server `harness report` starts (reports/server.py) on
127.0.0.1.

Log in as a reviewer, grade three single and three pairwise items (the grade form submits on Enter),
reload (still logged in), log out; the grades are in the store, candidate names never reach the page's
HTML in blind queues, a second reviewer does not see the first one's grades, without a login only the
login form shows, a deep link survives the login, and a copied session cookie is refused after logout.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from review_seed import CANDIDATES, RUN_ID, SUITE, seeded_copy

from harness import review
from harness.cli.report_commands import server_env, streamlit_command
from harness.review.rubrics import load_rubric

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
WAIT_MS = 30_000

if not Path(CHROMIUM).exists():
    pytest.skip(f"{CHROMIUM} is absent (apt-get install -y chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (python) is not installed")
expect = sync_api.expect


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served(tmp_path):
    """A seeded store with two blind queues, served by `streamlit run app.py`; yields (url, store, passwords)."""
    store, passwords = seeded_copy(tmp_path / "browser.duckdb", ("alice", "bob", "boss"))
    store.transaction(lambda con: con.execute("UPDATE reviewers SET role = 'admin' WHERE name = 'boss'"))
    pairwise = tmp_path / "ab.yaml"
    pairwise.write_text("name: ab\nkind: pairwise\ninstructions: Which output is better?\nshow_reference: false\n")
    for name, rubric, mode in (("single-blind", load_rubric("pass_fail"), "single"),
                               ("pair-blind", load_rubric(pairwise), "pairwise")):
        review.create_queue(store, review.QueueRequest(RUN_ID, SUITE, rubric, mode=mode, sample=4, overlap=2,
                                                       reviewers=["alice", "bob"], name=name))
    port = free_port()
    env = server_env(store.path)
    assert env["HARNESS_AUTH"] == "accounts"
    server = subprocess.Popen(streamlit_command(port), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, server)
        yield url, store, passwords
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def wait_healthy(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited: {server.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("streamlit did not come up within 60 s")


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


def log_in(page, name: str, password: str, heading: str = "Grade") -> None:
    expect(page.get_by_role("heading", name="Log in")).to_be_visible(timeout=WAIT_MS)
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_role("heading", name=heading)).to_be_visible(timeout=WAIT_MS)


def choose_queue(page, queue_id: str) -> None:
    box = page.get_by_role("combobox", name="Queue")
    box.click()
    box.press_sequentially(queue_id)
    box.press("Enter")
    expect(box).to_have_value(re.compile(f"^{queue_id} "), timeout=WAIT_MS)


def grade_by_keyboard(page, choice: str, done: int, total: int) -> None:
    """Pick an answer, then press Enter in the comment box: the form submits."""
    expect(page.get_by_text(f"{done} of {total} graded")).to_be_visible(timeout=WAIT_MS)
    advanced = page.get_by_text(f"{done + 1} of {total} graded")
    for attempt in range(3):  # on a loaded machine a click or an Enter can land before the new form is live
        settle(page)
        form = page.get_by_test_id("stForm").last
        form.get_by_role("radiogroup", name="Overall").get_by_text(choice, exact=True).click()
        comment = form.get_by_role("textbox", name="Comment (optional)")
        comment.fill(f"note {done}")
        comment.press("Enter")
        try:
            expect(advanced).to_be_visible(timeout=10_000 if attempt < 2 else WAIT_MS)
            return
        except AssertionError:
            if attempt == 2:
                raise


def settle(page) -> None:
    """Wait until the app has finished its rerun (its status widget goes away) and stale elements are gone."""
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0, timeout=WAIT_MS)
    expect(page.get_by_test_id("stForm")).to_have_count(1, timeout=WAIT_MS)


def assert_blind(page) -> None:
    html = page.content()
    assert not any(name in html for name in CANDIDATES)


def test_review_flow_in_chromium(served, browser):
    url, store, passwords = served
    context = browser.new_context()
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    for path in ("", "/grade", "/human-review"):  # no login: only the login form, whatever the address
        page.goto(url + path)
        expect(page.get_by_role("heading", name="Log in")).to_be_visible(timeout=WAIT_MS)
        html = page.content()
        assert "Summarise note" not in html and "single-blind" not in html and "Leaderboard" not in html
        assert page.get_by_test_id("stSidebarNav").count() == 0

    page.goto(url + "/grade")
    log_in(page, "alice", passwords["alice"])  # back at the address asked for
    assert page.url == url + "/grade"
    choose_queue(page, "single-blind")
    # model text is text: the input's literal "<b>meeting</b>" is shown as written, not as bold HTML
    expect(page.get_by_text("the <b>meeting</b> about").first).to_be_visible(timeout=WAIT_MS)
    assert page.locator("b", has_text="meeting").count() == 0
    for done in range(3):
        assert_blind(page)
        grade_by_keyboard(page, "Pass", done, 8)
    choose_queue(page, "pair-blind")
    for done in range(3):
        expect(page.get_by_role("heading", name="Output B")).to_be_visible(timeout=WAIT_MS)
        assert_blind(page)
        grade_by_keyboard(page, "B", done, 4)
    page.goto(url + "/human-review")  # a new page load keeps the login (the session cookie) ...
    expect(page.get_by_role("heading", name="Grade")).to_be_visible(timeout=WAIT_MS)  # ... an admin page: "Grade"
    page.keyboard.press("Escape")  # Streamlit's "page not found" notice
    assert page.get_by_role("heading", name="Human review").count() == 0
    assert page.get_by_test_id("stSidebarNav").count() == 0  # one page: no navigation to other pages
    copied = context.cookies()
    page.get_by_role("link", name="Log out").click()
    expect(page.get_by_role("heading", name="Log in")).to_be_visible(timeout=WAIT_MS)
    replay = browser.new_context()  # the cookie copied before logout opens nothing now
    replay.add_cookies(copied)
    replayed = replay.new_page()
    replayed.goto(url + "/grade")
    expect(replayed.get_by_role("heading", name="Log in")).to_be_visible(timeout=WAIT_MS)
    assert "Summarise note" not in replayed.content()
    replay.close()
    assert not dialogs  # model text with <script> was shown as text, never run

    grades = store.query("SELECT queue_id, reviewer, overall, comment FROM review_grades ORDER BY queue_id")
    assert grades.groupby("queue_id").size().to_dict() == {"pair-blind": 3, "single-blind": 3}
    assert set(grades["reviewer"]) == {"alice"} and sorted(grades["overall"]) == ["B"] * 3 + ["pass"] * 3
    # the comment typed before Enter is stored (on a loaded machine an early Enter may submit before it lands)
    comments = [c for c in grades["comment"] if isinstance(c, str)]
    assert comments and set(comments) <= {"note 0", "note 1", "note 2"}

    second = browser.new_context().new_page()  # another reviewer, another browser session
    second.goto(url)
    log_in(second, "bob", passwords["bob"])
    choose_queue(second, "single-blind")
    expect(second.get_by_text("0 of 8 graded")).to_be_visible(timeout=WAIT_MS)
    assert second.locator("input[type=radio]:checked").count() == 0
    html = second.content()
    assert "alice" not in html and "note 0" not in html
    assert_blind(second)
    second.get_by_role("link", name="Log out").click()

    log_in_admin(second, passwords["boss"])
    nav = second.get_by_test_id("stSidebarNav")
    for title in ("Leaderboard", "Review queues", "Human review", "Grade"):
        expect(nav.get_by_role("link", name=title)).to_be_visible(timeout=WAIT_MS)
    nav.get_by_role("link", name="Human review").click()
    expect(second.get_by_role("heading", name="Agreement between reviewers")).to_be_visible(timeout=WAIT_MS)
    context.close()


def log_in_admin(page, password: str) -> None:
    expect(page.get_by_role("heading", name="Log in")).to_be_visible(timeout=WAIT_MS)
    page.get_by_label("Name").fill("boss")
    page.get_by_label("Password").fill(password)
    page.get_by_label("Password").press("Enter")
    expect(page.get_by_test_id("stSidebarNav")).to_be_visible(timeout=WAIT_MS)


def test_a_deep_link_survives_the_login(served, browser):
    url, _, passwords = served
    page = browser.new_context().new_page()
    page.goto(f"{url}/compare?run={RUN_ID}")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible(timeout=WAIT_MS)
    assert "/auth/login?next=" in page.url
    log_in(page, "boss", passwords["boss"], heading="Compare two")
    assert page.url.startswith(f"{url}/compare") and f"run={RUN_ID}" in page.url
