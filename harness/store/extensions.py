"""Loading DuckDB's ducklake and postgres extensions: from the PyPI wheel first, then DuckDB's install folder,
then INSTALL (which needs a network)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import duckdb

from harness.errors import HarnessError

# extension name -> the PyPI package (harness[team]) that carries its .duckdb_extension file
WHEELS = {"ducklake": "duckdb_extension_ducklake", "postgres_scanner": "duckdb_extension_postgres_scanner"}


def wheel_file(name: str) -> Path | None:
    """The .duckdb_extension file inside the installed wheel for this DuckDB version, if there is one."""
    spec = importlib.util.find_spec(WHEELS[name])
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        found = Path(folder) / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
        if found.is_file():
            return found
    return None


def load(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """Load one extension; returns where it came from ('wheel', 'installed', 'downloaded')."""
    errors = []
    found = wheel_file(name)
    if found is not None:
        try:
            con.execute(f"LOAD '{found}'")
            return "wheel"
        except duckdb.Error as exc:
            errors.append(f"{found}: {_first_line(exc)}")
    try:
        con.execute(f"LOAD {name}")
        return "installed"
    except duckdb.Error as exc:
        errors.append(f"install folder: {_first_line(exc)}")
    try:
        con.execute(f"INSTALL {name}")
        con.execute(f"LOAD {name}")
        return "downloaded"
    except duckdb.Error as exc:
        errors.append(f"INSTALL: {_first_line(exc)}")
    raise HarnessError(f"a team store needs DuckDB's {name} extension, which could not be loaded ("
                       f"{'; '.join(errors)}); install it with `pip install 'harness[team]'` (duckdb=="
                       f"{duckdb.__version__} and {WHEELS[name].replace('_', '-')} of the same version)")


def load_team(con: duckdb.DuckDBPyConnection) -> None:
    for name in WHEELS:
        load(con, name)


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
