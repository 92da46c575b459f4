"""Batch blocks on threads, with BLAS held to one thread meanwhile.

NumPy runs an element-wise copy or add on one core, so on a small machine the column gather and
the scatter-add, not the GEMMs, set the pace. These loops move memory and release the GIL, so plain
threads run them in parallel: :func:`run_blocks` cuts the batch into one contiguous block per
thread and every block writes its own rows of the output, so no two threads touch the same cell.

A block also runs its own GEMMs. While blocks run, BLAS is held to one thread
(:func:`blas_on_one_thread`, through threadpoolctl), so each core multiplies the columns it has
just gathered and BLAS's own worker threads are never woken from inside numcnn: they would spin on
the cores after each GEMM (about 0.1 s for OpenBLAS) and slow the next region. This works whatever
the import order of NumPy and numcnn. Without threadpoolctl, blocks that call BLAS run on the
calling thread and let BLAS thread the GEMMs itself (``pip install numcnn[fast]``).

Thread count: the cores this process may use, capped by ``OPENBLAS_NUM_THREADS`` or
``OMP_NUM_THREADS`` where set (one thread per MPI rank stays one); ``NUMCNN_NUM_THREADS`` or
:func:`set_num_threads` choose it outright (1 turns the threads off). Small arrays stay on the
calling thread, where waking another core would cost more than it saves.
"""
from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numpy as np

#: Below this many elements a region stays on the calling thread (waking an idle core costs tens
#: of microseconds, more on a virtual machine).
MIN_PARALLEL_ELEMENTS = 1 << 18

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_num_threads: int | None = None
_in_region = threading.local()  # .active: this thread runs a block already; nest serially


def _default_threads() -> int:
    env = os.environ.get("NUMCNN_NUM_THREADS")
    if env:
        try:
            value = int(env)
        except ValueError:
            raise ValueError(f"NUMCNN_NUM_THREADS must be a positive int, got {env!r}") from None
        if value < 1:
            raise ValueError(f"NUMCNN_NUM_THREADS must be a positive int, got {env!r}")
        return value
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    # a BLAS thread count set for this process (e.g. one per MPI rank) caps ours as well
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        try:
            cores = min(cores, max(1, int(os.environ.get(name, ""))))
        except ValueError:
            pass
    return cores


def get_num_threads() -> int:
    """Threads the kernels use (see the module docstring for the default)."""
    global _num_threads
    if _num_threads is None:
        _num_threads = _default_threads()
    return _num_threads


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for the kernels (1: the calling thread only)."""
    global _num_threads, _executor
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}")
    with _lock:
        _num_threads = n
        if _executor is not None:
            _executor.shutdown(wait=True)
            _executor = None


def _pool(workers: int) -> ThreadPoolExecutor:
    global _executor
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(workers, thread_name_prefix="numcnn",
                                           initializer=_mark_worker)
        return _executor


def _mark_worker() -> None:
    _in_region.active = True


def in_parallel_region() -> bool:
    """True on a thread that is running one block of a region (regions nest serially)."""
    return getattr(_in_region, "active", False)


def batch_blocks(n: int, parts: int) -> list[slice]:
    """``parts`` contiguous, nearly equal slices covering ``range(n)`` (none empty)."""
    parts = max(1, min(parts, n))
    bounds = [n * i // parts for i in range(parts + 1)]
    return [slice(a, b) for a, b in pairwise(bounds)]


def _serial(n: int, elements: int, calls_blas: bool) -> bool:
    return (get_num_threads() == 1 or n < 2 or elements < MIN_PARALLEL_ELEMENTS
            or in_parallel_region() or (calls_blas and not can_pin_blas()))


def run_blocks(fn, batch: slice, elements: int, calls_blas: bool = False,
               parts: int | None = None) -> None:
    """Run ``fn(block)`` for contiguous blocks of the ``batch`` slice, in parallel when worth it.

    ``fn`` must only write output rows of its own block. ``elements`` is the work size that
    decides whether threads pay off; ``calls_blas``: ``fn`` runs GEMMs. ``parts`` fixes the
    number of blocks, as in :func:`sum_over_blocks`.
    """
    n = batch.stop - batch.start
    serial = _serial(n, elements, calls_blas)
    if parts is None and serial:
        with _blas_held(calls_blas):
            fn(batch)
        return
    blocks = _shifted_blocks(batch) if parts is None else _fixed_blocks(batch, parts)
    if serial:
        with _blas_held(calls_blas):
            for block in blocks:
                fn(block)
    else:
        _over_blocks(fn, blocks, calls_blas)


def sum_over_blocks(fn, batch: slice, elements: int, calls_blas: bool = False,
                    parts: int | None = None) -> np.ndarray:
    """``Σ_block fn(block)`` over blocks of the ``batch`` slice, run as in :func:`run_blocks`;
    the partial sums are added in block order, so the result does not depend on timing.

    ``parts`` fixes the number of blocks (default: one per thread, or the whole slice when it
    runs serially): the blocks, and so what each ``fn(block)`` computes, are then the same on
    any number of threads, and the threads take them as they come free."""
    n = batch.stop - batch.start
    if parts is None and _serial(n, elements, calls_blas):
        with _blas_held(calls_blas):
            return fn(batch)
    blocks = _shifted_blocks(batch) if parts is None else _fixed_blocks(batch, parts)
    partial: dict[int, np.ndarray] = {}

    def run(block):
        partial[block.start] = fn(block)

    run_blocks(run, batch, elements, calls_blas, len(blocks))
    total = partial[blocks[0].start].copy()
    for block in blocks[1:]:
        total += partial[block.start]
    return total


def _blas_held(calls_blas: bool):
    """BLAS on one thread for work that multiplies on the calling thread while numcnn has threads
    of its own: a product BLAS threads itself would wake its worker threads, which then spin for
    about 0.1 s on the cores numcnn's next region needs (measured: a 32->64 conv forward went from
    17 to 30 ms when its last one-sample chunk did so). With one kernel thread BLAS is left alone."""
    if calls_blas and get_num_threads() > 1 and not in_parallel_region():
        return blas_on_one_thread()
    return contextlib.nullcontext()


def _shifted_blocks(batch: slice) -> list[slice]:
    return _fixed_blocks(batch, get_num_threads())


def _fixed_blocks(batch: slice, parts: int) -> list[slice]:
    blocks = batch_blocks(batch.stop - batch.start, parts)
    return [slice(batch.start + b.start, batch.start + b.stop) for b in blocks]


def _over_blocks(fn, blocks: list[slice], calls_blas: bool) -> None:
    """``fn(block)`` for every block, on the calling thread and the pool's workers, each
    pulling the next block until none is left."""
    if calls_blas:
        with blas_on_one_thread():
            _run_on_threads(fn, blocks)
    else:
        _run_on_threads(fn, blocks)


def _run_on_threads(fn, blocks: list[slice]) -> None:
    threads = min(get_num_threads(), len(blocks))
    errstate = np.geterr()  # the caller's np.errstate is per thread: carry it to the workers
    pending = iter(blocks)
    lock = threading.Lock()
    all_done = threading.Condition(lock)
    running = [0]                # blocks started and not finished yet
    failures: list[BaseException] = []

    def drain():
        # every thread pulls the next block until none is left: a worker that wakes late
        # leaves its blocks to the others instead of making them wait
        while True:
            with lock:
                block = next(pending, None)
                if block is None:
                    return
                running[0] += 1
            try:
                fn(block)
            except Exception as err:  # noqa: BLE001 - raised again on the calling thread
                failures.append(err)
            finally:
                with lock:
                    running[0] -= 1
                    if running[0] == 0:
                        all_done.notify_all()

    def drain_in_callers_errstate():
        with np.errstate(**errstate):
            drain()

    workers = _pool(get_num_threads() - 1)
    for _ in range(threads - 1):
        workers.submit(drain_in_callers_errstate)
    _in_region.active = True
    try:
        drain()
    finally:
        _in_region.active = False
        # wait only for blocks a worker took; a worker that had not woken yet finds none
        with lock:
            while running[0]:
                all_done.wait()
    if failures:
        raise failures[0]


# --- BLAS held to one thread -------------------------------------------------------------------

_blas_libraries: list | None = None  # threadpoolctl's controllers of the loaded BLAS libraries


def _blas() -> list:
    global _blas_libraries
    if _blas_libraries is None:
        try:
            from threadpoolctl import ThreadpoolController

            _blas_libraries = list(ThreadpoolController().select(user_api="blas").lib_controllers)
        except ImportError:
            _blas_libraries = []
    return _blas_libraries


def can_pin_blas() -> bool:
    """Can BLAS be held to one thread while the kernels' threads call it (threadpoolctl)?"""
    return bool(_blas())


@contextlib.contextmanager
def blas_on_one_thread():
    """Hold BLAS to one thread, so that each kernel thread runs its own GEMMs on its own core
    instead of waking BLAS's workers. Does nothing without threadpoolctl."""
    libraries = _blas()
    before = [library.get_num_threads() for library in libraries]
    for library in libraries:
        library.set_num_threads(1)
    try:
        yield
    finally:
        for library, n in zip(libraries, before):
            library.set_num_threads(n)
