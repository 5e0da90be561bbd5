"""Items as Ray tasks: base evaluations independent, each `lora` evaluation waiting on its adapter's training.
The driver (this process) keeps the store: `run_graph` hands each result to `sink` as it arrives, and records
an item whose task failed past its retries as failed with the reason; Ctrl-C cancels this run's tasks."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.config import ExecutorConfig
from harness.executors import Evaluated, Trained, require_ray
from harness.executors.local import WorkContext, evaluate_unit, train_unit
from harness.kinds import Variant
from harness.progress import Reporter


@dataclass(frozen=True)
class Task:
    """One task of the graph: a training (variant None) or an evaluation."""

    kind: Literal["train", "evaluate"]
    candidate: str
    suite: str
    variant: Variant | None = None

    @property
    def label(self) -> str:
        if self.kind == "train":
            return f"train LoRA {self.candidate} / {self.suite}"
        return f"{self.candidate} / {self.variant} / {self.suite}"


@dataclass
class Sink:
    """What the driver does with each result (the runner writes the store here)."""

    trained: Callable[[Trained], None]
    evaluated: Callable[[Evaluated], None]
    failed: Callable[[Task, str], None]


@dataclass
class _Graph:
    pending: dict[Any, Task] = field(default_factory=dict)  # ObjectRef -> its task
    done: int = 0


def _node() -> str:
    import ray

    context = ray.get_runtime_context()
    return f"{ray.util.get_node_ip_address()} {context.get_node_id()[:8]}"


def _train(ctx: WorkContext, candidate: str, suite: str) -> tuple[Trained, str]:
    """A training task: its result and the node it ran on."""
    return train_unit(ctx, candidate, suite), _node()


def _evaluate(ctx: WorkContext, candidate: str, variant: Variant, suite: str,
              trained: tuple[Trained, str] | None) -> tuple[Evaluated, str]:
    """An evaluation task (a lora one gets its training task's result): its result and the node it ran on."""
    return evaluate_unit(ctx, candidate, variant, suite, trained[0] if trained else None), _node()


def _remote(fn: Callable, options: dict) -> Any:
    import ray

    return ray.remote(fn).options(**options)


def task_options(executor: ExecutorConfig) -> dict:
    """Ray's options for each task: the resources one item asks for and how often a lost worker is retried."""
    import ray

    gpus = executor.gpus_per_item
    if gpus == "auto":
        gpus = 1 if ray.cluster_resources().get("GPU", 0) >= 1 else 0
    return {"num_cpus": executor.cpus_per_item, "num_gpus": gpus, "max_retries": executor.max_retries,
            "retry_exceptions": False}


def connect(executor: ExecutorConfig) -> bool:
    """Join (or start) the cluster; True if this call started the connection (and so should end it)."""
    require_ray()
    import ray

    if ray.is_initialized():
        return False
    ray.init(address=executor.address, logging_level="WARNING", log_to_driver=False)
    return True


def run_graph(ctx: WorkContext, executor: ExecutorConfig, base_items: list[Task], lora_items: list[Task],
              ready: dict[tuple[str, str], Trained], sink: Sink, reporter: Reporter) -> None:
    """Submit every task, then hand results to `sink` as they arrive. `ready`: adapters already trained
    (candidate, suite) -> their files, so those lora items need no training."""
    import ray

    started = connect(executor)
    graph = _Graph()
    try:
        _submit(ctx, executor, base_items, lora_items, ready, graph)
        _collect(graph, sink, reporter)
    except BaseException:  # Ctrl-C or an error in the driver: this run's tasks are cancelled
        for ref in graph.pending:
            try:
                ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - a task that already ended cannot be cancelled
                pass
        raise
    finally:
        if started:
            ray.shutdown()


def _submit(ctx: WorkContext, executor: ExecutorConfig, base_items: list[Task], lora_items: list[Task],
            ready: dict[tuple[str, str], Trained], graph: _Graph) -> None:
    import ray

    options = task_options(executor)
    train, evaluate = _remote(_train, options), _remote(_evaluate, options)
    ctx_ref = ray.put(ctx)
    adapters: dict[tuple[str, str], Any] = {k: ray.put((v, "driver")) for k, v in ready.items()}
    for item in base_items:  # first: their results come back while the adapters train
        graph.pending[evaluate.remote(ctx_ref, item.candidate, item.variant, item.suite, None)] = item
    for item in lora_items:
        key = (item.candidate, item.suite)
        if key not in adapters:
            adapters[key] = train.remote(ctx_ref, item.candidate, item.suite)
            graph.pending[adapters[key]] = Task("train", item.candidate, item.suite)
    for item in lora_items:
        trained = adapters[(item.candidate, item.suite)]
        graph.pending[evaluate.remote(ctx_ref, item.candidate, item.variant, item.suite, trained)] = item


def _collect(graph: _Graph, sink: Sink, reporter: Reporter) -> None:
    import ray

    total, tick = len(graph.pending), time.monotonic()
    reporter.item_started(f"ray: {total} tasks", total)
    while graph.pending:
        finished, _ = ray.wait(list(graph.pending), num_returns=1, timeout=1.0)
        for ref in finished:
            task = graph.pending.pop(ref)
            graph.done += 1
            _deliver(ref, task, sink, reporter)
        if finished or time.monotonic() - tick > 5:
            tick = time.monotonic()
            reporter.item_progress(graph.done, total, _state_note(graph))


def _deliver(ref: Any, task: Task, sink: Sink, reporter: Reporter) -> None:
    import ray

    try:
        result, node = ray.get(ref)
    except ray.exceptions.RayError as exc:  # the task failed past its retries (a lost node, worker, dependency)
        reason = f"the task failed on the cluster: {_first_line(exc)}"
        sink.failed(task, reason)
        reporter.item_finished(task.label, "failed", reason)
        return
    if isinstance(result, Trained):
        sink.trained(result)
        status, reason = ("done" if result.training else "skipped"), result.reason
    else:
        sink.evaluated(result)
        status, reason = result.item.status.replace("_", " "), result.item.reason
    reporter.item_finished(task.label, status, f"on {node} {reason or ''}".strip())


def _state_note(graph: _Graph) -> str:
    """Running and queued from the cluster's free resources (Ray tells a driver no more without its dashboard)."""
    import ray

    total, free = ray.cluster_resources().get("CPU", 0), ray.available_resources().get("CPU", 0)
    running = min(len(graph.pending), max(0, round(total - free)))
    return f"done {graph.done} · running {running} · queued {len(graph.pending) - running}"


def _first_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1].strip()[:300] if lines else type(exc).__name__
