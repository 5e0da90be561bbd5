"""The C library's allocator while predicting: large blocks in their own memory maps, freed memory handed back.

glibc serves a block below its mmap threshold from its heap and keeps it there when it is freed; the
threshold rises (up to 32 MiB) each time a larger mapped block is freed, so after the first few
passes nearly every tensor of a 135M model comes from the heap. A prefill pass interleaves blocks
that live on (each part's keys and values) with ones freed at once (hidden states, the MLP's
states), and the running batch's cache is copied into a new buffer as rows join and leave: the
holes left between the blocks still alive are too small for the next ones, so the heap grows. On
100 long documents it held 0.4-0.6 GB that no tensor used (bench/RESULTS.md).

`large_blocks_mapped()` sets the threshold to MAPPED_BYTES for the block: every block that large the
heap cannot serve from its free space gets its own memory map, given back to the system the moment it
is freed. Prefill passes (harness.predict.greedy) and packing or unpacking the weights
(harness.predict.linears) run in it. Decoding does not: a pass allocates its logits afresh at every
step, and fresh maps are page-faulted and zeroed by the kernel (for the whole of predicting, SAMSum
generation took 2.1x as long, bench/RESULTS.md). When it ends the threshold is left at AFTER_BYTES,
the largest the dynamic threshold reaches (glibc cannot go back to adjusting it), and where the environment sets
`MALLOC_MMAP_THRESHOLD_` that setting is kept and nothing changes. `release_freed_memory()` hands
the heap's freed pages back (`malloc_trim`). Without glibc (musl, macOS) both do nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

M_MMAP_THRESHOLD = -3  # mallopt's parameter (malloc.h)
MAPPED_BYTES = 1 << 20  # blocks this large or larger get their own memory map while predicting
AFTER_BYTES = 32 << 20  # glibc's largest dynamic threshold on 64-bit systems (DEFAULT_MMAP_THRESHOLD_MAX)
ENVIRONMENT = "MALLOC_MMAP_THRESHOLD_"


@contextmanager
def large_blocks_mapped() -> Iterator[bool]:
    """Within the block, glibc maps every block of MAPPED_BYTES or more on its own; yields whether it does."""
    mallopt = _libc_function("mallopt")
    if mallopt is None or os.environ.get(ENVIRONMENT):
        yield False
        return
    _depth[0] += 1
    mallopt(M_MMAP_THRESHOLD, MAPPED_BYTES)
    try:
        yield True
    finally:
        _depth[0] -= 1
        if not _depth[0]:  # the outermost block (a judge's predictions run inside a run's) sets it back
            mallopt(M_MMAP_THRESHOLD, AFTER_BYTES)


_depth = [0]


def release_freed_memory() -> None:
    """Give the memory the process has freed back to the system (glibc's `malloc_trim`), where there is glibc.

    glibc keeps freed blocks for reuse; after predictions (a key-value cache, a layer's weights repacked,
    harness.predict.linears) it can keep a gigabyte that no tensor holds. Resident memory is what the
    budget takes as held, and what a machine runs out of, so predicting hands it back when it ends and
    after packing. Elsewhere (another C library, another system) this does nothing."""
    trim = _libc_function("malloc_trim")
    if trim is not None:
        trim(0)


@functools.lru_cache(maxsize=4)
def _libc_function(name: str) -> Any:
    library = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(library), name) if library else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        return None
