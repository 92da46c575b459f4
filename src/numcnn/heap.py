"""Keep freed large buffers in the process heap (glibc only), for training and benchmarks.

Every conv layer allocates im2col columns and gradients of tens of megabytes per step. By
default glibc hands such blocks back to the operating system when they are freed and maps fresh,
zeroed pages for the next step, paying a page fault per 4 KiB on every step. Raising the mmap and
trim thresholds keeps the memory in the heap, so the next step reuses it; the process keeps its
peak footprint instead of shrinking between steps. The ``numcnn`` command calls this once.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(threshold: int = 1 << 30) -> bool:
    """Ask glibc to serve blocks below ``threshold`` bytes from the heap and never trim it.

    Returns True when the setting took effect (False on other platforms or C libraries).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(
        mallopt(_M_TRIM_THRESHOLD, 2 * threshold - 1))
