"""`harness suites list` and `harness suites validate`."""

from __future__ import annotations

import typer

from harness.cli import app

suites_app = typer.Typer(help="Built-in and user suites.", no_args_is_help=True)
app.add_typer(suites_app, name="suites")


@suites_app.command("list")
def list_suites() -> None:
    """List the built-in suites."""
    from harness.suites import builtin_names, load_suite

    for name in builtin_names():
        suite = load_suite(name)
        sizes = ", ".join(f"{k} {len(v)}" for k, v in suite.rows.items())
        metrics = ", ".join(m.name for m in suite.config.metrics)
        typer.echo(f"{name:<14} {suite.kind:<16} {sizes:<34} {metrics}")


@suites_app.command("validate")
def validate(paths: list[str] = typer.Argument(..., help="Suite YAML files (or built-in names).")) -> None:
    """Check suite files and their data without running a model."""
    from harness.suites import label_summary, load_suite

    for path in paths:
        suite = load_suite(path)
        sizes = ", ".join(f"{k} {len(v)}" for k, v in suite.rows.items())
        labels = "; ".join(label_summary(suite))
        typer.echo(f"ok  {suite.path}  ({suite.kind}; {sizes}; fingerprint {suite.fingerprint})"
                   + (f"  labels {labels}" if labels else ""))
