"""One user of a store file at a time, taken in turn, with the waiting shown.

DuckDB lets one process open a file read-write at a time, and a process that polls for it loses to busy
ones. So every transaction first takes, in order:

- a per-file thread lock inside the process (threads of one app queue here instead of colliding in DuckDB),
  handed on first come, first served (`TurnQueue`): a thread that lets go cannot take it straight back while
  others wait, so 30 reviewers of one app each wait about 30 turns, not some of them far longer;
- a blocking OS lock (`flock`) on the sidecar file `STORE.lock` next to the store, so that processes wait in
  the kernel and are woken when the holder lets go, instead of losing a polling race.

While more of its threads queue, a process keeps the file (and its open connection) for at most BATCH_S,
then lets go and leaves a PAUSE_S gap for a process blocked on the lock file: a busy app cannot starve a run.
A process that finds the file taken says so before it blocks, by touching the lock file (its mtime; the file
stays empty); a holder that sees no such touch since it took the file keeps it for its queued threads for up
to BATCH_ALONE_S instead, because reopening the store (DuckDB checkpoints on close) costs tens of
milliseconds each time. A waiter that cannot touch the file (no write access, a stale NFS attribute cache)
still gets its turn within BATCH_ALONE_S.

A `Wait` bounds the whole wait (math.inf: no bound, for a run's writes) and prints a line to stderr every
NOTE_EVERY_S seconds while it lasts. Without `fcntl` (Windows) or where the lock file cannot be opened (a
read-only folder), only the thread lock applies and DuckDB's own lock, with its retry, protects the file.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness.errors import HarnessError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

NOTE_EVERY_S = 10.0
BATCH_S = 0.25  # longest a process keeps the store for its queued threads while another may be waiting
BATCH_ALONE_S = 2.0  # ... while no other process has said it waits (a touch of the lock file)
PAUSE_S = 0.005  # the gap it then leaves before its next thread takes the lock again


def lock_path(store: Path) -> Path:
    """The sidecar lock file of a store: `harness.duckdb` -> `harness.duckdb.lock`."""
    return store.with_name(store.name + ".lock")


def note(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class Wait:
    """How long one caller may wait for the store (timeout_s, math.inf: for ever), noting it as it goes."""

    def __init__(self, path: Path, timeout_s: float):
        self.path = path
        self.timeout_s = timeout_s
        self.started = time.monotonic()
        self._next_note = self.started + NOTE_EVERY_S

    def remaining(self) -> float:
        return self.timeout_s - (time.monotonic() - self.started)

    def expired(self) -> bool:
        return self.remaining() <= 0

    def slice(self) -> float:
        """Seconds to block before looking at the clock again (never past the next note or the deadline)."""
        return max(0.0, min(NOTE_EVERY_S, self._next_note - time.monotonic(), self.remaining()))

    def tick(self, holder: str = "another process") -> None:
        now = time.monotonic()
        if now >= self._next_note:
            note(f"waiting for the store {self.path} (held by {holder}) for {now - self.started:.0f} s")
            self._next_note = now + NOTE_EVERY_S

    def timed_out(self) -> HarnessError:
        return HarnessError(f"{self.path}: the store stayed locked by another process for {self.timeout_s:.0f}s; "
                            "wait for it to finish or use another --db (HARNESS_DB_LOCK_TIMEOUT sets the wait)")


class TurnQueue:
    """A thread lock handed to its waiters in the order they came (threading.Lock is not: a thread that
    releases it and asks again at once usually wins it back, and a waiter may starve).

    `join()` takes the lock at once (None) or queues (an Event, set when the lock is handed to this waiter);
    `wait(ticket, s)` blocks up to s seconds for it; `leave(ticket)` gives up a place (passing the lock on if
    it had arrived meanwhile); `release()` hands the lock to the first waiter or frees it.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._held = False
        self._waiting: deque[threading.Event] = deque()

    def join(self) -> threading.Event | None:
        with self._guard:
            if not self._held:
                self._held = True
                return None
            ticket = threading.Event()
            self._waiting.append(ticket)
            return ticket

    @staticmethod
    def wait(ticket: threading.Event | None, timeout_s: float) -> bool:
        return ticket is None or ticket.wait(timeout_s)

    def leave(self, ticket: threading.Event | None) -> None:
        with self._guard:
            if ticket is not None and not ticket.is_set():
                self._waiting.remove(ticket)
                return
        self.release()  # the lock was this waiter's already

    def try_acquire(self) -> bool:
        with self._guard:
            if self._held:
                return False
            self._held = True
            return True

    def release(self) -> None:
        with self._guard:
            if self._waiting:
                self._waiting.popleft().set()  # handed on: it stays held
            else:
                self._held = False


class StoreLock:
    """The turn-taking of one store file in this process: a thread lock, then the OS lock on the sidecar file.

    The OS lock may be kept from one thread's transaction to the next while more threads of this process
    queue for the store (a batch), for at most BATCH_S (BATCH_ALONE_S while no other process touched the
    lock file to say it waits); then it is let go with a PAUSE_S gap, in which a process blocked on the
    lock file is woken and takes its turn. The connection layer keeps its open
    connection in `kept` while the OS lock is kept.
    """

    def __init__(self, store: Path):
        self.file = lock_path(store)
        self.kept: dict = {}
        self._threads = TurnQueue()
        self._guard = threading.Lock()
        self._owner: int | None = None
        self._queued = 0
        self._fd: int | None = None
        self._held = False
        self._since = 0.0
        self._stamp: tuple[int, int] | None = None

    @contextmanager
    def turn(self, wait: Wait) -> Iterator[bool]:
        """Hold the store for one transaction; yields False inside a transaction this thread already holds."""
        me = threading.get_ident()
        if self._owner == me:
            yield False
            return
        self._queue_for_turn(wait)
        self._owner = me
        done = False
        try:
            if not self._held:
                self._fd = _lock_file(self.file, wait)
                self._held, self._since, self._stamp = True, time.monotonic(), _stamp(self._fd)
            yield True
            done = True
        finally:
            try:
                if not (done and self._queued > 0 and self._may_keep()):
                    self._let_go()
            finally:
                self._owner = None
                self._threads.release()

    def _may_keep(self) -> bool:
        """Whether the file may be kept for the next queued thread: within BATCH_S, or within BATCH_ALONE_S
        while the lock file shows no other process waiting (unchanged since this process took it)."""
        held_for = time.monotonic() - self._since
        if held_for < BATCH_S:
            return True
        return held_for < BATCH_ALONE_S and self._stamp is not None and _stamp(self._fd) == self._stamp

    def _queue_for_turn(self, wait: Wait) -> None:
        with self._guard:
            self._queued += 1
        ticket = self._threads.join()
        try:
            while not self._threads.wait(ticket, wait.slice()):
                wait.tick("another thread or process")
                if wait.expired():
                    raise wait.timed_out()
        except BaseException:
            self._threads.leave(ticket)
            with self._guard:
                self._queued -= 1
            self._let_go_if_left()
            raise
        with self._guard:
            self._queued -= 1

    def _let_go_if_left(self) -> None:
        """A thread that gave up queueing: the file may have been kept for it; let go unless others still queue."""
        if self._threads.try_acquire():
            try:
                if self._held and self._queued == 0:
                    self._let_go()
            finally:
                self._threads.release()

    def _let_go(self) -> None:
        """Close what the connection layer kept, release the OS lock, and pause if a thread of this process
        would take it back at once, so that a process blocked on the lock file gets its turn first."""
        kept = self.kept.pop("connection", None)
        try:
            if kept is not None:
                kept.close()
        finally:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
            self._fd, self._held = None, False
        if self._queued > 0:
            time.sleep(PAUSE_S)


_locks: dict[str, StoreLock] = {}
_locks_guard = threading.Lock()
_inherited: list[dict[str, StoreLock]] = []


def store_lock(path: Path) -> StoreLock:
    resolved = path.resolve()
    with _locks_guard:
        found = _locks.get(str(resolved))
        if found is None:
            found = _locks[str(resolved)] = StoreLock(resolved)
        return found


def _forget_after_fork() -> None:
    """A forked child starts with no store held: the parent's connections and locks stay the parent's (kept
    referenced, never closed here, so that the child does not checkpoint or unlock the parent's file)."""
    global _locks, _locks_guard
    _inherited.append(_locks)
    _locks, _locks_guard = {}, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)


def _open_lock_file(path: Path) -> int | None:
    flags = os.O_CLOEXEC if hasattr(os, "O_CLOEXEC") else 0
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | flags, 0o666)
    except PermissionError:
        try:
            return os.open(path, os.O_RDONLY | flags)  # flock needs no write access
        except OSError:
            return None
    except OSError:
        return None


def _stamp(fd: int | None) -> tuple[int, int] | None:
    """The lock file's (mtime, ctime) in ns: a waiting process touches it (None: no lock file to look at)."""
    if fd is None:
        return None
    try:
        info = os.fstat(fd)
    except OSError:
        return None
    return info.st_mtime_ns, info.st_ctime_ns


def _say_waiting(fd: int) -> None:
    """Touch the lock file, so that its holder lets go within BATCH_S (StoreLock._may_keep)."""
    try:
        os.utime(fd)
    except OSError:
        pass  # no write access: the holder lets go within BATCH_ALONE_S all the same


def _lock_file(path: Path, wait: Wait) -> int | None:
    """The fd holding the OS lock on `path`, or None where no OS lock can be had (then DuckDB's lock rules)."""
    if fcntl is None:
        return None
    fd = _open_lock_file(path)
    if fd is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return fd
    except BlockingIOError:
        _say_waiting(fd)
    except OSError:  # e.g. no locks on this file system
        os.close(fd)
        return None
    helper = _Blocker(fd)
    helper.start()
    while not helper.got.wait(wait.slice()):
        wait.tick()
        if wait.expired() and helper.abandon():
            raise wait.timed_out()
    if helper.error is not None:
        os.close(fd)
        return None
    return fd


class _Blocker(threading.Thread):
    """Blocks in flock (woken by the kernel when the holder lets go) while the caller keeps the time."""

    def __init__(self, fd: int):
        super().__init__(daemon=True, name="harness-store-lock")
        self.fd = fd
        self.got = threading.Event()
        self.error: OSError | None = None
        self._abandoned = False
        self._guard = threading.Lock()

    def run(self) -> None:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except OSError as exc:
            self.error = exc
        with self._guard:
            self.got.set()
            if self._abandoned:  # the caller gave up: let go at once
                os.close(self.fd)

    def abandon(self) -> bool:
        """Give up waiting; False when the lock arrived meanwhile (then the caller has it after all)."""
        with self._guard:
            if self.got.is_set():
                return False
            self._abandoned = True
            return True
