"""Load YAML into pydantic models with errors that name the file, line and field."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from harness.errors import HarnessError
from harness.files import read_text

Model = TypeVar("Model", bound=BaseModel)


class FieldError(ValueError):
    """Raised by a model validator about a nested field: `loc` (relative to the model) gives its line."""

    def __init__(self, loc: tuple, message: str):
        super().__init__(message)
        self.loc = loc


def read_yaml(path: Path) -> tuple[Any, yaml.Node | None]:
    """Parse a YAML file, returning the data and its node tree (for line numbers)."""
    text = read_text(path)
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise HarnessError(yaml_problem(path, exc)) from None
    check_duplicate_keys(path, node)
    return data, node


def yaml_problem(path: Path, exc: yaml.YAMLError) -> str:
    """`file:line: malformed YAML: problem`, naming where an unclosed construct began when that is elsewhere."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if mark else str(path)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context, start = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and start is not None and (mark is None or start.line != mark.line):
        problem += f" ({context} at line {start.line + 1})"
    return f"{where}: malformed YAML: {problem}"


def check_duplicate_keys(path: Path, root: yaml.Node | None) -> None:
    """A key given twice in one mapping is an error (YAML loaders silently keep the last one)."""
    stack, seen_nodes, found = [root] if root is not None else [], set(), []
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[tuple[str, str], int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    line = key.start_mark.line + 1
                    if (key.tag, key.value) in first:
                        found.append((line, f"{path}:{line}: duplicate key '{key.value}' (first given at line "
                                            f"{first[key.tag, key.value]}); keep one of them"))
                    first.setdefault((key.tag, key.value), line)
                stack += [key, value]
        elif isinstance(node, yaml.SequenceNode):
            stack += node.value
    if found:
        raise HarnessError(min(found)[1])


def load_model(path: Path, model: type[Model], context: dict | None = None) -> Model:
    """Validate a YAML file against a pydantic model; the first problem becomes a HarnessError."""
    data, node = read_yaml(path)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else type(data).__name__
        raise HarnessError(f"{path}: expected a mapping at the top level, got {got}")
    try:
        return model.model_validate(data, context=context)
    except ValidationError as exc:
        raise HarnessError(describe_error(path, node, exc, model)) from None


def describe_error(path: Path, node: yaml.Node | None, exc: ValidationError, model: type[BaseModel]) -> str:
    errors = exc.errors()
    # a misspelt required key yields "missing" and "unknown key"; the unknown key (with its hint) is the useful one
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(err["loc"])
    raised = (err.get("ctx") or {}).get("error")
    if isinstance(raised, FieldError):  # a model-level check that knows which field it is about
        loc += raised.loc
    field = format_loc(loc)
    line = line_of(node, loc) if loc else None  # a whole-file problem has no line of its own
    where = f"{path}:{line}" if line else str(path)
    if err["type"] == "extra_forbidden":
        allowed = allowed_keys(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; allowed keys: {', '.join(sorted(allowed))}"
        return f"{where}: {field}: unknown key{hint}"
    if err["type"] == "missing":
        return f"{where}: {field}: required field is missing"
    msg = err["msg"].removeprefix("Value error, ")
    return f"{where}: {msg}" if isinstance(raised, FieldError) else f"{where}: {field}: {msg}"


def format_loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def line_of(node: yaml.Node | None, loc: tuple) -> int | None:
    """The 1-based line of the deepest node along `loc` that exists in the YAML tree."""
    return _walk(node, loc)[0]


def key_line(path: Path, loc: tuple) -> int | None:
    """The line of the key at `loc` in a YAML file (for problems found after loading); None if it is not there."""
    try:
        line, complete = _walk(yaml.compose(read_text(path)), loc)
    except (HarnessError, yaml.YAMLError):
        return None
    return line if complete else None


def _walk(node: yaml.Node | None, loc: tuple) -> tuple[int | None, bool]:
    """(line of the deepest node along `loc`, whether the whole of `loc` was found)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = [(k, v) for k, v in node.value if k.value == str(part)]
            if not match:
                return line, False
            key, node = match[-1]  # the loader keeps the last of repeated keys
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line, False
    return line, True


def allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the (nested) model at `loc`, for 'did you mean' hints."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = _model_in(field.annotation)
    return list(getattr(current, "model_fields", {}).keys())


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None
