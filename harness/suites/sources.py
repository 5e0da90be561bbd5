"""Where a suite reference leads: the registry of suite sources.

A reference is `SCHEME:REST` for a registered source, or a bare reference, looked up as today: a
file (relative to the experiment's folder, then as given), then a built-in name. The built-in
sources are `file:` and `builtin:`; a plug-in adds one with `register_suite_source("scheme", source)`
or an entry point in the group `harness.suite_sources` (name = scheme, object = the source).

A source is a callable `(reference, base) -> Path` (the whole reference, scheme included; `base` the
experiment's folder or None) that returns the suite's YAML file, which `load_suite` then loads and
validates as it does every suite. See docs/suites.md, "Suite sources".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.plugins import Registry

SuiteSource = Callable[[str, "Path | None"], Path]
ENTRY_POINT_GROUP = "harness.suite_sources"
BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
# two letters at least, so that a Windows drive ("C:\...") is never read as a scheme
SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9_.+-]+):")


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def _candidates(ref: str, base: Path | None) -> list[Path]:
    return ([base / ref] if base is not None else []) + [Path(ref)]


def file_source(ref: str, base: Path | None = None) -> Path:
    """`file:PATH`: a suite file, relative to the experiment's folder, then as given."""
    rest = ref.removeprefix("file:")
    candidates = _candidates(rest, base)
    for path in candidates:
        if path.is_file():
            return path
    _refuse_directory(ref, candidates)
    raise HarnessError(f"suite '{ref}': no such file ({rest})")


def builtin_source(ref: str, base: Path | None = None) -> Path:
    """`builtin:NAME`: a suite shipped in harness/suites/builtin/."""
    path = BUILTIN_DIR / f"{ref.removeprefix('builtin:')}.yaml"
    if not path.is_file():
        raise HarnessError(f"suite '{ref}': not a built-in suite; built-in suites: {', '.join(builtin_names())}")
    return path


def _adapt(scheme: str, source: Any) -> SuiteSource:
    if not callable(source):
        raise HarnessError(f"suite source '{scheme}': a source must be callable (reference, base) -> Path, "
                           f"got {source!r}")
    return source


_SOURCES: Registry[SuiteSource] = Registry("suite source", ENTRY_POINT_GROUP, {
    "builtin": "harness.suites.sources:builtin_source",
    "file": "harness.suites.sources:file_source",
}, _adapt)


def register_suite_source(scheme: str, source: Any = None, *, replace: bool = False) -> Any:
    """Register a source for references `SCHEME:...`; `@register_suite_source("scheme")` works as a decorator."""
    if not SCHEME.match(f"{scheme}:") or ":" in scheme:
        raise HarnessError(f"suite source '{scheme}': a scheme is two or more letters, digits or _.+- "
                           "starting with a letter")
    if source is None:
        return lambda f: _SOURCES.register(scheme, f, replace) and f
    _SOURCES.register(scheme, source, replace)
    return source


def suite_sources() -> list[str]:
    """Every scheme `find_suite` knows (entry points listed without being imported)."""
    return _SOURCES.names()


def find_suite(name_or_path: str, base: Path | None = None) -> Path:
    """The suite file a reference names: a registered source's, or a bare file or built-in name's."""
    match = SCHEME.match(name_or_path)
    if match:
        source = _SOURCES.get(match.group(1))
        if source is not None:
            return _from_source(match.group(1), source, name_or_path, base)
        if not any(path.exists() for path in _candidates(name_or_path, base)):
            known = ", ".join(f"{s}:" for s in suite_sources())
            raise HarnessError(f"suite '{name_or_path}': unknown suite source '{match.group(1)}:'; known sources: "
                               f"{known} (or a file path or a built-in name); install or register the source")
    return _bare(name_or_path, base)


def _bare(ref: str, base: Path | None) -> Path:
    candidates = [*_candidates(ref, base), BUILTIN_DIR / f"{ref}.yaml"]
    for path in candidates:
        if path.is_file():
            return path
    _refuse_directory(ref, candidates[:-1])
    raise HarnessError(f"suite '{ref}': not a built-in suite ({', '.join(builtin_names())}) nor a file")


def _refuse_directory(ref: str, candidates: list[Path]) -> None:
    for path in candidates:
        if path.is_dir():
            raise HarnessError(f"suite '{ref}': {path} is a directory, not a suite file; give the suite's YAML file")


def _from_source(scheme: str, source: SuiteSource, ref: str, base: Path | None) -> Path:
    try:
        found = source(ref, base)
    except HarnessError:
        raise
    except Exception as exc:  # noqa: BLE001 - a plug-in's failure is one line naming it, not our traceback
        raise HarnessError(f"suite '{ref}': suite source '{scheme}' failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(found, (str, Path)) or not Path(found).is_file():
        raise HarnessError(f"suite '{ref}': suite source '{scheme}' returned {found!r}, not a suite file; "
                           "a source returns the path of the suite's YAML file")
    return Path(found)
