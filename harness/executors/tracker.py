"""What the driver is told about tasks while they run: a small Ray actor (on the driver's node) that every task
tells when it starts, how far it is and when it ends. A task Ray ran again (its worker or node died, Ray
resubmitted it) starts twice: that is how retries are counted. It imports nothing heavy, so its worker
process starts fast."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Attempts:
    """Per task label: the nodes (ip, node id) it started on, in order; how many times it ended; its last
    progress (done, total)."""

    starts: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    ends: dict[str, int] = field(default_factory=dict)
    progress: dict[str, tuple[int, int]] = field(default_factory=dict)

    def started(self, label: str, ip: str, node_id: str) -> None:
        self.starts.setdefault(label, []).append((ip, node_id))
        self.progress.pop(label, None)

    def progressed(self, label: str, done: int, total: int) -> None:
        self.progress[label] = (done, total)

    def ended(self, label: str) -> None:
        self.ends[label] = self.ends.get(label, 0) + 1

    def snapshot(self) -> Attempts:
        return Attempts(dict(self.starts), dict(self.ends), dict(self.progress))


@dataclass(frozen=True)
class State:
    """The tasks as the driver shows them."""

    done: int
    running: list[tuple[str, str, str]]  # (label, "ip node-id", progress text)
    queued: int
    retried: int

    def note(self) -> str:
        """`done 3 · running 2 (llama / base / cls on 127.0.0.1 1a2b3c4d 8/20; ...) · queued 1 · retried 1`."""
        where = "; ".join(f"{label} on {node}{' ' + prog if prog else ''}" for label, node, prog in self.running)
        running = f"running {len(self.running)}" + (f" ({where})" if where else "")
        return f"done {self.done} · {running} · queued {self.queued} · retried {self.retried}"


def state(seen: Attempts, pending: set[str], done: int, alive: set[str]) -> State:
    """Running: pending tasks that started more often than they ended, on a node still alive. Retried: tasks
    that started more than once, or whose last start was on a node that died before they ended (Ray has
    resubmitted them, they wait to start again)."""
    running, retried = [], 0
    for label, starts in seen.starts.items():
        unfinished = len(starts) > seen.ends.get(label, 0)
        lost = unfinished and starts[-1][1] not in alive
        retried += len(starts) > 1 or lost
        if label in pending and unfinished and not lost:
            ip, node_id = starts[-1]
            done_n, total = seen.progress.get(label, (0, 0))
            running.append((label, f"{ip} {node_id[:8]}", f"{done_n}/{total}" if total else ""))
    return State(done, sorted(running), max(0, len(pending) - len(running)), retried)
