"""Freed memory goes back to the system (glibc), which a months-long daemon relies on."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PROBE = textwrap.dedent(
    """
    import sys
    from bridge.memory import return_freed_memory

    def rss():
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS"))

    def touched(size):
        block = bytearray(size)
        block[::4096] = b"\\x01" * len(range(0, size, 4096))
        return block

    if sys.argv[1] == "tuned":
        assert return_freed_memory()
    first = touched(8 << 20)
    del first  # glibc's first large free: it would raise its threshold to 8 MiB
    small = []
    before = rss()
    block = touched(4 << 20)
    small.append(bytearray(64))  # something allocated after it
    del block
    print(rss() - before)
    """
)

glibc = pytest.mark.skipif(not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"),
                           reason="the thresholds are glibc's")


def kept_after_free(mode: str) -> int:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run([sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    return int(done.stdout)


@glibc
def test_a_freed_large_block_leaves_the_process_once_the_thresholds_are_fixed() -> None:
    assert kept_after_free("plain") >= 3 << 20  # glibc's default: the 4 MiB stay in the heap
    assert kept_after_free("tuned") < 1 << 20

