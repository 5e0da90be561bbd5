"""`harness report`: serve the Streamlit report on this machine (127.0.0.1) for one store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer

from harness.cli import app
from harness.errors import HarnessError
from harness.store import default_path

APP = Path(__file__).resolve().parents[2] / "app.py"


def streamlit_command(port: int, app_path: Path = APP) -> list[str]:
    """The `streamlit run` command line: local address only, no browser launch, no usage statistics."""
    return [sys.executable, "-m", "streamlit", "run", str(app_path), "--server.address", "127.0.0.1",
            "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]


@app.command()
def report(
    db: str | None = typer.Option(None, "--db", help="DuckDB file (default: $HARNESS_DB or ./harness.duckdb)."),
    port: int = typer.Option(8501, "--port", help="Port on 127.0.0.1."),
) -> None:
    """Open the report (leaderboard, lift, comparisons, training, cost, runs) at http://127.0.0.1:PORT."""
    if not APP.is_file():
        raise HarnessError(f"{APP} is missing; `harness report` runs from a source checkout of the harness")
    path = default_path(db).resolve()
    if not path.exists():
        typer.echo(f"note: {path} does not exist yet; the report shows runs as soon as one writes there", err=True)
    env = {**os.environ, "HARNESS_DB": str(path)}
    typer.echo(f"report on {path}: http://127.0.0.1:{port}  (Ctrl+C stops it)")
    try:
        code = subprocess.call(streamlit_command(port), env=env, cwd=str(APP.parent))
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)
