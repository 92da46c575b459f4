"""The threaded copy/add loops (numcnn.ops.parallel) and the whole-row scatter-add give the same
numbers as one thread and as the reference loops, for every path the kernels can take."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_conv import SEEDS, conv_configs
from test_pool import (
    assert_avg_pool_matches_reference,
    assert_max_pool_matches_reference,
    pool_configs,
)

from numcnn import reference as ref
from numcnn.ops import conv, parallel, windows
from numcnn.ops.shapes import conv_geometry

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


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


def test_over_batch_uses_several_threads_and_writes_every_row(threads):
    seen = set()
    out = np.zeros(10)

    def fill(block):
        seen.add(threading.get_ident())
        out[block] = np.arange(block.start, block.stop)
        time.sleep(0.05)  # long enough for the other threads to wake and pull a block

    parallel.over_batch(fill, 10, elements=10)
    np.testing.assert_array_equal(out, np.arange(10))
    assert len(seen) > 1


def test_over_batch_stays_on_the_calling_thread_for_small_work(monkeypatch):
    monkeypatch.setattr(parallel, "MIN_PARALLEL_ELEMENTS", 1000)
    before = parallel.get_num_threads()
    parallel.set_num_threads(2)
    try:
        calls = []
        parallel.over_batch(lambda block: calls.append((block, threading.get_ident())), 8, 999)
    finally:
        parallel.set_num_threads(before)
    assert calls == [(slice(0, 8), threading.get_ident())]


def test_over_batch_passes_errors_on(threads):
    def fail(block):
        if block.start > 0:
            raise RuntimeError(f"block {block.start}")

    with pytest.raises(RuntimeError, match="block"):
        parallel.over_batch(fail, 6, elements=6)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_rejects_bad_values(bad):
    with pytest.raises(ValueError, match=r"set_num_threads: n must be a positive int, got"):
        parallel.set_num_threads(bad)


@pytest.mark.parametrize("env, timeout, expected", [
    ("3", None, 3), (None, None, 1), (None, "28", 1), (None, "junk", 1), ("1", "4", 1),
])
def test_default_thread_count(monkeypatch, env, timeout, expected):
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    for name, value in (("NUMCNN_NUM_THREADS", env), ("OPENBLAS_THREAD_TIMEOUT", timeout)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert parallel._default_threads() == expected


def test_default_thread_count_with_a_short_blas_spin_is_the_core_count(monkeypatch):
    for name in ("NUMCNN_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "4")
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
    """Forward and both GEMM-form gradients with every loop split over 3 threads, and with a
    column budget so small that each sample is its own chunk."""
    x, w, b, gy = cfg.arrays(seed)
    y_ref = ref.conv2d(x, w, b, **cfg.kwargs)
    gx_ref, gw_ref, _ = ref.conv2d_backward(x, w, gy, **cfg.kwargs)
    geo = conv_geometry(x.shape, w.shape, **cfg.kwargs)
    for budget in (conv.COLS_BUDGET_BYTES, 1):
        old = conv.COLS_BUDGET_BYTES
        conv.COLS_BUDGET_BYTES = budget
        try:
            y = conv.forward(x, w, b, geo)[0]
            gx = conv.grad_input(gy, w, geo, "gemm")
            gw = conv.grad_weight(x, gy, geo, method="gemm")
        finally:
            conv.COLS_BUDGET_BYTES = old
        np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(gx, gx_ref, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(gw, gw_ref, rtol=1e-10, atol=1e-10)


@settings(max_examples=40)
@given(cfg=conv_configs(max_batch=4), seed=SEEDS)
def test_threads_change_no_bit(cfg, seed):
    """Each output cell is summed in the same order whatever the thread count."""
    x, w, b, gy = cfg.arrays(seed, np.float32)
    geo = conv_geometry(x.shape, w.shape, **cfg.kwargs)
    one = (conv.forward(x, w, b, geo)[0], conv.grad_input(gy, w, geo, "gemm"))
    old_min, before = parallel.MIN_PARALLEL_ELEMENTS, parallel.get_num_threads()
    parallel.MIN_PARALLEL_ELEMENTS = 0
    parallel.set_num_threads(2)
    try:
        two = (conv.forward(x, w, b, geo)[0], conv.grad_input(gy, w, geo, "gemm"))
    finally:
        parallel.MIN_PARALLEL_ELEMENTS = old_min
        parallel.set_num_threads(before)
    for a, c in zip(one, two):
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("shape", [
    # N, C, H, W, kh, kw, dh, dw, crop_h, crop_w
    (2, 3, 6, 7, 3, 2, 1, 1, (0, 0), (0, 0)),
    (3, 2, 9, 8, 3, 3, 2, 1, (1, 1), (2, 0)),
    (1, 1, 5, 5, 5, 5, 1, 1, (0, 0), (0, 0)),
    (2, 2, 7, 10, 2, 4, 1, 3, (0, 1), (1, 1)),
])
def test_col2im_rows_equals_col2im(shape):
    """The whole-row scatter-add equals the per-tap one when the unused columns hold zeros,
    asks for each kernel row's columns once, and is the adjoint of the gather:
    <im2col(x), dcols> = <x, col2im_rows(dcols)>."""
    N, C, Hp, Wp, kh, kw, dh, dw, crop_h, crop_w = shape
    Ho, Wo = Hp - dh * (kh - 1), Wp - dw * (kw - 1)
    rng = np.random.default_rng(0)
    dcols = rng.standard_normal((N, C, kh, kw, Ho, Wo))
    rows = np.zeros((N, C, kh, kw, Ho, Wp))
    rows[..., :Wo] = dcols
    rows = rows.reshape(N, C, kh, kw, -1)
    asked = []

    def row_columns(u):
        asked.append(u)
        return rows[:, :, u]

    got = windows.col2im_rows(row_columns, N, C, Hp, Wp, kh, kw, dh, dw, crop_h, crop_w)
    want = windows.col2im(dcols, Hp, Wp, 1, 1, dh, dw, crop_h, crop_w)
    assert asked == list(range(kh)) and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)
    xp = rng.standard_normal((N, C, Hp, Wp))
    lhs = np.vdot(windows.im2col(xp, kh, kw, Ho, Wo, 1, 1, dh, dw), dcols)
    full = windows.col2im_rows(lambda u: rows[:, :, u], N, C, Hp, Wp, kh, kw, dh, dw)
    assert lhs == pytest.approx(np.vdot(xp, full), rel=1e-12)


def test_workers_follow_the_callers_errstate(threads):
    """np.errstate is per thread: a setting of the caller holds in every worker too."""
    seen = {}

    def record(block):
        seen[block.start] = (np.geterr()["invalid"], threading.get_ident())
        time.sleep(0.05)

    with np.errstate(invalid="ignore"):
        parallel.over_batch(record, 9, 0)
    assert len(seen) == len(parallel.batch_blocks(9, parallel.BLOCKS_PER_THREAD * 3))
    assert len({ident for _, ident in seen.values()}) > 1
    assert {mode for mode, _ in seen.values()} == {"ignore"}


def test_sum_over_batch_adds_every_block_once(threads):
    values = np.arange(10.0) ** 2
    total = parallel.sum_over_batch(lambda block: np.array([values[block].sum()]), 10, 10)
    assert total.tolist() == [values.sum()]


def test_matmul_splits_small_products_and_keeps_large_ones_whole(threads):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((6, 2, 3, 4)), rng.standard_normal((6, 2, 4, 5))
    w = rng.standard_normal((2, 3, 4))                                 # broadcast over the batch
    np.testing.assert_allclose(parallel.matmul(a, b), np.matmul(a, b), rtol=1e-14)
    np.testing.assert_allclose(parallel.matmul(w, b), np.matmul(w, b), rtol=1e-14)
    np.testing.assert_allclose(parallel.matmul(a, b, sum_batch=True), np.matmul(a, b).sum(0),
                               rtol=1e-13)
    out = np.empty((6, 2, 3, 5))
    assert parallel.matmul(a, b, out=out) is out
    big = rng.standard_normal((2, 80, 80)), rng.standard_normal((2, 80, 80))  # 512000 > limit
    np.testing.assert_allclose(parallel.matmul(*big), np.matmul(*big), rtol=1e-13)


def test_blas_is_held_to_one_thread_inside_a_region_and_restored(threads):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    assert parallel.can_pin_blas()
    before = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    seen = []

    def record(block):
        seen.extend(i["num_threads"] for i in threadpoolctl.threadpool_info()
                    if i["user_api"] == "blas")
        time.sleep(0.05)

    parallel.over_batch(record, 6, 0, calls_blas=True)
    assert seen and set(seen) == {1}
    after = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    assert after == before


def test_gemm_splittable_needs_threads_and_small_gemms_or_pinned_blas(monkeypatch):
    before = parallel.get_num_threads()
    try:
        parallel.set_num_threads(1)
        assert not parallel.gemm_splittable(10)
        parallel.set_num_threads(2)
        assert parallel.gemm_splittable(parallel.BLAS_SINGLE_THREAD_MNK)
        monkeypatch.setattr(parallel, "can_pin_blas", lambda: False)
        assert not parallel.gemm_splittable(parallel.BLAS_SINGLE_THREAD_MNK + 1)
        monkeypatch.setattr(parallel, "can_pin_blas", lambda: True)
        assert parallel.gemm_splittable(parallel.BLAS_SINGLE_THREAD_MNK + 1)
    finally:
        parallel.set_num_threads(before)


@pytest.mark.parametrize("stride, padding, groups", [(1, 1, 1), (1, 0, 2), (2, 1, 1)])
def test_large_gemms_on_threads_match_one_thread(threads, stride, padding, groups):
    """Layers whose per-sample GEMMs exceed what BLAS keeps on one core: split over threads
    with BLAS pinned (or left whole without threadpoolctl), the numbers match one thread."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, 32, 12, 13))
    w = rng.standard_normal((64, 32 // groups, 3, 3))
    gy_shape = conv_geometry(x.shape, w.shape, stride, padding, 1, groups).output_shape
    gy = rng.standard_normal(gy_shape)
    geo = conv_geometry(x.shape, w.shape, stride, padding, 1, groups)
    threaded = (conv.forward(x, w, None, geo)[0], conv.grad_input(gy, w, geo, "gemm"),
                conv.grad_weight(x, gy, geo))
    parallel.set_num_threads(1)
    serial = (conv.forward(x, w, None, geo)[0], conv.grad_input(gy, w, geo, "gemm"),
              conv.grad_weight(x, gy, geo))
    for a, b in zip(threaded, serial):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cfg=conv_configs(max_batch=5), seed=SEEDS)
def test_fused_backward_matches_the_reference_loops(threads, cfg, seed):
    """conv.backward with the forward's columns (one pass over batch blocks for gX and gW when
    possible) gives the reference gradients, for every method."""
    x, w, b, gy = cfg.arrays(seed)
    geo = conv_geometry(x.shape, w.shape, **cfg.kwargs)
    gx_ref, gw_ref, _ = ref.conv2d_backward(x, w, gy, **cfg.kwargs)
    _, cols = conv.forward(x, w, b, geo, keep_cols=True)
    for method in ("auto", "gemm", "inserted"):
        gx, gw = conv.backward(x, w, gy, geo, cols, True, True, method)
        np.testing.assert_allclose(gx, gx_ref, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(gw, gw_ref, rtol=1e-10, atol=1e-10)
    gx, gw = conv.backward(x, w, gy, geo, cols, False, True)
    assert gx is None
    np.testing.assert_allclose(gw, gw_ref, rtol=1e-10, atol=1e-10)
    gx, gw = conv.backward(x, w, gy, geo, None, True, False)
    assert gw is None
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-10, atol=1e-10)


def test_fused_backward_takes_one_pass(threads, monkeypatch):
    """For a LeNet-like layer the fused pass runs, not the two separate gradients."""
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((6, 3, 9, 9)), rng.standard_normal((5, 3, 3, 3))
    geo = conv_geometry(x.shape, w.shape, 1, 0, 1, 1)
    gy = rng.standard_normal(geo.output_shape)
    _, cols = conv.forward(x, w, None, geo, keep_cols=True)
    want = (conv.grad_input(gy, w, geo, "gemm"), conv.grad_weight(x, gy, geo))

    def refuse(*args, **kwargs):
        raise AssertionError("the fused pass should have computed this")

    monkeypatch.setattr(conv, "grad_input", refuse)
    monkeypatch.setattr(conv, "grad_weight", refuse)
    got = conv.backward(x, w, gy, geo, cols, True, True, "gemm")
    for a, b in zip(got, want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    assert got[1].flags.c_contiguous


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cfg=pool_configs(dilated=True, max_batch=5), seed=SEEDS, ties=st.booleans())
def test_threaded_pools_match_the_reference_loops(threads, cfg, seed, ties):
    """Average and max pooling with their batch blocks on 3 threads."""
    assert_max_pool_matches_reference(cfg, seed, ties)
    assert_avg_pool_matches_reference(cfg, seed)


def test_caller_finishes_alone_when_the_workers_are_busy(threads):
    """Blocks go to whichever thread is free: with every worker held up, the calling thread
    runs all blocks itself and returns without waiting for the workers."""
    workers = parallel._pool(parallel.get_num_threads() - 1)
    release = threading.Event()
    for _ in range(parallel.get_num_threads() - 1):
        workers.submit(release.wait, 10)
    try:
        out = np.zeros(9)
        start = time.perf_counter()
        parallel.over_batch(lambda block: out.__setitem__(block, 1.0), 9, 0)
        elapsed = time.perf_counter() - start
    finally:
        release.set()
    assert out.all() and elapsed < 5


@pytest.mark.parametrize("code, preset, expected", [
    ("import numcnn", None, "4"),                       # numcnn first: a short BLAS spin
    ("import numcnn", "12", "12"),                      # the user's value wins
    ("import numpy; import numcnn", None, "None"),      # too late to matter: left alone
])
def test_import_sets_a_short_openblas_spin_only_before_numpy(code, preset, expected):
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_THREAD_TIMEOUT"}
    if preset is not None:
        env["OPENBLAS_THREAD_TIMEOUT"] = preset
    env.pop("NUMCNN_NUM_THREADS", None)
    script = (f"{code}; import os; from numcnn.ops import parallel; "
              "print(os.environ.get('OPENBLAS_THREAD_TIMEOUT'), parallel.get_num_threads())")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out[0] == expected
    if expected == "None":
        assert out[1] == "1"                           # BLAS spins long: numcnn stays on one
