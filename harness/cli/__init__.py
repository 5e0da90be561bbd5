"""The `harness` command: it parses arguments and calls the modules; it computes nothing itself."""

from __future__ import annotations

import sys

import typer
import typer.core

from harness.errors import HarnessError

COMMAND_ORDER = ("run", "demo", "runs", "show", "tag", "export", "score", "gate", "report", "suites", "data",
                 "review", "judge", "store")


class OrderedGroup(typer.core.TyperGroup):
    """Commands listed in one fixed order, whatever order their modules were imported in."""

    def list_commands(self, ctx) -> list[str]:
        rank = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(self.commands, key=lambda name: (rank.get(name, len(rank)), name))


app = typer.Typer(cls=OrderedGroup, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Compare candidate base models on your own data, fine-tune them with LoRA, "
                       "and gate regressions.")
_state = {"debug": False}


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks for errors.")) -> None:
    _state["debug"] = debug
    if not debug:
        _quiet_libraries()


def _quiet_libraries() -> None:
    """Library load reports and warnings drown the progress lines; --debug shows them."""
    import logging
    import os
    import warnings

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass
    warnings.filterwarnings("ignore")
    logging.getLogger("transformers").setLevel(logging.ERROR)


def _register() -> None:
    """Import every command group (each registers its commands on `app`)."""
    from harness.cli import (  # noqa: F401
        data_commands,
        gate_commands,
        judge_commands,
        report_commands,
        review_commands,
        run_commands,
        score_commands,
        store_commands,
        suite_commands,
    )


def main() -> None:
    _register()
    try:
        code = app(standalone_mode=False)  # non-standalone click returns a typer.Exit's code
    except HarnessError as exc:
        if _state["debug"]:
            raise
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as exc:  # click usage errors arrive here in non-standalone mode
        import click

        # typer >= 0.26 vendors its own click: its usage errors are not click.ClickException
        usage_errors = (click.ClickException, getattr(typer, "TyperException", click.ClickException))
        if isinstance(exc, usage_errors) and hasattr(exc, "show"):
            exc.show()
            sys.exit(2)
        raise
    sys.exit(code if isinstance(code, int) else 0)
