"""What the three registries share (metrics, suite sources, model loaders): built-ins named lazily as
"module:attr", in-process registrations, and installed packages' entry points, found without importing them.

`Registry` holds one kind of plug-in. The metrics registry keeps its own tables (and its plugin
files) and uses the functions below, so a name clash, a broken entry point or an unknown name reads
the same in all three.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable, Iterable
from importlib.metadata import EntryPoint
from typing import Any, Generic, TypeVar

from harness.errors import HarnessError

T = TypeVar("T")
EntryPointFinder = Callable[..., Iterable[EntryPoint]]


def same_origin(a: Any, b: Any) -> bool:
    """The same definition registered again (a module imported twice) is not a clash."""
    if a is b:
        return True
    ids = [(getattr(x, "__module__", None), getattr(x, "__qualname__", None)) for x in (a, b)]
    return None not in ids[0] and ids[0] == ids[1]


def refuse_clash(what: str, name: str, taken: bool, existing: Any, new: Any, replace: bool) -> None:
    """A name already taken (a built-in included) needs replace=True, unless it is the same definition."""
    if taken and not replace and not same_origin(existing, new):
        raise HarnessError(f"{what} '{name}' is already registered; pick another name or pass replace=True")


def entry_point_map(group: str, finder: EntryPointFinder | None = None) -> dict[str, EntryPoint]:
    """The entry points of a group by name, none of them imported."""
    find = finder or importlib.metadata.entry_points  # looked up per call, so tests can replace it
    return {ep.name: ep for ep in find(group=group)}


def load_entry_point(what: str, name: str, ep: EntryPoint) -> Any:
    """An entry point's object; a broken plug-in package is a one-line error, not our traceback."""
    try:
        return ep.load()
    except Exception as err:  # noqa: BLE001 - a broken plugin package must not look like our bug
        raise HarnessError(f"{what} '{name}': entry point {ep.value!r} failed to load: {err}") from err


def import_target(target: str) -> Any:
    """The object a built-in's "module:attr" names."""
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)


class Registry(Generic[T]):
    """One kind of plug-in by name: built-ins ("module:attr", imported on first use), registrations,
    then the entry points of `group` (loaded, checked by `adapt` and cached on first use)."""

    def __init__(self, what: str, group: str, builtins: dict[str, str], adapt: Callable[[str, Any], T]) -> None:
        self.what, self.group, self.builtins, self.adapt = what, group, dict(builtins), adapt
        self.registered: dict[str, T] = {}
        self.origins: dict[str, Any] = {}  # what was registered, before `adapt`, to tell a re-registration

    def register(self, name: str, obj: Any, replace: bool = False) -> T:
        item = self.adapt(name, obj)
        taken = name in self.builtins or name in self.registered
        refuse_clash(self.what, name, taken, self.origins.get(name), obj, replace)
        self.registered[name], self.origins[name] = item, obj
        return item

    def names(self) -> list[str]:
        """Every name `get` accepts (entry points listed without being imported)."""
        return sorted(set(self.builtins) | set(self.registered) | set(entry_point_map(self.group)))

    def get(self, name: str) -> T | None:
        if name in self.registered:
            return self.registered[name]
        if name in self.builtins:
            self.registered[name] = self.adapt(name, import_target(self.builtins[name]))
            return self.registered[name]
        ep = entry_point_map(self.group).get(name)
        if ep is None:
            return None
        self.registered[name] = self.adapt(name, load_entry_point(self.what, name, ep))
        return self.registered[name]


def lazy_face(package: str, module: str, names: list[str]):
    """A package's `__getattr__` (PEP 562) that gives `names` of `module`, imported on first use: a family's
    package exposes its main module without importing the whole family when one submodule is imported."""
    import importlib

    def __getattr__(name: str):
        if name in names:
            return getattr(importlib.import_module(module), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
