"""The report in a real browser: `streamlit run app.py` on a seeded store, driven by headless Chromium.

Run alone with `pytest -m browser tests/test_browser_report.py`. It needs /usr/bin/chromium (Debian's
`apt-get install chromium`); Playwright never downloads a browser here. `python tests/test_browser_report.py
--db STORE --out docs/screenshots` takes the screenshots of every page that docs/report.md shows.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report_fixtures import CAUSAL, GEN_SUITE, XSS_ID, XSS_IMG, XSS_SCRIPT  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
pytest_plugins = ["report_fixtures"]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
PAGES = ["leaderboard", "lift", "compare", "training", "cost", "runs", "gates"]

pytestmark = [pytest.mark.browser, pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                                     reason=f"{CHROMIUM} is absent (apt-get install chromium)")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def report_server(db: Path, extra: tuple[str, ...] = ()):
    """`streamlit run app.py` on 127.0.0.1 (a free port) for `db`; yields the base URL."""
    port = free_port()
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.address", "127.0.0.1", "--server.port",
               str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none", *extra]
    env = {**os.environ, "HARNESS_DB": str(db)}
    log = tempfile.TemporaryFile()  # a file, not a pipe: a full pipe nobody reads would stall the server
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if urllib.request.urlopen(f"{base}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                raise RuntimeError(f"streamlit did not start: {log.read().decode(errors='replace')[-2000:]}")
            time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextmanager
def browser_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            yield page
        finally:
            browser.close()


def open_page(page, url: str, title: str, ready: str | None = None) -> None:
    """Load a page and wait until Streamlit has finished running it (and `ready`, a selector, is there)."""
    page.goto(url)
    page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
    if ready:
        page.locator(ready).first.wait_for(timeout=60_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=60_000)
    page.wait_for_timeout(1500)  # charts and grids finish drawing


def tall_screenshot(page, path: Path, width: int = 1400) -> None:
    """Streamlit scrolls inside its main block, so grow the window to the content's height first."""
    script = "() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight"
    height = 0
    for _ in range(4):  # growing the window can lay the page out taller (charts take the width)
        measured = int(page.evaluate(script))
        if measured <= height:
            break
        height = measured
        page.set_viewport_size({"width": width, "height": min(max(height + 40, 800), 8000)})
        page.wait_for_timeout(1200)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size({"width": width, "height": 1000})


TITLES = {"leaderboard": "Leaderboard", "lift": "Fine-tuning lift", "compare": "Compare two",
          "training": "Training", "cost": "Cost and quality", "runs": "Runs", "gates": "Gate history"}


def screenshot_all(base: str, out: Path, queries: dict[str, str] | None = None) -> list[Path]:
    """A full-page screenshot of every page (query strings per page optional)."""
    out.mkdir(parents=True, exist_ok=True)
    saved = []
    with browser_page() as page:
        for name in PAGES:
            query = (queries or {}).get(name, "")
            open_page(page, f"{base}/{name}{'?' + query if query else ''}", TITLES[name])
            path = out / f"report_{name}.png"
            tall_screenshot(page, path)
            saved.append(path)
    return saved


def test_leaderboard_and_comparison_in_chromium(report_db, tmp_path):
    run = report_db.run_id
    compare_query = f"run={run}&a={CAUSAL}/base&b={CAUSAL}/lora&suite={GEN_SUITE}&example={XSS_ID}"
    with report_server(report_db.path) as base, browser_page() as page:
        open_page(page, f"{base}/leaderboard?run={run}", "Leaderboard", '[data-testid="stVegaLiteChart"]')
        assert page.get_by_text("★ best in column").is_visible()
        grid = page.locator('[data-testid="stDataFrame"]').first
        assert grid.is_visible()
        table = grid.text_content()  # the grid draws on a canvas; its accessible table holds the cells
        assert "tiny_sentiment · accuracy" in table and "n/a" in table and "★" in table and "(ref)" in table
        assert page.locator('[data-testid="stVegaLiteChart"]').count() >= 1
        page.screenshot(path=str(tmp_path / "leaderboard.png"), full_page=True)

        open_page(page, f"{base}/compare?{compare_query}", "Compare two", '[data-testid="stHtml"]')
        assert page.get_by_text("Per-suite differences (B − A)").is_visible()
        shown = page.locator('[data-testid="stText"]').all_inner_texts()
        assert any(XSS_SCRIPT in text and XSS_IMG in text for text in shown), shown
        examples = page.locator('[data-testid="stDataFrame"]').nth(1).text_content()
        assert XSS_SCRIPT in examples  # the grid's cells hold the markup as text too
        assert page.evaluate("() => window.__xss") is None
        assert page.locator('img[src="x"]').count() == 0
        assert page.locator("script", has_text="__xss").count() == 0
        page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
    assert (tmp_path / "leaderboard.png").stat().st_size > 10_000
    assert (tmp_path / "compare.png").stat().st_size > 10_000
    if os.environ.get("HARNESS_SCREENSHOTS"):
        with report_server(report_db.path) as base:
            screenshot_all(base, Path(os.environ["HARNESS_SCREENSHOTS"]), {"compare": compare_query})


def main() -> None:
    parser = argparse.ArgumentParser(description="Screenshots of every report page.")
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--compare", default="", help="query string for the compare page")
    args = parser.parse_args()
    with report_server(args.db, ("--client.toolbarMode", "viewer")) as base:
        for path in screenshot_all(base, args.out, {"compare": args.compare}):
            print(path)


if __name__ == "__main__":
    main()
