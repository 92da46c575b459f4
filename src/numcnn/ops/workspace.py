"""Buffers that outlive a kernel call, reused from step to step so that no step page-faults on them.

The forward's im2col columns are kept until the backward (megabytes per conv layer). Fresh
allocations of that size are mapped from the operating system and zero-filled page by page on
every step; reusing them costs nothing. :class:`Workspace` keeps the buffers it handed out and
lends one again only once **no array views it any more**: a buffer is lent as a view, every array
derived from that view holds a reference to the buffer, so the buffer's reference count tells
whether anything still uses it. A buffer can therefore never back two live arrays, however long
a caller keeps its view (the autograd graph keeps forward columns until backward).

Scratch that lives within one call is left to NumPy's allocator, which hands the block just freed
to the next request while it is still in cache (pooling it as well measured 15 % slower on a
LeNet-5 step). But glibc maps blocks above its mmap threshold (128 KiB at start) with fresh pages
each time, and raises that threshold only when a program frees such a block. A program that
frees large arrays (loading a dataset does) gets that for free; one whose large, long-lived
buffers all live in this pool might not, and would page-fault on every activation (about 900
faults per LeNet-5 step on two threads, 1,600 on one). So :func:`prime_heap` frees one transient block of :data:`HEAP_PRIMER_BYTES`
before the kernels' first allocation: glibc's own rule then serves such blocks from its heap, as
in any program that has freed a large array. No allocator setting is changed.

Buffers are keyed by shape and dtype. The pool keeps at most ``capacity_bytes`` (default
:data:`DEFAULT_CAPACITY_BYTES`, or ``NUMCNN_WORKSPACE_MB`` in MiB); past that, new buffers are
plain allocations and the least recently used free buffers make room. :func:`release` (or
``Workspace.clear``) frees everything not in use.
"""
from __future__ import annotations

import os
import sys
import threading
from collections import OrderedDict

import numpy as np

DEFAULT_CAPACITY_BYTES = 256 * 2**20

#: Size of the block freed once (glibc raises its mmap threshold to a freed block's size, up to
#: 32 MiB on 64-bit systems; 16 MiB covers the activations of a LeNet step at batch 1024).
HEAP_PRIMER_BYTES = 16 * 2**20



def _references(owners: list, i: int) -> int:
    """Reference count of ``owners[i]``, read the same way for every buffer."""
    return sys.getrefcount(owners[i])


# the count of a buffer that only the pool's list holds, measured through the same call (how many
# references the call itself adds differs between Python versions)
_FREE = _references([np.empty(0)], 0)


def _capacity_from_env() -> int:
    value = os.environ.get("NUMCNN_WORKSPACE_MB")
    if not value:
        return DEFAULT_CAPACITY_BYTES
    try:
        mib = float(value)
    except ValueError:
        raise ValueError(f"NUMCNN_WORKSPACE_MB must be a number of MiB >= 0, got {value!r}") from None
    if not mib >= 0:
        raise ValueError(f"NUMCNN_WORKSPACE_MB must be a number of MiB >= 0, got {value!r}")
    return int(mib * 2**20)


class Workspace:
    """A pool of reusable arrays with NumPy's ``empty``/``zeros`` interface."""

    def __init__(self, capacity_bytes: int | None = None):
        self.capacity_bytes = _capacity_from_env() if capacity_bytes is None else capacity_bytes
        self._buffers: OrderedDict[tuple, list[np.ndarray]] = OrderedDict()  # LRU order of keys
        self._held_bytes = 0
        self._lock = threading.Lock()

    @property
    def held_bytes(self) -> int:
        """Bytes of all buffers the pool keeps, lent or free."""
        return self._held_bytes

    def empty(self, shape, dtype=np.float64) -> np.ndarray:
        """An uninitialized array of ``shape`` and ``dtype``, a view of a pooled buffer when the
        pool has a free one (or room for a new one)."""
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(int(n) for n in shape)
        dtype = np.dtype(dtype)
        key = (shape, dtype.str)
        with self._lock:
            owners = self._buffers.get(key)
            if owners is not None:
                self._buffers.move_to_end(key)
                for i in range(len(owners)):
                    if _references(owners, i) == _FREE:                # no array views it
                        return owners[i][...]
            prime_heap()
            owner = np.empty(shape, dtype)
            if not self._make_room(owner.nbytes):
                return owner                                           # too big: not pooled
            self._buffers.setdefault(key, []).append(owner)
            self._held_bytes += owner.nbytes
            return owner[...]

    def zeros(self, shape, dtype=np.float64) -> np.ndarray:
        """:meth:`empty` filled with zeros."""
        out = self.empty(shape, dtype)
        out.fill(0)
        return out

    def clear(self) -> None:
        """Drop every buffer no array uses any more (lent ones stay with their users)."""
        with self._lock:
            self._evict(self._held_bytes)

    def _make_room(self, nbytes: int) -> bool:
        """Evict free buffers, least recently used keys first, until ``nbytes`` more fit."""
        if nbytes > self.capacity_bytes:
            return False
        excess = self._held_bytes + nbytes - self.capacity_bytes
        if excess > 0:
            self._evict(excess)
        return self._held_bytes + nbytes <= self.capacity_bytes

    def _evict(self, nbytes: int) -> None:
        """Drop free buffers, least recently used keys first, until ``nbytes`` are freed."""
        freed = 0
        for key in list(self._buffers):
            owners = self._buffers[key]
            i = 0
            while i < len(owners) and freed < nbytes:
                if _references(owners, i) == _FREE:
                    freed += owners[i].nbytes
                    self._held_bytes -= owners[i].nbytes
                    del owners[i]
                else:
                    i += 1
            if not owners:
                del self._buffers[key]
            if freed >= nbytes:
                return


_heap_primed = False


def prime_heap() -> None:
    """Free one transient block of :data:`HEAP_PRIMER_BYTES`, once per process (see the module
    docstring): glibc then serves blocks up to that size from its heap instead of mapping fresh
    pages for each. The kernels call this before their first allocation."""
    global _heap_primed
    if not _heap_primed:
        _heap_primed = True
        np.empty(HEAP_PRIMER_BYTES, np.uint8)                          # allocated and freed


#: The pool the kernels use.
workspace = Workspace()


def release() -> None:
    """Free the kernels' pooled buffers that no array uses (``numcnn.ops.release_workspace``)."""
    workspace.clear()
