"""One way into the store: no module outside harness/store/ holds a connection or writes SQL.

The check reads the source of every module of harness/ and reports/ outside harness/store/: no `duckdb`
import or name, no `.execute(`, no `con.`, no `transaction(` and no SQL keywords. A store caller uses the
module functions per table family (harness/store/reviews.py, claims.py, report_queries.py, gates.py) or the
`Store` methods; `harness.store.is_busy(exc)` tells it whether a failure means a busy store.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from harness.records.review import Queue
from harness.store import is_busy

ROOT = Path(__file__).resolve().parents[1]
STORE = ROOT / "harness" / "store"
FORBIDDEN = {
    "a duckdb import or name": re.compile(r"^\s*(import|from)\s+duckdb\b|\bduckdb\.[A-Za-z_]", re.M),
    "a connection call": re.compile(r"\.execute\(|\bcon\.|\bcursor\(|transaction\("),
    "SQL text": re.compile(r"\bSELECT\s|\bINSERT\s|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b|\bCREATE\s+TABLE\b"),
}


def _outside_store() -> list[Path]:
    files = sorted((ROOT / "harness").rglob("*.py")) + sorted((ROOT / "reports").rglob("*.py"))
    return [p for p in files if STORE not in p.parents and ".venv" not in p.parts]


def offences(path: Path) -> list[str]:
    """'file:line: what' for every forbidden pattern in the file's source."""
    text = path.read_text(encoding="utf-8")
    found = []
    for what, pattern in FORBIDDEN.items():
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"{path.relative_to(ROOT)}:{line}: {what} ({match.group(0).strip()!r})")
    return found


def test_the_scan_sees_harness_and_reports():
    names = {p.relative_to(ROOT).as_posix() for p in _outside_store()}
    assert {"harness/review/queues.py", "harness/review/auth.py", "reports/auth_routes.py", "reports/ui.py"} <= names
    assert not any(n.startswith("harness/store/") for n in names)


def test_no_module_outside_the_store_holds_a_connection_or_sql():
    found = [o for path in _outside_store() for o in offences(path)]
    assert found == [], "move these into harness/store/ (a function there per table family):\n" + "\n".join(found)


def kinds(source: str) -> list[str]:
    return [what for what, pattern in FORBIDDEN.items() if pattern.search(source)]


@pytest.mark.parametrize("source", [
    "import duckdb\n", "from duckdb import Error\n", "except duckdb.Error:\n",
    "con.execute('x')\n", "rows = cur.execute(q)\n", "store.transaction(lambda c: c)\n",
    "q = 'SELECT * FROM runs'\n", "q = \"INSERT INTO tags VALUES (?)\"\n", "'UPDATE reviewers SET role = 1'\n",
    "'DELETE FROM review_sessions'\n", "'CREATE TABLE x (a INT)'\n",
])
def test_the_scan_catches_each_kind(source):
    assert kinds(source), source


@pytest.mark.parametrize("source", [
    'help="DuckDB file (default: ./harness.duckdb)."\n', 'PACKAGES = ("duckdb", "torch")\n',
    "icon.show()\n", "st.selectbox('Select a run')\n", "'Update the page'\n", "reviews.accounts(store)\n",
])
def test_the_scan_lets_prose_and_store_calls_pass(source):
    assert kinds(source) == [], source


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_store_imports_only_records_errors_and_itself():
    allowed = ("harness.store", "harness.records", "harness.errors", "harness.yamlfile", "harness.files")
    upward = {f"{p.name}: {name}" for p in STORE.glob("*.py") for name in _imports(p)
              if name.startswith("harness") and not name.startswith(allowed)}
    assert upward == set()


def test_the_rubric_record_sits_below_the_store():
    from harness.records.rubric import Rubric as Record
    from harness.review.rubrics import Rubric

    assert Rubric is Record
    assert Queue.__annotations__["rubric"] in ("Rubric", Record)


def test_is_busy_tells_a_held_store_from_other_errors():
    import duckdb

    assert is_busy(duckdb.IOException("Could not set lock on file: Conflicting lock is held"))
    assert is_busy(duckdb.TransactionException("TransactionContext Error: Conflict on update"))
    assert not is_busy(duckdb.CatalogException("Table with name nope does not exist"))
    assert not is_busy(ValueError("lock"))  # not a store error, whatever it says
