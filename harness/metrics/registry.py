"""The one registry of metrics: built-ins, plugin files and `harness.metrics` entry points.

A built-in is a line in `_BUILTINS` (imported on first use, so `import harness.metrics` stays
cheap). A plugin registers exactly like a built-in: `register_metric(MyMetric)`, or a name and a
factory `register_metric("name", factory)`, or defines a `Metric` subclass with a `name` in a file
given to `load_metric_plugin`. Installed packages may expose metrics through the entry-point group
`harness.metrics` (name = metric name, object = a Metric subclass or factory); `get_metric` loads
them on demand.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import inspect
import json
import sys
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Any

from harness.errors import HarnessError
from harness.metrics.base import Metric, conventional_higher_is_better
from harness.plugins import entry_point_map, import_target, load_entry_point, refuse_clash

MetricFactory = Callable[..., Metric]
ENTRY_POINT_GROUP = "harness.metrics"

_BUILTINS: dict[str, str] = {
    "accuracy": "harness.metrics.labels:Accuracy",
    "f1": "harness.metrics.labels:F1",
    "precision": "harness.metrics.labels:Precision",
    "recall": "harness.metrics.labels:Recall",
    "prf": "harness.metrics.labels:PRF",
    "exact_match": "harness.metrics.text:ExactMatch",
    "bleu": "harness.metrics.bleu:Bleu",
    "chrf": "harness.metrics.chrf:Chrf",
    "rouge": "harness.metrics.rouge:Rouge",
    "judge": "harness.judges.metric:JudgeMetric",  # a model as grader: docs/judges.md
}
_REGISTRY: dict[str, MetricFactory] = {}
_PLUGINS: dict[Path, list[str]] = {}
_RECORDING: list[str] | None = None  # names registered while a plugin file is being imported


def builtin_metrics() -> list[str]:
    return sorted(_BUILTINS)


def register_metric(target: str | type[Metric], factory: MetricFactory | None = None, *, replace: bool = False) -> Any:
    """Register a metric; usable as `register_metric(Cls)`, `register_metric("n", f)` or a decorator.

    `@register_metric` on a class uses its `name`; `@register_metric("n")` on a class or factory
    uses "n". A name already taken (a built-in included) needs `replace=True`.
    """
    if isinstance(target, str):
        if factory is None:
            return lambda f: _register(target, f, replace) or f
        _register(target, factory, replace)
        return factory
    if inspect.isclass(target) and issubclass(target, Metric):
        if not target.name:
            raise HarnessError(f"metric class {target.__name__} has no `name`; set name = '...' on the class")
        _register(target.name, target, replace)
        return target
    raise HarnessError(f"register_metric needs a Metric subclass or a name and a factory, got {target!r}")


def _register(name: str, factory: MetricFactory, replace: bool) -> None:
    if not callable(factory):
        raise HarnessError(f"metric '{name}': the factory must be callable, got {factory!r}")
    refuse_clash("metric", name, name in _BUILTINS or name in _REGISTRY, _REGISTRY.get(name), factory, replace)
    _REGISTRY[name] = factory
    if _RECORDING is not None:
        _RECORDING.append(name)


def _entry_points() -> dict[str, EntryPoint]:
    return entry_point_map(ENTRY_POINT_GROUP, lambda **kw: entry_points(**kw))  # this module's name, replaceable


def list_metrics() -> list[str]:
    """Every metric name `get_metric` accepts (entry points listed without being imported)."""
    return sorted(set(_BUILTINS) | set(_REGISTRY) | set(_entry_points()))


def metric_factory(name: str) -> MetricFactory:
    if name.startswith("evaluate:"):
        from harness.metrics.evaluate_hub import evaluate_factory

        return evaluate_factory(name)
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in _BUILTINS:
        _REGISTRY[name] = import_target(_BUILTINS[name])
        return _REGISTRY[name]
    ep = _entry_points().get(name)
    if ep is not None:
        loaded = load_entry_point("metric", name, ep)
        _register(name, loaded, replace=False)
        return loaded
    close = difflib.get_close_matches(name, list_metrics(), n=3, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise HarnessError(
        f"unknown metric '{name}'; {hint}known metrics: {', '.join(list_metrics())} "
        "(load your own with load_metric_plugin)"
    )


def get_metric(name: str, **options: Any) -> Metric:
    """A configured metric; an unknown name or option raises HarnessError saying what exists."""
    factory = metric_factory(name)
    if not (inspect.isclass(factory) and issubclass(factory, Metric)):
        try:
            inspect.signature(factory).bind(**options)
        except TypeError as err:
            raise HarnessError(f"metric '{name}': {err}; check the option names") from None
        except ValueError:
            pass  # no signature to check (a builtin callable)
    metric = factory(**options)
    if not isinstance(metric, Metric):
        raise HarnessError(f"metric '{name}': its factory returned {type(metric).__name__}, not a Metric")
    return metric


def metric_higher_is_better(name: str | None, score: str, options: dict[str, Any] | str | None = None) -> bool:
    """Whether a larger `score` of metric `name` (with `options`: a dict or its JSON) is better.

    The metric's own `Metric.higher_is_better`; where no metric is named, or it cannot be built here
    (a plugin not loaded, an evaluate module offline), the conventional direction of the score's and
    the metric's names (ter, loss, perplexity, latency_s are lower-is-better).
    """
    if name:
        try:
            given = json.loads(options or "{}") if not isinstance(options, dict) else options
            return get_metric(name, **given).higher_is_better(score)
        except (HarnessError, ValueError, TypeError):  # cannot be built here: by name
            pass
    bare = (name or "").removeprefix("evaluate:")
    return conventional_higher_is_better(score) and conventional_higher_is_better(bare)


def load_metric_plugin(path: str | Path) -> list[str]:
    """Import a Python file that registers metrics; returns the names it registered.

    The file may call `register_metric` or just define `Metric` subclasses with a `name`
    (those are registered for it). Loading the same file again returns the same names.
    """
    global _RECORDING
    file = Path(path).expanduser().resolve()
    if file in _PLUGINS:
        return list(_PLUGINS[file])
    if not file.is_file():
        raise HarnessError(f"metric plugin {path}: no such file")
    if file.suffix != ".py":
        raise HarnessError(f"metric plugin {path}: expected a .py file")
    digest = hashlib.sha1(str(file).encode()).hexdigest()[:12]
    module_name = f"harness_metric_plugin_{file.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    _RECORDING = names = []
    try:
        spec.loader.exec_module(module)
        for obj in list(vars(module).values()):
            registered = any(_REGISTRY.get(n) is obj for n in names)
            if _is_plugin_class(obj, module_name) and not registered:
                register_metric(obj)
    except HarnessError:
        sys.modules.pop(module_name, None)
        raise
    except Exception as err:
        sys.modules.pop(module_name, None)
        raise HarnessError(f"metric plugin {path}: failed to import: {type(err).__name__}: {err}") from err
    finally:
        _RECORDING = None
    if not names:
        raise HarnessError(
            f"metric plugin {path}: registered no metric; define a Metric subclass with a name "
            "or call register_metric(...)"
        )
    _PLUGINS[file] = sorted(set(names))
    return list(_PLUGINS[file])


def _is_plugin_class(obj: Any, module_name: str) -> bool:
    """A concrete Metric subclass with a name, defined in the plugin file itself."""
    return (
        inspect.isclass(obj)
        and issubclass(obj, Metric)
        and obj.__module__ == module_name
        and bool(obj.name)
        and not inspect.isabstract(obj)
    )
