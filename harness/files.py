"""Reading the user's input files with one-line errors: a missing path, a directory, bytes that are not UTF-8."""

from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError


def require_file(path: Path, what: str = "file", hint: str = "check the path") -> Path:
    """`path` if it is a regular file; otherwise a HarnessError that says what is there instead."""
    if path.is_dir():
        raise HarnessError(f"{path}: is a directory, not a {what}; give the path of the {what} itself")
    if not path.exists():
        raise HarnessError(f"{path}: {what} not found; {hint}")
    if not path.is_file():
        raise HarnessError(f"{path}: not a regular file; give a {what}")
    return path


def decode_utf8(data: bytes, path: Path) -> str:
    """Bytes as text; the first byte that is not UTF-8 is named by line and column."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise HarnessError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x} at column {column}); "
                           "save the file as UTF-8") from None


def read_text(path: Path, what: str = "file", hint: str = "check the path") -> str:
    """A UTF-8 text file (a leading byte-order mark is dropped)."""
    require_file(path, what, hint)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise HarnessError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    return decode_utf8(data, path).removeprefix("\ufeff")
