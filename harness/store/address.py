"""Store addresses: a DuckDB file (the default) or a team store, `ducklake:postgres:KEY=VALUE ...`.

A team store keeps its catalog and its keyed tables in PostgreSQL and its bulk rows as Parquet files under a
data path (a local or NFS folder, or s3://... where DuckDB's httpfs reaches it). The data path is the
`data_path=` field of the address, else HARNESS_DATA_PATH (the CLI's `--data-path` sets it); a store that
exists already remembers its own.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError

PREFIX = "ducklake:postgres:"
_FIELD = re.compile(r"(\w+)=('(?:[^'\\]|\\.)*'|\S*)")
_PG_KEYS = {"host", "hostaddr", "port", "dbname", "user", "password", "passfile", "sslmode", "connect_timeout",
            "application_name", "options", "sslrootcert", "sslcert", "sslkey", "target_session_attrs"}
EXAMPLE = "ducklake:postgres:host=127.0.0.1 port=5432 dbname=harness user=harness data_path=/shared/harness-data"


@dataclass(frozen=True)
class TeamAddress:
    """A team store: PostgreSQL connection fields (libpq keywords) and the folder of its data files."""

    fields: tuple[tuple[str, str], ...]
    data_path: str | None

    @property
    def dsn(self) -> str:
        return " ".join(f"{key}={value}" for key, value in self.fields)

    def field(self, key: str) -> str | None:
        return dict(self.fields).get(key)

    def full(self) -> str:
        """The whole address, password and data path included: for HARNESS_DB of a child process, never shown."""
        return PREFIX + self.dsn + (f" data_path={self.data_path}" if self.data_path else "")

    def __str__(self) -> str:  # never shows a password
        shown = " ".join(f"{k}={'***' if k == 'password' else v}" for k, v in self.fields)
        return PREFIX + shown

    # a team store behaves like an existing path to callers that ask a file path (the review app, the gate)
    def exists(self) -> bool:
        return True

    def resolve(self) -> TeamAddress:
        return self

    @property
    def parent(self) -> Path:
        return Path.cwd()


def is_team(raw: str | os.PathLike) -> bool:
    return str(raw).startswith("ducklake:")


def parse(raw: str | os.PathLike, data_path: str | None = None) -> TeamAddress:
    """A team address; HarnessError naming the field to fix for anything else."""
    text = _unslash(str(raw))
    if not text.startswith(PREFIX):
        raise HarnessError(f"store address {text!r}: a team store address starts with {PREFIX!r} (the catalog in "
                           f"PostgreSQL), for example {EXAMPLE!r}; give a DuckDB file path or such an address")
    fields: list[tuple[str, str]] = []
    rest = text[len(PREFIX):].strip()
    for token in rest.split() if "'" not in rest else [m.group(0) for m in _FIELD.finditer(rest)]:
        key, sep, value = token.partition("=")
        if not sep or not value:
            raise HarnessError(f"store address {str(raw)!r}: {token!r} is not KEY=VALUE; write the PostgreSQL "
                               f"fields as host=... port=... dbname=... user=..., for example {EXAMPLE!r}")
        if key == "data_path":
            data_path = data_path or value
            continue
        if key not in _PG_KEYS:
            raise HarnessError(f"store address {str(raw)!r}: unknown field {key!r}; use PostgreSQL's fields ("
                               f"{', '.join(sorted(_PG_KEYS))}) and data_path")
        fields.append((key, value))
    if "dbname" not in dict(fields):
        raise HarnessError(f"store address {str(raw)!r} names no database; add dbname=NAME (an existing PostgreSQL "
                           f"database), for example {EXAMPLE!r}")
    return TeamAddress(tuple(fields), data_path or os.environ.get("HARNESS_DATA_PATH") or None)


def _unslash(text: str) -> str:
    """Undo what pathlib does to `s3://bucket` in an address that passed through a Path-typed option."""
    return re.sub(r"\b(s3|gs|gcs|r2|az|azure|abfss|https?|file):/(?!/)", r"\1://", text)
