"""`harness report`: serve the Streamlit report on this machine (127.0.0.1) for one store."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path

import typer

from harness.cli import app
from harness.errors import HarnessError
from harness.store import TeamAddress, address_of


def _reports_dir() -> Path:
    """Where the installed `reports` package (the Streamlit app) is, without importing it: harness never
    imports the report (an import-linter contract), it starts it as a server."""
    spec = importlib.util.find_spec("reports")
    if spec is None or not spec.submodule_search_locations:
        raise HarnessError("the report app (package `reports`) is not installed; reinstall harness")
    return Path(next(iter(spec.submodule_search_locations)))


SERVER = _reports_dir() / "server.py"


def streamlit_command(port: int, app_path: Path = SERVER, host: str = "127.0.0.1") -> list[str]:
    """The `streamlit run` command line: the app behind its login routes (reports/server.py), loopback unless
    a host is given, no browser launch, no usage statistics, no developer toolbar, no source-file watcher
    (a report is not a development server) and no error details in the browser (they go to the log)."""
    return [sys.executable, "-m", "streamlit", "run", str(app_path), "--server.address", host,
            "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--client.toolbarMode", "viewer", "--server.fileWatcherType", "none",
            "--client.showErrorDetails", "none"]


def server_env(path: Path) -> dict[str, str]:
    """The server's environment: its store, and its authentication mode decided now, once (see reports/access.py):
    `accounts` when the store has any, and then for the server's whole life, even if every account goes."""
    from harness.review.auth import decide_mode
    from harness.store import Store

    mode = decide_mode(Store(path)) if path.exists() else "open"
    store_env = path.full() if isinstance(path, TeamAddress) else str(path)  # a team address keeps its password
    return {**os.environ, "HARNESS_DB": store_env, "HARNESS_AUTH": mode}


@app.command()
def report(
    db: str | None = typer.Option(None, "--db", help="DuckDB file (default: $HARNESS_DB or ./harness.duckdb)."),
    port: int = typer.Option(8501, "--port", help="Port to listen on."),
    host: str = typer.Option("127.0.0.1", "--host",
                             help="Address to listen on; 0.0.0.0 serves reviewers on the team network."),
) -> None:
    """Open the report (leaderboard, lift, comparisons, training, cost, runs) at http://127.0.0.1:PORT."""
    if not 1 <= port <= 65535:
        raise HarnessError(f"--port {port}: not a TCP port; give a number from 1 to 65535 (default 8501)")
    if not SERVER.is_file():
        raise HarnessError(f"{SERVER} is missing; reinstall harness")
    path = address_of(db).resolve()  # a DuckDB file, or a team store (harness/store/address.py)
    if not path.exists():
        typer.echo(f"note: {path} does not exist yet; the report shows runs as soon as one writes there", err=True)
    if host not in {"127.0.0.1", "localhost", "::1"}:
        require_accounts(path, host)
    env = server_env(path)
    logins = "logins required" if env["HARNESS_AUTH"] == "accounts" else "open: no accounts, local use only"
    typer.echo(f"report on {path} ({logins}): http://{host}:{port}  (Ctrl+C stops it)")
    raise typer.Exit(serve(streamlit_command(port, host=host), env))


def require_accounts(path: Path, host: str) -> None:
    """With no accounts the app lets everyone in as admin (the engineer's own machine); never on a network."""
    from harness.review.auth import has_accounts
    from harness.store import Store

    if not path.exists() or not has_accounts(Store(path, create=False)):
        raise HarnessError(f"--host {host}: {path} has no accounts, so anyone on the network would be admin; "
                           "create one first: harness review add-reviewer NAME --role admin")


def serve(command: list[str], env: dict[str, str]) -> int:
    """Run the server until it exits, Ctrl+C or SIGTERM; the server never outlives the command."""
    process = subprocess.Popen(command, env=env, cwd=str(SERVER.parent.parent))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        return process.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
