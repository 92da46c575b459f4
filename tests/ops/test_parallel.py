"""The kernel threads (numcnn.ops.parallel) and the workspace give the same numbers as one thread
and as the reference loops, for every path the kernels can take, whatever the import order."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pool_checks import assert_avg_pool_matches_reference, assert_max_pool_matches_reference

from numcnn import reference as ref
from numcnn.ops import engine, parallel
from numcnn.ops.shapes import conv_geometry
from strategies import SEEDS, conv_configs, pool_configs

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


def all_threads_meet(parties: int):
    """A block function that returns only once ``parties`` threads run blocks at the same time
    (so it proves several threads ran), recording each block and thread."""
    barrier = threading.Barrier(parties, timeout=30)
    seen = {}

    def block(rows):
        seen[rows.start] = (rows, threading.get_ident(), np.geterr()["invalid"])
        barrier.wait()

    return block, seen


@pytest.fixture
def threads(monkeypatch):
    """Run every loop on 3 threads, however small (restored afterwards)."""
    monkeypatch.setattr(parallel, "MIN_PARALLEL_ELEMENTS", 0)
    before = parallel.get_num_threads()
    parallel.set_num_threads(3)
    yield 3
    parallel.set_num_threads(before)


@pytest.mark.parametrize("n, parts", [(1, 1), (1, 4), (2, 3), (7, 3), (64, 2), (5, 5), (3, 8)])
def test_batch_blocks_cover_the_batch_once(n, parts):
    blocks = parallel.batch_blocks(n, parts)
    assert len(blocks) == min(n, parts)
    assert [i for b in blocks for i in range(b.start, b.stop)] == list(range(n))
    assert all(b.stop > b.start for b in blocks)
    sizes = [b.stop - b.start for b in blocks]
    assert max(sizes) - min(sizes) <= 1


def test_run_blocks_uses_every_thread_and_covers_the_batch(threads):
    block, seen = all_threads_meet(threads)
    parallel.run_blocks(block, slice(4, 13), elements=10)
    rows = sorted((r.start, r.stop) for r, _, _ in seen.values())
    assert [i for a, b in rows for i in range(a, b)] == list(range(4, 13))
    assert len({ident for _, ident, _ in seen.values()}) == threads


def test_run_blocks_stays_on_the_calling_thread_for_small_work(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_PARALLEL_ELEMENTS", 1000)
    before = parallel.get_num_threads()
    parallel.set_num_threads(2)
    try:
        calls = []
        parallel.run_blocks(lambda block: calls.append((block, threading.get_ident())),
                            slice(0, 8), 999)
    finally:
        parallel.set_num_threads(before)
    assert calls == [(slice(0, 8), threading.get_ident())]


def test_run_blocks_passes_errors_on(threads):
    def fail(block):
        if block.start > 0:
            raise RuntimeError(f"block {block.start}")

    with pytest.raises(RuntimeError, match="block"):
        parallel.run_blocks(fail, slice(0, 6), elements=6)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_rejects_bad_values(bad):
    with pytest.raises(ValueError, match=r"set_num_threads: n must be a positive int, got"):
        parallel.set_num_threads(bad)


@pytest.mark.parametrize("env, timeout, expected", [
    ("3", None, 3), ("1", "4", 1), (None, None, None), (None, "28", None), (None, "junk", None),
])
def test_default_thread_count(monkeypatch, env, timeout, expected):
    """NUMCNN_NUM_THREADS wins; otherwise the cores, whatever OpenBLAS's spin setting."""
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    for name, value in (("NUMCNN_NUM_THREADS", env), ("OPENBLAS_THREAD_TIMEOUT", timeout)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    cores = len(os.sched_getaffinity(0))
    assert parallel._default_threads() == (cores if expected is None else expected)


def test_default_thread_count_follows_a_blas_thread_cap(monkeypatch):
    for name in ("NUMCNN_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    assert parallel._default_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")                         # e.g. one per MPI rank
    assert parallel._default_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "junk")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    assert parallel._default_threads() == 1


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_bad_thread_variable_is_named(monkeypatch, value):
    monkeypatch.setenv("NUMCNN_NUM_THREADS", value)
    with pytest.raises(ValueError, match=rf"NUMCNN_NUM_THREADS must be a positive int, got '{value}'"):
        parallel._default_threads()


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cfg=conv_configs(max_batch=5), seed=SEEDS)
def test_threaded_kernels_match_the_reference_loops(threads, cfg, seed):
    """Forward and both gradients with every region split over 3 threads, with the default
    column budget and with one so small that each thread's block is its own chunk."""
    x, w, b, gy = cfg.arrays(seed)
    y_ref = ref.conv2d(x, w, b, **cfg.kwargs)
    gx_ref, gw_ref, _ = ref.conv2d_backward(x, w, gy, **cfg.kwargs)
    geo = conv_geometry(x.shape, w.shape, **cfg.kwargs)
    for budget in (engine.COLS_BUDGET_BYTES, 1):
        old = engine.COLS_BUDGET_BYTES
        engine.COLS_BUDGET_BYTES = budget
        try:
            y = engine.conv_forward(x, w, b, geo)[0]
            gx = engine.conv_grad_input(gy, w, geo, "gemm")
            gw = engine.conv_grad_weight(x, gy, geo, method="gemm")
        finally:
            engine.COLS_BUDGET_BYTES = old
        np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(gx, gx_ref, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(gw, gw_ref, rtol=1e-10, atol=1e-10)


@settings(max_examples=40)
@given(cfg=conv_configs(max_batch=4), seed=SEEDS)
def test_threads_change_no_bit(cfg, seed):
    """Each output cell is summed in the same order whatever the thread count."""
    x, w, b, gy = cfg.arrays(seed, np.float32)
    geo = conv_geometry(x.shape, w.shape, **cfg.kwargs)
    old_min, before = parallel.MIN_PARALLEL_ELEMENTS, parallel.get_num_threads()
    parallel.set_num_threads(1)
    try:
        one = (engine.conv_forward(x, w, b, geo)[0], engine.conv_grad_input(gy, w, geo, "gemm"))
        parallel.MIN_PARALLEL_ELEMENTS = 0
        parallel.set_num_threads(2)
        two = (engine.conv_forward(x, w, b, geo)[0], engine.conv_grad_input(gy, w, geo, "gemm"))
    finally:
        parallel.MIN_PARALLEL_ELEMENTS = old_min
        parallel.set_num_threads(before)
    for a, c in zip(one, two):
        np.testing.assert_array_equal(a, c)


def test_workers_follow_the_callers_errstate(threads):
    """np.errstate is per thread: a setting of the caller holds in every worker too."""
    block, seen = all_threads_meet(threads)
    with np.errstate(invalid="ignore"):
        parallel.run_blocks(block, slice(0, 9), 0)
    assert len({ident for _, ident, _ in seen.values()}) == threads
    assert {mode for _, _, mode in seen.values()} == {"ignore"}


def test_sum_over_blocks_adds_every_block_once(threads):
    values = np.arange(10.0) ** 2
    total = parallel.sum_over_blocks(lambda block: np.array([values[block].sum()]),
                                     slice(0, 10), 10)
    assert total.tolist() == [values.sum()]


def test_blas_is_held_to_one_thread_inside_a_region_and_restored(threads):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    assert parallel.can_pin_blas()

    def blas_threads():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    block, _seen = all_threads_meet(threads)
    inside = []

    def record(rows):
        inside.extend(blas_threads())
        block(rows)

    parallel.run_blocks(record, slice(0, 6), 0, calls_blas=True)
    assert inside and set(inside) == {1}
    assert blas_threads() == before


def test_without_threadpoolctl_blas_regions_stay_on_the_calling_thread(threads, monkeypatch):
    """BLAS cannot be pinned: a region that runs GEMMs is left to BLAS's own threads."""
    monkeypatch.setattr(parallel, "can_pin_blas", lambda: False)
    calls = []
    parallel.run_blocks(lambda rows: calls.append((rows, threading.get_ident())), slice(0, 6), 10**9,
                        calls_blas=True)
    assert calls == [(slice(0, 6), threading.get_ident())]


@pytest.mark.parametrize("stride, padding, groups", [(1, 1, 1), (1, 0, 2), (2, 1, 1)])
def test_large_gemms_on_threads_match_one_thread(threads, stride, padding, groups):
    """Layers whose GEMMs BLAS would thread itself: split over threads with BLAS pinned, the
    numbers match one thread."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, 32, 12, 13))
    w = rng.standard_normal((64, 32 // groups, 3, 3))
    geo = conv_geometry(x.shape, w.shape, stride, padding, 1, groups)
    gy = rng.standard_normal(geo.output_shape)
    threaded = (engine.conv_forward(x, w, None, geo)[0], *engine.conv_backward(x, w, gy, geo))
    parallel.set_num_threads(1)
    serial = (engine.conv_forward(x, w, None, geo)[0], *engine.conv_backward(x, w, gy, geo))
    for a, b in zip(threaded, serial):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cfg=conv_configs(max_batch=5), seed=SEEDS)
def test_one_pass_backward_matches_the_reference_loops(threads, cfg, seed):
    """engine.conv_backward (gX and gW from one pass over the batch blocks, with or without the
    forward's columns) gives the reference gradients, for every method."""
    x, w, b, gy = cfg.arrays(seed)
    geo = conv_geometry(x.shape, w.shape, **cfg.kwargs)
    gx_ref, gw_ref, _ = ref.conv2d_backward(x, w, gy, **cfg.kwargs)
    _, cols = engine.conv_forward(x, w, b, geo, keep_cols=True)
    for method in ("auto", "gemm", "inserted"):
        for kept in (cols, None):
            gx, gw = engine.conv_backward(x, w, gy, geo, kept, True, True, method)
            np.testing.assert_allclose(gx, gx_ref, rtol=1e-10, atol=1e-10)
            np.testing.assert_allclose(gw, gw_ref, rtol=1e-10, atol=1e-10)
    gx, gw = engine.conv_backward(x, w, gy, geo, cols, False, True)
    assert gx is None
    np.testing.assert_allclose(gw, gw_ref, rtol=1e-10, atol=1e-10)
    gx, gw = engine.conv_backward(x, w, gy, geo, None, True, False)
    assert gw is None
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-10, atol=1e-10)


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cfg=pool_configs(dilated=True, max_batch=5), seed=SEEDS, ties=st.booleans())
def test_threaded_pools_match_the_reference_loops(threads, cfg, seed, ties):
    """Average and max pooling with their batch blocks on 3 threads."""
    assert_max_pool_matches_reference(cfg, seed, ties)
    assert_avg_pool_matches_reference(cfg, seed)


@pytest.mark.parametrize("threads_count", [1, 2, 3])
def test_a_fixed_number_of_blocks_is_the_same_on_any_thread_count(monkeypatch, threads_count):
    """``parts`` fixes the blocks, also when the region runs serially; the sum covers each once."""
    monkeypatch.setattr(parallel, "MIN_PARALLEL_ELEMENTS", 0)
    before = parallel.get_num_threads()
    parallel.set_num_threads(threads_count)
    seen = []
    try:
        total = parallel.sum_over_blocks(
            lambda block: seen.append((block.start, block.stop)) or np.array([block.stop - block.start]),
            slice(2, 12), 0, parts=4)
    finally:
        parallel.set_num_threads(before)
    assert sorted(seen) == [(2, 4), (4, 7), (7, 9), (9, 12)] and total.tolist() == [10]


def test_a_layer_of_many_chunks_meets_its_threads_once_per_call(threads, monkeypatch, rng):
    """Each chunk is cut into one block per thread, and all the blocks run in one region."""
    monkeypatch.setattr(engine, "COLS_BUDGET_BYTES", 1)          # a chunk per 3 samples
    regions = []
    run_on_threads = parallel._run_on_threads
    monkeypatch.setattr(parallel, "_run_on_threads",
                        lambda fn, blocks: regions.append(len(blocks)) or run_on_threads(fn, blocks))
    x, w = rng.standard_normal((12, 2, 6, 6)), rng.standard_normal((3, 2, 3, 3))
    geo = conv_geometry(x.shape, w.shape)
    y = engine.conv_forward(x, w, None, geo)[0]
    gy = rng.standard_normal(y.shape)
    gx, gw = engine.conv_backward(x, w, gy, geo)
    assert regions == [12, 12]                                    # 4 chunks x 3 threads, twice
    for ours, expected in zip((y, gx, gw), (ref.conv2d(x, w), *ref.conv2d_backward(x, w, gy)[:2])):
        np.testing.assert_allclose(ours, expected, rtol=1e-11, atol=1e-11)


def test_caller_finishes_alone_when_the_workers_are_busy(threads):
    """Blocks go to whichever thread is free: with every worker held up, the calling thread
    runs all blocks itself and returns without waiting for the workers."""
    workers = parallel._pool(parallel.get_num_threads() - 1)
    release = threading.Event()
    for _ in range(parallel.get_num_threads() - 1):
        workers.submit(release.wait, 60)
    try:
        out = np.zeros(9)
        parallel.run_blocks(lambda block: out.__setitem__(block, 1.0), slice(0, 9), 0)
        finished_before_release = not release.is_set()
    finally:
        release.set()
    assert out.all() and finished_before_release


_THREADS_PROBE = """
import numpy as np
from numcnn.ops import engine, parallel
from numcnn.ops.shapes import conv_geometry
import threading
idents, pinned = set(), []
def record(rows):
    idents.add(threading.get_ident())
    pinned.extend(lib.get_num_threads() == 1 for lib in parallel._blas())
    barrier.wait()
barrier = threading.Barrier(2, timeout=30)
parallel.MIN_PARALLEL_ELEMENTS = 0
parallel.run_blocks(record, slice(0, 4), 0, calls_blas=True)
rng = np.random.default_rng(0)
x = rng.standard_normal((8, 4, 9, 9)).astype(np.float32)
w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
geo = conv_geometry(x.shape, w.shape, 1, 1, 1, 1)
y = engine.conv_forward(x, w, None, geo)[0]
print(parallel.get_num_threads(), len(idents), bool(pinned) and all(pinned), y.tobytes().hex())
"""


def test_threads_do_not_depend_on_the_import_order():
    """NumPy imported before numcnn or after it: the same thread count, every thread used in a
    region with BLAS pinned, and the same bits."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("OPENBLAS_THREAD_TIMEOUT", "NUMCNN_NUM_THREADS", "OMP_NUM_THREADS",
                        "OPENBLAS_NUM_THREADS")}
    env["NUMCNN_NUM_THREADS"] = "2"
    outputs = {}
    for order in ("import numpy; import numcnn", "import numcnn; import numpy"):
        script = order + "\n" + _THREADS_PROBE
        outputs[order] = subprocess.run([sys.executable, "-c", script], env=env,
                                        capture_output=True, text=True, check=True).stdout.split()
    a, b = outputs.values()
    assert a == b
    assert a[:3] == ["2", "2", "True"]


@pytest.mark.parametrize("shape", [(3, 4, 5), (64, 400, 120), (120, 64, 400), (7, 300, 200)])
def test_dense_products_on_threads_match_numpy(threads, shape):
    """engine.matmul splits the rows among the threads (BLAS pinned) above BLAS's own
    one-thread size, and equals np.matmul either way."""
    M, K, N = shape
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((M, K)), rng.standard_normal((K, N))
    np.testing.assert_allclose(engine.matmul(a, b), a @ b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(engine.matmul(b.T, a.T), (a @ b).T, rtol=1e-12, atol=1e-12)


def test_dense_products_pin_blas_while_they_run(threads, monkeypatch):
    pytest.importorskip("threadpoolctl")
    seen = []
    real = np.matmul

    def spy(x, y, out=None):
        seen.append([lib.get_num_threads() for lib in parallel._blas()])
        return real(x, y, out=out)

    monkeypatch.setattr(engine.np, "matmul", spy)
    a, b = np.ones((64, 400)), np.ones((400, 120))
    engine.matmul(a, b)
    assert seen and all(n == [1] * len(n) for n in seen)
