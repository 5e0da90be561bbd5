"""Items as Ray tasks: base evaluations independent, each `lora` evaluation waiting on its adapter's training.
The driver (this process) keeps the store: `run_graph` hands each result to `sink` as it arrives, and records
an item whose task failed past its retries as failed with the reason; Ctrl-C cancels this run's tasks. Tasks
tell a small actor (`harness.executors.tracker`) when they start, how far they are and when they end: the
progress line shows the tasks running (on which node, how far), done, queued and retried."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from harness.config import ExecutorConfig
from harness.executors import Evaluated, Trained, require_ray
from harness.executors.local import WorkContext, evaluate_unit, train_unit
from harness.executors.tracker import Attempts, state
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
    tracker: Any = None  # the Attempts actor (None: it could not start; running is then estimated)


def _node() -> str:
    import ray

    context = ray.get_runtime_context()
    return f"{ray.util.get_node_ip_address()} {context.get_node_id()[:8]}"


def tell_started(tracker: Any, label: str) -> None:
    """From inside a task: it starts, on this node (a second start of a label is Ray's retry)."""
    import ray

    if tracker is not None:
        tracker.started.remote(label, ray.util.get_node_ip_address(), ray.get_runtime_context().get_node_id())


def tell_ended(tracker: Any, label: str) -> None:
    if tracker is not None:
        tracker.ended.remote(label)


def _train(ctx: WorkContext, candidate: str, suite: str, tracker: Any = None) -> tuple[Trained, str]:
    """A training task: its result and the node it ran on."""
    label = Task("train", candidate, suite).label
    tell_started(tracker, label)
    progress = (lambda s, n, _loss: tracker.progressed.remote(label, s, n)) if tracker is not None else None
    try:
        return train_unit(ctx, candidate, suite, progress), _node()
    finally:
        tell_ended(tracker, label)


def _evaluate(ctx: WorkContext, candidate: str, variant: Variant, suite: str,
              trained: tuple[Trained, str] | None, tracker: Any = None) -> tuple[Evaluated, str]:
    """An evaluation task (a lora one gets its training task's result): its result and the node it ran on."""
    label = Task("evaluate", candidate, suite, variant).label
    tell_started(tracker, label)
    progress = (lambda d, n: tracker.progressed.remote(label, d, n)) if tracker is not None else None
    try:
        return evaluate_unit(ctx, candidate, variant, suite, trained[0] if trained else None, progress), _node()
    finally:
        tell_ended(tracker, label)


def start_tracker() -> Any:
    """The Attempts actor, pinned to this driver's node (it lives as long as the driver); None if it cannot
    start (the progress line then estimates running from free CPUs and counts no retries)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    try:
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        return ray.remote(Attempts).options(num_cpus=0, scheduling_strategy=here, max_restarts=0).remote()
    except Exception:  # noqa: BLE001 - progress detail is not worth failing a run for
        return None


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
    graph = _Graph(tracker=start_tracker())
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
        if graph.tracker is not None:
            try:
                ray.kill(graph.tracker)
            except Exception:  # noqa: BLE001 - an actor already gone (with its node or the cluster)
                pass
        if started:
            ray.shutdown()


def _submit(ctx: WorkContext, executor: ExecutorConfig, base_items: list[Task], lora_items: list[Task],
            ready: dict[tuple[str, str], Trained], graph: _Graph) -> None:
    import ray

    options = task_options(executor)
    train, evaluate = _remote(_train, options), _remote(_evaluate, options)
    ctx_ref = ray.put(ctx)
    adapters: dict[tuple[str, str], Any] = {k: ray.put((v, "driver")) for k, v in ready.items()}
    tracker = graph.tracker
    for item in base_items:  # first: their results come back while the adapters train
        graph.pending[evaluate.remote(ctx_ref, item.candidate, item.variant, item.suite, None, tracker)] = item
    for item in lora_items:
        key = (item.candidate, item.suite)
        if key not in adapters:
            adapters[key] = train.remote(ctx_ref, item.candidate, item.suite, tracker)
            graph.pending[adapters[key]] = Task("train", item.candidate, item.suite)
    for item in lora_items:
        trained = adapters[(item.candidate, item.suite)]
        graph.pending[evaluate.remote(ctx_ref, item.candidate, item.variant, item.suite, trained, tracker)] = item


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
    """Running (where, how far), done, queued and retried, from what the tasks told the tracker; without it,
    running and queued from the cluster's free CPUs (a driver is told no more without Ray's dashboard)."""
    import ray

    pending = {task.label for task in graph.pending.values()}
    if graph.tracker is not None:
        try:
            seen = ray.get(graph.tracker.snapshot.remote(), timeout=10)
            alive = {n["NodeID"] for n in ray.nodes() if n.get("Alive")}
            return state(seen, pending, graph.done, alive).note()
        except ray.exceptions.RayError:  # the tracker is gone: fall back to the estimate below
            graph.tracker = None
    total, free = ray.cluster_resources().get("CPU", 0), ray.available_resources().get("CPU", 0)
    running = min(len(graph.pending), max(0, round(total - free)))
    return f"done {graph.done} · running {running} · queued {len(graph.pending) - running}"


def _first_line(exc: BaseException) -> str:
    lines = [ln for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1].strip()[:300] if lines else type(exc).__name__
