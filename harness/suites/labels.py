"""Labels as the data has them: booleans, integers and strings, matched to a suite's label set by value.

A suite's `labels` is a list of names (`[negative, positive]`) or a mapping from names to the values the
data holds (`{negative: false, positive: true}`). A data value matches the label whose value it equals,
type included: a boolean never matches a string nor a position. Where every label is a string, an
integer (or a string of digits that is no label) is read as a position in the list, as in SST-2's 0/1.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from harness.errors import HarnessError


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _typed(value: Any) -> Any:
    """Parquet and pandas give 1.0 for an integer column with gaps: a whole float is that integer."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def label_index(value: Any, names: list[str], where: str, field_name: str, values: list | None = None) -> int:
    """The position of a data value in the label set; outside it, a one-line error naming the row (`where`)."""
    values = list(names) if values is None else values
    value = _typed(value)
    for i, candidate in enumerate(values):
        if _same(value, candidate):
            return i
    all_strings = all(isinstance(v, str) for v in values)
    if all_strings and not isinstance(value, bool):
        if isinstance(value, int) and 0 <= value < len(values):
            return value
        if isinstance(value, str) and value.isdigit() and int(value) < len(values):
            return int(value)
    raise HarnessError(f"{where}: field '{field_name}': value {value!r} is outside the label set "
                       f"{_shown(names, values)}; {_advice(value, names, values)}")


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", str: "a string"}.get(type(value), type(value).__name__)


def _shown(names: list[str], values: list) -> str:
    if [str(v) for v in values] == names and all(isinstance(v, str) for v in values):
        return str(names)
    return "{" + ", ".join(f"{n}: {v!r}" for n, v in zip(names, values, strict=True)) + "}"


def _advice(value: Any, names: list[str], values: list) -> str:
    if isinstance(value, bool) and all(isinstance(v, str) for v in values):
        pairs = ", ".join(f"\"{n}\": {'true' if n.lower() in _TRUE else 'false'}" for n in names)
        return f"the data has booleans, the labels are names: map them, e.g. labels: {{{pairs}}}"
    if isinstance(value, str) and value.lower() in _YAML_BOOLEANS and any(isinstance(v, bool) for v in values):
        return "YAML reads unquoted yes/no/on/off as booleans: quote the labels, e.g. labels: [\"no\", \"yes\"]"
    return "fix the data, or 'labels' (a list of names, or {name: value} as the data has them)"


_TRUE = {"true", "yes", "y", "on", "1", "positive", "pos"}
_YAML_BOOLEANS = {"yes", "no", "on", "off", "y", "n", "true", "false"}


def label_counts(rows: list[dict], column: str, names: list[str], values: list, places: list[str]) -> Counter:
    """How many rows of a split carry each label name (a value outside the set is an error naming its row)."""
    counts: Counter = Counter({name: 0 for name in names})
    for row, where in zip(rows, places, strict=True):
        counts[names[label_index(row[column], names, where, column, values)]] += 1
    return counts

