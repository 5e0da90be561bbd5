"""Group commit on a DuckDB file: small writes that many threads of one process make at once, committed together.

A store file takes one transaction at a time (harness/store/filelock.py), and each costs a turn (a thread
handing the file on) and a commit (a WAL write and fsync), which cost more than a grade's three small
statements. `grouped` runs the calls that queue meanwhile in one transaction instead. Only for transaction
bodies that may run again and that touch nothing but the connection (they already do: `retrying` reruns
them on a lock error).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import duckdb

from harness.store.connection import retrying

T = TypeVar("T")

GROUP_MAX = 64  # calls committed together at most (grouped)


@dataclass(frozen=True)
class Together:
    """How calls of one kind run as one: `many(con, [arg of each call])` gives their results in order, as if
    each call's own fn had run one after another (set-based SQL: a few statements for the whole group)."""

    many: Callable[[duckdb.DuckDBPyConnection, list], list]
    arg: object


class _Call:
    """One thread's call of `grouped`: its function, and what came of it (set by whichever thread served it)."""

    def __init__(self, fn: Callable[[duckdb.DuckDBPyConnection], object], together: Together | None):
        self.fn = fn
        self.together = together
        self.wake = threading.Event()  # served, or handed the lead
        self.lead = False
        self.result: object = None
        self.error: BaseException | None = None
        self.served = False

    def outcome(self):
        if self.error is not None:
            raise self.error
        return self.result


class _Group:
    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.pending: list[_Call] = []
        self.leading = False


_groups: dict[str, _Group] = {}
_groups_guard = threading.Lock()


def grouped(fn: Callable[[duckdb.DuckDBPyConnection], T], path: Path, timeout_s: float | None = None, *,
            create: bool = True, together: Together | None = None) -> T:
    """retrying(fn, ...), committed in one transaction with the calls other threads of this process make
    meanwhile (group commit): one thread leads, runs every waiting call's fn in turn on one connection, and
    commits once; the others sleep until it is done. Each fn sees the writes of the ones before it, as if they
    ran one after another. A fn that raises gets its error back alone: the others run again without it.
    For small writes that many threads make at once (grades): one commit (a WAL fsync) and one turn per
    group instead of per call. With `together`, neighbouring calls of the same `many` run as one `many` call;
    should it raise, every call of the group runs its own fn instead (which finds the one that fails)."""
    group = _group(Path(path))
    call = _Call(fn, together)
    with group.guard:
        group.pending.append(call)
        lead = not group.leading
        group.leading = True
    if not lead:
        call.wake.wait()
        if not call.lead:
            return call.outcome()
    _lead(group, call, Path(path), timeout_s, create)
    return call.outcome()


def _group(path: Path) -> _Group:
    key = str(path.resolve())
    with _groups_guard:
        return _groups.setdefault(key, _Group())


class _Lead:
    """The lead of one group, handed on once: to the first call still waiting, or given up (none waits)."""

    def __init__(self, group: _Group):
        self.group = group
        self.handed = False

    def hand_on(self) -> None:
        if self.handed:
            return
        self.handed = True
        with self.group.guard:
            if self.group.pending:
                self.group.pending[0].lead = True
                self.group.pending[0].wake.set()
            else:
                self.group.leading = False


def _lead(group: _Group, own: _Call, path: Path, timeout_s: float | None, create: bool) -> None:
    """Serve the waiting calls (own first). The lead goes on as soon as their fns have run, before the
    commit, so that the next leader already queues for the store and this process keeps it (filelock)."""
    with group.guard:
        waiting = [c for c in group.pending if c is not own]
        batch = [own, *waiting[:GROUP_MAX - 1]]
        group.pending = waiting[GROUP_MAX - 1:]
    lead = _Lead(group)
    try:
        _serve(batch, path, timeout_s, create, lead)
    except BaseException as exc:  # e.g. KeyboardInterrupt in the leader: nobody waits for ever
        for call in batch:
            if not call.served:
                call.error, call.served = exc, True
        raise
    finally:
        for call in batch[1:]:
            call.wake.set()
        lead.hand_on()


def _serve(batch: list[_Call], path: Path, timeout_s: float | None, create: bool, lead: _Lead) -> None:
    """Run the calls' fns in one transaction; a fn that raises gets the error, the rest are served again."""
    alone = False  # after a `many` raised: each call's own fn
    while batch:
        failed: list[_Call] = []
        try:
            results = retrying(partial(_run_calls, batch, failed, lead, alone), path, timeout_s, create=create)
        except Exception as exc:
            if failed and failed[0] is _MANY_FAILED:
                alone = True
                continue
            if not failed:  # the turn, the file or the commit: every call shares it
                for call in batch:
                    call.error, call.served = exc, True
                return
            failed[0].error, failed[0].served = exc, True
            batch = [call for call in batch if call is not failed[0]]
            continue
        for call, result in zip(batch, results, strict=True):
            call.result, call.served = result, True
        return


_MANY_FAILED = _Call(lambda con: None, None)  # marks a failed `many`


def _run_calls(batch: list[_Call], failed: list[_Call], lead: _Lead, alone: bool,
               con: duckdb.DuckDBPyConnection) -> list:
    failed.clear()  # a retried attempt starts again
    results: list = []
    start = 0
    while start < len(batch):
        first = batch[start]
        end = start + 1
        if first.together is not None and not alone:
            while end < len(batch) and batch[end].together is not None and \
                    batch[end].together.many is first.together.many:
                end += 1
            try:
                found = first.together.many(con, [c.together.arg for c in batch[start:end]])
                if len(found) != end - start:
                    raise ValueError(f"{first.together.many.__name__} gave {len(found)} results for {end - start}")
                results.extend(found)
            except Exception:
                failed.append(_MANY_FAILED)
                raise
        else:
            try:
                results.append(first.fn(con))
            except Exception:
                failed.append(first)
                raise
        start = end
    lead.hand_on()
    return results


def _forget_groups_after_fork() -> None:
    """A forked child has none of the parent's threads: no leader of theirs will serve it."""
    global _groups_guard
    _groups.clear()
    _groups_guard = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_groups_after_fork)
