"""Freed memory stays in the training process (glibc on Linux)."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from benchmark.training.memory import keep_freed_memory


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="mallopt is glibc's",
)
def test_a_large_block_is_served_from_the_heap_once_kept():
    """After `keep_freed_memory`, a 64 MB block comes from the heap (mallinfo2's arena grows)
    instead of a mapping of its own (hblks, which grows without it), and a second call
    changes nothing."""
    code = """
import ctypes
from benchmark.training.memory import keep_freed_memory
libc = ctypes.CDLL("libc.so.6")
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd",
        "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
assert keep_freed_memory() and keep_freed_memory()
before = libc.mallinfo2()
block = libc.malloc(64 << 20)
after = libc.mallinfo2()
print(after.hblks - before.hblks, after.arena - before.arena >= 64 << 20)
libc.free(block)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "True"]  # no new mapping; the heap grew to hold it


def test_it_is_harmless_where_there_is_no_glibc(monkeypatch):
    monkeypatch.setattr("benchmark.training.memory._done", False)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert keep_freed_memory() is False
