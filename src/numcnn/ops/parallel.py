"""Share the kernels' work among the CPU cores: batch blocks on threads.

NumPy runs an element-wise copy or add on one core while BLAS uses all of them, so on a small
machine the column gather and the scatter-add, not the GEMMs, set the pace. These loops move
memory and release the GIL, so plain threads run them in parallel: :func:`over_batch` cuts the
batch into one contiguous block per thread (never one sample at a time) and every block writes
its own rows of the output, so no two threads touch the same cell. A block may also run its
own per-sample GEMMs (:func:`gemm_splittable`): BLAS is then held to one thread meanwhile
(:func:`blas_on_one_thread`), so each core multiplies the columns it has just gathered.

The threads only pay off when BLAS lets go of the cores between calls. OpenBLAS's worker
threads spin for about 2^28 cycles (~0.1 s) after each GEMM unless ``OPENBLAS_THREAD_TIMEOUT``
was set before NumPy loaded; ``import numcnn`` sets it to 4 when it runs before NumPy is
imported. So the thread count defaults to the cores this process may use when that variable
holds a short spin (at most 2^24 cycles), and to 1 otherwise. ``OPENBLAS_NUM_THREADS`` or
``OMP_NUM_THREADS``, where set, cap it (one thread per MPI rank stays one);
``NUMCNN_NUM_THREADS`` or :func:`set_num_threads` choose it outright (1 turns the threads
off). Small arrays run on the calling thread alone, where waking another core would cost more
than it saves.
"""
from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise

import numpy as np

#: Blocks per thread in a parallel region; threads pull blocks until none is left.
BLOCKS_PER_THREAD = 1

#: Below this many elements a loop stays on the calling thread (waking an idle core costs tens
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
        blas_spins_briefly = int(os.environ.get("OPENBLAS_THREAD_TIMEOUT", "")) <= 24
    except ValueError:
        blas_spins_briefly = False
    if not blas_spins_briefly:
        return 1
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
    """True on a thread that is running one block of :func:`over_batch` (loops nest serially)."""
    return getattr(_in_region, "active", False)


def batch_blocks(n: int, parts: int) -> list[slice]:
    """``parts`` contiguous, nearly equal slices covering ``range(n)`` (none empty)."""
    parts = max(1, min(parts, n))
    bounds = [n * i // parts for i in range(parts + 1)]
    return [slice(a, b) for a, b in pairwise(bounds)]


def over_batch(fn, n: int, elements: int, calls_blas: bool = False) -> None:
    """Run ``fn(block)`` for blocks of the batch ``range(n)``, in parallel when worth it.

    ``fn`` must only write output rows of its own block. ``elements`` is the work size that
    decides whether threads pay off. The calling thread does one block itself. ``calls_blas``:
    ``fn`` runs GEMMs, so BLAS is held to one thread per block meanwhile (the caller checked
    :func:`gemm_splittable`).
    """
    threads = get_num_threads()
    if threads == 1 or n < 2 or elements < MIN_PARALLEL_ELEMENTS or in_parallel_region():
        fn(slice(0, n))
        return
    _over_blocks(fn, batch_blocks(n, BLOCKS_PER_THREAD * threads), calls_blas)


def sum_over_batch(fn, n: int, elements: int, calls_blas: bool = False) -> np.ndarray:
    """``Σ_block fn(block)`` over blocks of ``range(n)``, the blocks run as in :func:`over_batch`;
    the partial sums are added in block order, so the result does not depend on timing."""
    threads = get_num_threads()
    if threads == 1 or n < 2 or elements < MIN_PARALLEL_ELEMENTS or in_parallel_region():
        return fn(slice(0, n))
    blocks = batch_blocks(n, BLOCKS_PER_THREAD * threads)
    partial: dict[int, np.ndarray] = {}

    def run(block):
        partial[block.start] = fn(block)

    _over_blocks(run, blocks, calls_blas)
    return _ordered_sum([partial[block.start] for block in blocks])


def _ordered_sum(parts: list[np.ndarray]) -> np.ndarray:
    total = parts[0].copy()
    for part in parts[1:]:
        total += part
    return total


def _over_blocks(fn, blocks: list[slice], calls_blas: bool = False) -> None:
    """``fn(block)`` for every block, on the calling thread and the pool's workers, each
    pulling the next block until none is left."""
    if len(blocks) == 1 or in_parallel_region():
        for block in blocks:
            fn(block)
        return
    if calls_blas:
        with blas_on_one_thread():
            _over_blocks(fn, blocks)
        return
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


# --- BLAS inside the threads -------------------------------------------------------------------

#: OpenBLAS runs a GEMM with m·n·k at most this on one thread (65536 · GEMM_MULTITHREAD_THRESHOLD).
BLAS_SINGLE_THREAD_MNK = 65536 * 4

_blas_controller = None  # threadpoolctl.ThreadpoolController, False when unavailable


def _blas_limiter():
    global _blas_controller
    if _blas_controller is None:
        try:
            from threadpoolctl import ThreadpoolController

            controller = ThreadpoolController()
            _blas_controller = controller if controller.select(user_api="blas") else False
        except ImportError:
            _blas_controller = False
    return _blas_controller


def can_pin_blas() -> bool:
    """Can BLAS be held to one thread while the kernels' threads call it (threadpoolctl)?"""
    return bool(_blas_limiter())


@contextlib.contextmanager
def blas_on_one_thread():
    """Hold BLAS to one thread, so that each kernel thread runs its own GEMMs on its own core
    instead of several threads fighting over BLAS's workers. Needs threadpoolctl; without it
    this does nothing, and :func:`gemm_splittable` only lets GEMMs that BLAS keeps on one core
    into a parallel region."""
    controller = _blas_limiter()
    if not controller:
        yield
        return
    limits = controller.limit(limits=1, user_api="blas")
    try:
        yield
    finally:
        limits.restore_original_limits()


def gemm_splittable(mnk: int) -> bool:
    """May batch blocks run per-sample GEMMs of ``mnk`` multiply-adds on several threads?

    Yes when there are threads and either BLAS can be held to one thread in the meantime, or
    the GEMM is small enough that BLAS keeps it on one core anyway (a GEMM BLAS threads itself,
    called from two threads at once, measured slower than called once)."""
    return get_num_threads() > 1 and (mnk <= BLAS_SINGLE_THREAD_MNK or can_pin_blas())


def _block_of(a: np.ndarray, block: slice, batch: tuple) -> np.ndarray:
    """The rows of ``block`` of an operand whose batch axes broadcast against ``batch`` (an
    operand with fewer batch axes, like a shared weight, or size 1 there, is used whole)."""
    return a[block] if a.ndim - 2 == len(batch) and a.shape[0] == batch[0] else a


def matmul(a: np.ndarray, b: np.ndarray, sum_batch: bool = False,
           out: np.ndarray | None = None) -> np.ndarray:
    """``np.matmul(a, b)`` (summed over the leading batch axis when ``sum_batch``), with the
    batch split among the threads when :func:`gemm_splittable` (LeNet-size layers are 64
    products of a few hundred thousand multiply-adds each); otherwise BLAS gets the whole
    batch and threads each product itself."""
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    work = m * k * n * int(np.prod(batch))
    serial = (not batch or batch[0] < 2 or not gemm_splittable(m * k * n)
              or work < 4 * MIN_PARALLEL_ELEMENTS or in_parallel_region())
    if sum_batch:
        if serial:
            return np.matmul(a, b).sum(axis=0)
        return sum_over_batch(
            lambda block: np.matmul(_block_of(a, block, batch), _block_of(b, block, batch)).sum(
                axis=0), batch[0], work, calls_blas=True)
    if serial:
        return np.matmul(a, b, out=out)
    if out is None:
        out = np.empty(batch + (m, n), dtype=np.result_type(a, b))

    def product(block):
        np.matmul(_block_of(a, block, batch), _block_of(b, block, batch), out=out[block])

    _over_blocks(product, batch_blocks(batch[0], BLOCKS_PER_THREAD * get_num_threads()),
                 calls_blas=True)
    return out
