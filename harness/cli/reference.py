"""docs/cli.md, generated from the commands' own help (as datasette and llm do): `python -m harness.cli.reference`
rewrites it, and tests/test_cli_reference.py fails when the file and the help differ."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

HEADER = """# Command reference

Generated from `harness --help` and each command's own `--help` by `python -m harness.cli.reference`;
a test checks that this file matches the commands, so it is never out of date.
"""


def _command_tree():
    from harness.cli import _register, app

    _register()
    return typer.main.get_command(app)


def _help_text(command, path: list[str]) -> str:
    context = command.context_class(command, info_name=" ".join(path), terminal_width=100, max_content_width=100)
    return command.get_help(context)


def _walk(command, path: list[str]) -> list[str]:
    level = "#" * min(len(path) + 1, 4)
    parts = [f"{level} `{' '.join(path)}`\n", "```\n" + _help_text(command, path).rstrip() + "\n```\n"]
    if hasattr(command, "list_commands"):  # a group (typer vendors its own click)
        for name in command.list_commands(command.context_class(command)):
            sub = command.get_command(command.context_class(command), name)
            if sub is not None and not sub.hidden:
                parts += _walk(sub, [*path, name])
    return parts


def render() -> str:
    """The Markdown of every command's help, in plain text (not the terminal's boxes)."""
    import typer.core

    plain, typer.core.HAS_RICH = typer.core.HAS_RICH, False
    try:
        return HEADER + "\n" + "\n".join(_walk(_command_tree(), ["harness"]))
    finally:
        typer.core.HAS_RICH = plain


def main() -> None:
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "docs" / "cli.md"
    target.write_text(render(), encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
