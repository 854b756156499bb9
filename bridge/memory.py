"""Giving freed memory back to the system, for a daemon that runs for months.

glibc serves a large block (the seen index's arrays, a feed's body) with its own mapping and
unmaps it when freed, but only until the first such block is freed: its size then becomes the
threshold, and later blocks below it come from the heap, which shrinks only from its top. The
seen index is rebuilt whole at every merge, so each old copy's pages would stay with the
process. Fixed thresholds keep large blocks in their own mappings and trim the heap's free top.
"""

from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1  # glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
THRESHOLD = 128 * 1024  # glibc's own starting value, kept fixed


def return_freed_memory() -> bool:
    """Fix glibc's mmap and trim thresholds; False (nothing done) under another C library."""
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return False
        mallopt = ctypes.CDLL(None).mallopt
    except (ValueError, OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, THRESHOLD))
