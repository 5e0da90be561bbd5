"""`harness store ...`: housekeeping of a store, and copying a DuckDB file store into a team store."""

from __future__ import annotations

import os

import typer

from harness.cli import app
from harness.errors import HarnessError
from harness.store import Store

store_app = typer.Typer(no_args_is_help=True, help="The store: housekeeping, and moving up to a team store.")
app.add_typer(store_app, name="store")
DATA_PATH_HELP = "Folder (or s3://...) for a new team store's data files (default: data_path= of the address, " \
                 "or $HARNESS_DATA_PATH)."


def _with_data_path(data_path: str | None) -> None:
    if data_path:
        os.environ["HARNESS_DATA_PATH"] = data_path


@store_app.command()
def maintain(
    db: str | None = typer.Option(None, "--db", help="Store: DuckDB file or ducklake:postgres:... address "
                                  "(default: $HARNESS_DB or ./harness.duckdb)."),
    data_path: str | None = typer.Option(None, "--data-path", help=DATA_PATH_HELP),
) -> None:
    """Merge small data files and flush inlined rows of a team store (safe while others write)."""
    from harness.store.housekeeping import maintain as run_maintain

    _with_data_path(data_path)
    store = Store(db)
    for step in run_maintain(store):
        typer.echo(f"{store.path}: {step}")


@store_app.command()
def copy(
    source: str = typer.Option(..., "--from", help="The DuckDB file store to copy."),
    target: str = typer.Option(..., "--to", help="The store to copy into: a ducklake:postgres:... address or a file."),
    data_path: str | None = typer.Option(None, "--data-path", help=DATA_PATH_HELP),
) -> None:
    """Copy every run, result, review and gate decision of one store into another."""
    from harness.store.address import is_team
    from harness.store.housekeeping import copy as run_copy

    if is_team(source):
        raise HarnessError(f"store copy --from {source!r}: copy from a DuckDB file store; a team store is shared "
                           "already")
    _with_data_path(data_path)
    report = run_copy(Store(source, create=False), Store(target))
    shown = ", ".join(f"{name} {n}" for name, n in sorted(report.rows.items()) if n)
    typer.echo(f"copied {report.total} rows from {source} to {Store(target).path}" + (f" ({shown})" if shown else ""))
