"""The allocator while predicting: large blocks mapped on their own, freed memory handed back (glibc)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from harness.predict import allocator
from harness.predict.allocator import large_blocks_mapped, release_freed_memory
from harness.predict.memory import held_bytes

GLIBC = allocator._libc_function("mallinfo2") is not None


SEQUENCE = """
import ctypes, sys
import torch
from harness.predict import allocator
from harness.predict.allocator import large_blocks_mapped
class MallInfo(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]
info = allocator._libc_function("mallinfo2")
info.restype = MallInfo
def grows(mib):  # how much glibc's own-mapped blocks grow with a new tensor of `mib` MiB held
    before = info().hblkhd
    held = torch.ones(mib * 1024 * 1024 // 4)
    return (info().hblkhd - before) // 2**20, held
warm = torch.ones(6 * 1024 * 1024)
del warm  # a 24 MiB mapped block freed: the dynamic threshold rises to it
outside, a = grows(6)
with large_blocks_mapped():
    with large_blocks_mapped():  # nested: the outer block still maps when the inner one ends
        pass
    inside, b = grows(6)
    small, c = grows(0)
    before = info().hblkhd
    del b
    unmapped = (before - info().hblkhd) // 2**20
after, d = grows(8)
print(outside, inside, unmapped, after)
"""


@pytest.mark.skipif(not GLIBC, reason="no glibc mallinfo2 on this system")
def test_inside_the_block_large_blocks_are_mapped_on_their_own_and_unmapped_when_freed():
    """In a fresh process (a heap with no free space to serve from): a 6 MiB tensor comes from the heap
    before the block (the threshold raised by a freed 24 MiB block), is mapped on its own inside it, and is
    unmapped when freed; after the block an 8 MiB one comes from the heap again (under AFTER_BYTES)."""
    env = {k: v for k, v in os.environ.items() if k != allocator.ENVIRONMENT}
    out = subprocess.run([sys.executable, "-c", SEQUENCE], capture_output=True, text=True, env=env, check=True)
    outside, inside, unmapped, after = (int(x) for x in out.stdout.split())
    assert (outside, inside, unmapped, after) == (0, 6, 6, 0), out.stdout


def test_a_threshold_the_environment_sets_is_kept(monkeypatch):
    calls = []
    monkeypatch.setattr(allocator, "_libc_function", lambda name: lambda *args: calls.append((name, args)))
    monkeypatch.setenv(allocator.ENVIRONMENT, "65536")
    with large_blocks_mapped() as mapped:
        assert not mapped
    assert calls == []
    monkeypatch.delenv(allocator.ENVIRONMENT)
    with large_blocks_mapped() as mapped:
        assert mapped
    assert calls == [("mallopt", (allocator.M_MMAP_THRESHOLD, allocator.MAPPED_BYTES)),
                     ("mallopt", (allocator.M_MMAP_THRESHOLD, allocator.AFTER_BYTES))]


def test_without_glibc_nothing_changes(monkeypatch):
    monkeypatch.setattr(allocator, "_libc_function", lambda name: None)
    monkeypatch.delenv(allocator.ENVIRONMENT, raising=False)
    with large_blocks_mapped() as mapped:
        assert not mapped
    release_freed_memory()  # does nothing, raises nothing


@pytest.mark.skipif(allocator._libc_function("malloc_trim") is None, reason="no glibc malloc_trim on this system")
def test_freed_memory_the_allocator_kept_goes_back_to_the_system():
    """96 MiB of 64 KiB tensors (under glibc's mmap threshold: from its heap), all freed but the last, which
    pins the heap's top: glibc keeps the freed blocks resident until they are released."""
    drops = []
    for _ in range(3):
        blocks = [torch.ones(64 * 1024 // 4) for _ in range(1536)]
        del blocks[:-1]
        before = held_bytes("cpu")
        release_freed_memory()
        drops.append(before - held_bytes("cpu"))
        del blocks
        if drops[-1] >= 48 * 1024 * 1024:
            break
    assert drops[-1] >= 48 * 1024 * 1024, drops
