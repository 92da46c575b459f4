"""Pooling kernels (average, max, adaptive average): adjoint identities, the reference loops,
PyTorch, and the worked examples and special cases of SPEC-math §5.

Finite differences for the pools run through ``numcnn.gradcheck`` in ``tests/test_functional.py``.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pool_checks import assert_avg_pool_matches_reference, assert_max_pool_matches_reference

from numcnn import functional as F
from numcnn import reference as ref
from numcnn.autograd import tensor
from numcnn.ops import engine, pool
from numcnn.ops.shapes import pool_geometry, pool_output_size
from strategies import SEEDS, pool_configs

# --- configurations -------------------------------------------------------------------------

def inner(a, b):
    return float(np.vdot(a.ravel(), b.ravel()))


# --- adjoint identities -----------------------------------------------------------------------

@settings(max_examples=60)
@given(cfg=pool_configs(), seed=SEEDS)
def test_avg_pool_adjoint(cfg, seed):
    """Average pooling is linear: <gy, avg(x)> == <avg_backward(gy), x> to 1e-12."""
    x, gy = cfg.arrays(seed, dilated=False)
    y = engine.avg_pool2d_forward(x, **cfg.avg_kwargs)
    gx = engine.avg_pool2d_backward(gy, x.shape, **cfg.avg_kwargs)
    assert y.shape == gy.shape and gx.shape == x.shape
    scale = float(np.abs(gy).sum() * np.abs(x).max()) + 1e-300
    assert abs(inner(gy, y) - inner(gx, x)) <= 1e-12 * scale


@settings(max_examples=30)
@given(cfg=pool_configs(), seed=SEEDS)
def test_avg_pool_forward_in_batch_chunks_is_the_same(cfg, seed):
    """The forward's row sums, chunked to fit a tiny budget, give the same bits."""
    x, _ = cfg.arrays(seed, dilated=False)
    whole = engine.avg_pool2d_forward(x, **cfg.avg_kwargs)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "COLS_BUDGET_BYTES", 1)    # one sample per thread per chunk
        chunked = engine.avg_pool2d_forward(x, **cfg.avg_kwargs)
    np.testing.assert_array_equal(chunked, whole)


@settings(max_examples=60)
@given(cfg=pool_configs(dilated=True), seed=SEEDS)
def test_max_pool_adjoint_with_fixed_argmax(cfg, seed):
    """For a fixed argmax, max pooling is the linear gather y = x[argmax]: its transpose is the
    backward, so <gy, y> == <max_backward(gy, argmax), x>. And y is the max of each window."""
    x, gy = cfg.arrays(seed, dilated=True)
    y, argmax = engine.max_pool2d_forward(x, **cfg.max_kwargs)
    assume(np.isfinite(y).all())                         # a dilated window may hold no cell
    gx = engine.max_pool2d_backward(gy, argmax, x.shape, **cfg.max_kwargs)
    assert y.shape == gy.shape == argmax.shape and gx.shape == x.shape
    assert argmax.dtype == np.int64
    scale = float(np.abs(gy).sum() * np.abs(x).max()) + 1e-300
    assert abs(inner(gy, y) - inner(gx, x)) <= 1e-12 * scale
    # the selected cell: y = x_pad at the tap the argmax names
    geo = cfg.geometry(dilated=True)
    u, v = np.divmod(argmax, geo.kw)
    i = geo.sh * np.arange(geo.Ho)[:, None] + geo.dh * u - geo.ph
    j = geo.sw * np.arange(geo.Wo)[None, :] + geo.dw * v - geo.pw
    assert np.all((0 <= i) & (i < geo.H) & (0 <= j) & (j < geo.W))
    n, c = np.indices(y.shape)[:2]
    np.testing.assert_array_equal(x[n, c, i, j], y)


@settings(max_examples=50)
@given(N=st.integers(1, 2), C=st.integers(1, 3), H=st.integers(1, 9), W=st.integers(1, 9),
       Oh=st.integers(1, 10), Ow=st.integers(1, 10), seed=SEEDS)
def test_adaptive_avg_pool_adjoint(N, C, H, W, Oh, Ow, seed):
    """Also when the output is larger than the input (bins overlap and repeat cells)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W))
    gy = rng.standard_normal((N, C, Oh, Ow))
    y = pool.adaptive_avg_pool_forward(x, (Oh, Ow))
    gx = pool.adaptive_avg_pool_backward(gy, x.shape)
    assert y.shape == gy.shape and gx.shape == x.shape
    scale = float(np.abs(gy).sum() * np.abs(x).max()) + 1e-300
    assert abs(inner(gy, y) - inner(gx, x)) <= 1e-12 * scale


# --- the reference loops --------------------------------------------------------------------

@settings(max_examples=30)
@given(cfg=pool_configs(), seed=SEEDS)
def test_avg_pool_matches_reference(cfg, seed):
    assert_avg_pool_matches_reference(cfg, seed)


@settings(max_examples=30)
@given(cfg=pool_configs(dilated=True), seed=SEEDS, ties=st.booleans())
def test_max_pool_matches_reference(cfg, seed, ties):
    assert_max_pool_matches_reference(cfg, seed, ties)


@settings(max_examples=30)
@given(N=st.integers(1, 2), C=st.integers(1, 2), H=st.integers(1, 7), W=st.integers(1, 7),
       Oh=st.integers(1, 8), Ow=st.integers(1, 8), seed=SEEDS)
def test_adaptive_avg_pool_matches_reference(N, C, H, W, Oh, Ow, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W))
    gy = rng.standard_normal((N, C, Oh, Ow))
    np.testing.assert_allclose(pool.adaptive_avg_pool_forward(x, (Oh, Ow)),
                               ref.adaptive_avg_pool2d(x, (Oh, Ow)), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(pool.adaptive_avg_pool_backward(gy, x.shape),
                               ref.adaptive_avg_pool2d_backward(gy, x.shape, (Oh, Ow)),
                               rtol=1e-12, atol=1e-13)


@settings(max_examples=30)
@given(cfg=pool_configs(), seed=SEEDS)
def test_avg_pool_is_depthwise_conv_when_divisor_is_constant(cfg, seed):
    """SPEC §5.2 / E12: with count_include_pad and no ceil-mode overhang, avg_pool2d equals a
    depthwise conv with a constant 1/(kh·kw) kernel, forward and backward."""
    geo = cfg.geometry(dilated=False)
    assume(geo.eh == 0 and geo.ew == 0)
    x, gy = cfg.arrays(seed, dilated=False)
    kwargs = dict(cfg.avg_kwargs, count_include_pad=True, divisor_override=None)
    w = np.full((cfg.C, 1, geo.kh, geo.kw), 1.0 / (geo.kh * geo.kw))
    ckw = {"stride": (geo.sh, geo.sw), "padding": (geo.ph, geo.pw), "groups": cfg.C}
    np.testing.assert_allclose(engine.avg_pool2d_forward(x, **kwargs),
                               engine.conv2d_forward(x, w, **ckw), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(engine.avg_pool2d_backward(gy, x.shape, **kwargs),
                               engine.conv2d_input(x.shape, w, gy, **ckw), rtol=1e-12, atol=1e-13)


# --- PyTorch ----------------------------------------------------------------------------------

def torch_pool(torch, fn, x, gy, **kwargs):
    tx = torch.tensor(x, requires_grad=True)
    out = fn(tx, **kwargs)
    ty, idx = out if isinstance(out, tuple) else (out, None)
    ty.backward(torch.tensor(gy))
    return ty.detach().numpy(), tx.grad.numpy(), (None if idx is None else idx.numpy())


def assert_close_for(dtype, got, expected, name):
    assert got.dtype == dtype and got.shape == expected.shape, name
    if dtype == np.float64:
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-13, err_msg=name)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=40)
@given(cfg=pool_configs(), seed=SEEDS)
def test_avg_pool_matches_torch(cfg, seed, dtype, torch):
    x, gy = cfg.arrays(seed, dilated=False, dtype=dtype)
    y_t, gx_t, _ = torch_pool(torch, torch.nn.functional.avg_pool2d, x, gy, **cfg.avg_kwargs)
    tx = tensor(x, requires_grad=True)
    y = F.avg_pool2d(tx, **cfg.avg_kwargs)
    y.backward(gy)
    assert_close_for(dtype, y.data, y_t, "y")
    assert_close_for(dtype, tx.grad, gx_t, "gx")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=40)
@given(cfg=pool_configs(dilated=True), seed=SEEDS, ties=st.booleans())
def test_max_pool_matches_torch(cfg, seed, ties, dtype, torch):
    """Values, gradients and return_indices; with ``ties`` the input is full of equal values
    and PyTorch's first-maximum rule decides (overlapping windows that pick one cell add)."""
    x, gy = cfg.arrays(seed, dilated=True, dtype=dtype)
    if ties:
        x = np.round(x)
    assume(np.isfinite(engine.max_pool2d_forward(x, **cfg.max_kwargs)[0]).all())
    y_t, gx_t, idx_t = torch_pool(torch, torch.nn.functional.max_pool2d, x, gy,
                                  return_indices=True, **cfg.max_kwargs)
    tx = tensor(x, requires_grad=True)
    y, idx = F.max_pool2d(tx, return_indices=True, **cfg.max_kwargs)
    y.backward(gy)
    assert_close_for(dtype, y.data, y_t, "y")
    assert_close_for(dtype, tx.grad, gx_t, "gx")
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(idx, idx_t)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=30)
@given(N=st.integers(1, 2), C=st.integers(1, 2), H=st.integers(1, 9), W=st.integers(1, 9),
       Oh=st.integers(1, 10), Ow=st.integers(1, 10), seed=SEEDS)
def test_adaptive_avg_pool_matches_torch(N, C, H, W, Oh, Ow, seed, dtype, torch):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    gy = rng.standard_normal((N, C, Oh, Ow)).astype(dtype)
    y_t, gx_t, _ = torch_pool(torch, torch.nn.functional.adaptive_avg_pool2d, x, gy,
                              output_size=(Oh, Ow))
    tx = tensor(x, requires_grad=True)
    y = F.adaptive_avg_pool2d(tx, (Oh, Ow))
    y.backward(gy)
    assert_close_for(dtype, y.data, y_t, "y")
    assert_close_for(dtype, tx.grad, gx_t, "gx")


def test_max_pool_all_ties_goes_to_first_cell(torch):
    """A constant input: every window's first real cell wins (scan u outer, v inner)."""
    x = np.zeros((1, 1, 5, 6))
    gy = np.arange(1.0, 13.0).reshape(1, 1, 3, 4) * np.array([1.0, -2.0, 0.5, 3.0])
    kw = {"kernel_size": (3, 2), "stride": 2, "padding": 1}
    y_t, gx_t, idx_t = torch_pool(torch, torch.nn.functional.max_pool2d, x, gy,
                                  return_indices=True, **kw)
    tx = tensor(x, requires_grad=True)
    y, idx = F.max_pool2d(tx, return_indices=True, **kw)
    y.backward(gy)
    np.testing.assert_array_equal(y.data, y_t)
    np.testing.assert_array_equal(idx, idx_t)
    np.testing.assert_array_equal(tx.grad, gx_t)
    # window (0, 0) covers rows -1..1, cols -1..0: its first real cell is (0, 0)
    assert idx[0, 0, 0, 0] == 0


# --- worked examples and special cases (SPEC §5) --------------------------------------------

def test_seed_example_k2_gives_each_cell_a_quarter():
    """S1: 4×4, k = s = 2: gX[i, j] = gY[i // 2, j // 2] / 4; a 5×5 input (floor mode) gives the
    last row and column exactly 0 (E6a)."""
    gy = np.array([[1.0, -2.0], [3.0, 8.0]])[None, None]
    expected = np.kron(gy[0, 0], np.ones((2, 2))) / 4
    gx = engine.avg_pool2d_backward(gy, (1, 1, 4, 4), 2)
    np.testing.assert_array_equal(gx[0, 0], expected)
    gx5 = engine.avg_pool2d_backward(gy, (1, 1, 5, 5), 2)
    np.testing.assert_array_equal(gx5[0, 0, :4, :4], expected)
    assert np.all(gx5[0, 0, 4, :] == 0) and np.all(gx5[0, 0, :, 4] == 0)
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(engine.avg_pool2d_forward(x, 2)[0, 0], [[2.5, 4.5], [10.5, 12.5]])


def test_avg_pool_overlapping_windows_add():
    """E6b: k = 3, s = 2 on 5×5: the centre row/column is in two windows per axis."""
    gy = np.array([[1.0, 2.0], [4.0, 8.0]])[None, None]
    gx = engine.avg_pool2d_backward(gy, (1, 1, 5, 5), 3, 2)[0, 0]
    assert gx[0, 0] == pytest.approx(1 / 9, rel=1e-15)
    assert gx[0, 2] == pytest.approx((1 + 2) / 9, rel=1e-15)
    assert gx[2, 2] == pytest.approx((1 + 2 + 4 + 8) / 9, rel=1e-15)
    assert gx[4, 4] == pytest.approx(8 / 9, rel=1e-15)


def test_pool_gaps_and_remainder_get_zero():
    """E6c/E6d: k = 2, s = 3 on 7×7: rows 2, 5 (gaps) and 6 (remainder) get 0; a dilated max
    pool never routes gradient to the rows its windows skip."""
    rng = np.random.default_rng(1)
    gy = rng.standard_normal((2, 3, 2, 2))
    gx = engine.avg_pool2d_backward(gy, (2, 3, 7, 7), 2, 3)
    assert np.all(gx[:, :, [0, 1, 3, 4], :][:, :, :, [0, 1, 3, 4]] != 0)
    for row in (2, 5, 6):
        assert np.all(gx[:, :, row, :] == 0) and np.all(gx[:, :, :, row] == 0)
    x = rng.standard_normal((2, 3, 7, 7))
    y, argmax = engine.max_pool2d_forward(x, 2, 2, 0, 3)                 # rows 0,3 | 2,5
    gx = engine.max_pool2d_backward(rng.standard_normal(y.shape), argmax, x.shape, 2, 2, 0, 3)
    for row in (1, 4, 6):
        assert np.all(gx[:, :, row, :] == 0) and np.all(gx[:, :, :, row] == 0)


def test_max_pool_overlapping_windows_add():
    """A global maximum in the middle of a 3×3/s1 pooling wins every window containing it."""
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 10.0
    x[0, 0] += np.arange(25).reshape(5, 5) * 1e-3                     # no other ties
    gy = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    y, argmax = engine.max_pool2d_forward(x, 3, 1)
    assert np.all(y == x[0, 0, 2, 2])
    gx = engine.max_pool2d_backward(gy, argmax, x.shape, 3, 1)
    expected = np.zeros((5, 5))
    expected[2, 2] = gy.sum()
    np.testing.assert_array_equal(gx[0, 0], expected)


def test_spec_ceil_mode_examples():
    """§5.1–5.2: H = 5, k = 2, s = 2, p = 1, ceil: floor(6/2)+1 = 4 drops to 3. H = W = 6, k = 3,
    s = 2, p = 1, ceil: 4 outputs, divisor factors [3,3,3,2] (count_include_pad) and [2,3,3,1]
    (without); on ones Y[0,0] = 4/9, Y[3,3] = 1/4, resp. all ones."""
    assert pool_output_size(5, 2, 2, 1, 1, ceil_mode=True) == 3
    assert pool_output_size(6, 3, 2, 1, 1, ceil_mode=True) == 4
    geo = pool_geometry((1, 3, 6, 6), 3, 2, 1, 1, True)
    assert (geo.Ho, geo.Wo, geo.eh, geo.ew) == (4, 4, 1, 1)
    with_pad, without_pad = [3, 3, 3, 2], [2, 3, 3, 1]
    np.testing.assert_array_equal(pool.avg_divisor(geo, True), np.outer(with_pad, with_pad))
    np.testing.assert_array_equal(pool.avg_divisor(geo, False), np.outer(without_pad, without_pad))
    ones = np.ones((1, 3, 6, 6))
    y = engine.avg_pool2d_forward(ones, 3, 2, 1, ceil_mode=True)
    np.testing.assert_allclose(y[0, :, 0, 0], 4 / 9, rtol=1e-15)
    np.testing.assert_allclose(y[0, :, 3, 3], 1 / 4, rtol=1e-15)
    y = engine.avg_pool2d_forward(ones, 3, 2, 1, ceil_mode=True, count_include_pad=False)
    np.testing.assert_allclose(y, 1.0, rtol=1e-15)


def test_divisor_override_replaces_the_divisor():
    x = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    y = engine.avg_pool2d_forward(x, 2, divisor_override=3)
    np.testing.assert_array_equal(y[0, 0], np.array([[14.0, 22.0], [46.0, 54.0]]) / 3)
    gx = engine.avg_pool2d_backward(np.ones((1, 1, 2, 2)) * 6, x.shape, 2, divisor_override=3)
    np.testing.assert_array_equal(gx, np.full(x.shape, 2.0))


def test_max_pool_nan_window_outputs_nan():
    """§5.3: a window containing NaN outputs NaN and routes its gradient to the first NaN."""
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = np.nan
    x[0, 0, 1, 0] = np.nan
    y, argmax = engine.max_pool2d_forward(x, 2)
    assert np.isnan(y[0, 0, 0, 0]) and argmax[0, 0, 0, 0] == 1
    assert not np.isnan(y[0, 0, 1:, :]).any() and not np.isnan(y[0, 0, :, 1:]).any()


def test_max_pool_window_without_cells():
    """H = 2, k = 2, p = 1, d = 3: the window reads rows −1 and 2 only, gives −∞ and no gradient."""
    x = np.ones((1, 1, 2, 2))
    y, argmax = engine.max_pool2d_forward(x, 2, 1, 1, 3)
    assert y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] == -np.inf
    gx = engine.max_pool2d_backward(np.ones(y.shape), argmax, x.shape, 2, 1, 1, 3)
    np.testing.assert_array_equal(gx, np.zeros(x.shape))


def test_max_pool_of_minus_infinity_picks_a_real_cell(torch):
    """An input of −∞ next to −∞ padding: the first real cell wins (PyTorch), not the padding."""
    x = np.full((1, 1, 3, 3), -np.inf)
    gy = np.array([[1.0, 2.0], [3.0, 4.0]])[None, None]
    y_t, gx_t, idx_t = torch_pool(torch, torch.nn.functional.max_pool2d, x, gy,
                                  return_indices=True, kernel_size=2, stride=2, padding=1)
    tx = tensor(x, requires_grad=True)
    y, idx = F.max_pool2d(tx, 2, 2, 1, return_indices=True)
    y.backward(gy)
    np.testing.assert_array_equal(y.data, y_t)
    np.testing.assert_array_equal(idx, idx_t)
    np.testing.assert_array_equal(tx.grad, gx_t)
    assert tx.grad.sum() == gy.sum()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernels_keep_dtype_and_shape(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 7, 6)).astype(dtype)
    y = engine.avg_pool2d_forward(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)
    gx = engine.avg_pool2d_backward(rng.standard_normal(y.shape).astype(dtype), x.shape, 3, 2, 1,
                                  ceil_mode=True, count_include_pad=False)
    assert y.dtype == gx.dtype == dtype and gx.shape == x.shape
    y = engine.avg_pool2d_forward(x, 2, divisor_override=3)
    assert y.dtype == dtype
    y, argmax = engine.max_pool2d_forward(x, 3, 2, 1, 2, True)
    gx = engine.max_pool2d_backward(rng.standard_normal(y.shape).astype(dtype), argmax, x.shape,
                                  3, 2, 1, 2, True)
    assert y.dtype == gx.dtype == dtype and gx.shape == x.shape
    y = pool.adaptive_avg_pool_forward(x, (4, 5))
    gx = pool.adaptive_avg_pool_backward(rng.standard_normal(y.shape).astype(dtype), x.shape)
    assert y.dtype == gx.dtype == dtype and gx.shape == x.shape


@pytest.mark.parametrize("shape, kernel, ceil_mode, divisor", [
    ((2, 3, 8, 6), 2, False, None),            # LeNet's 2x2 tiles, exact
    ((1, 2, 9, 7), 2, False, None),            # floor mode drops the last row and column
    ((2, 1, 9, 8), (3, 2), False, 5),          # non-square tiles, divisor override
    ((1, 1, 4, 4), 4, False, None),            # one tile covers everything
    ((1, 2, 5, 5), 1, False, None),            # 1x1 tiles: the identity
])
def test_avg_pool_backward_on_disjoint_tiles(shape, kernel, ceil_mode, divisor):
    """The repeat fast path for kernel = stride tiles equals the reference loops."""
    kernel_hw = kernel if isinstance(kernel, tuple) else (kernel, kernel)
    geo = pool_geometry(shape, kernel, None, 0, 1, ceil_mode, "avg_pool2d")
    assert pool._windows_tile(geo)
    rng = np.random.default_rng(7)
    gy = rng.standard_normal(geo.output_shape)
    got = engine.avg_pool2d_backward(gy, shape, kernel, divisor_override=divisor)
    want = ref.avg_pool2d_backward(gy, shape, kernel, divisor_override=divisor)
    assert got.shape == shape and kernel_hw == (geo.kh, geo.kw)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)


def test_avg_pool_ceil_overhang_is_not_a_tiling():
    geo = pool_geometry((1, 1, 5, 5), 2, None, 0, 1, True, "avg_pool2d")
    assert geo.eh == 1 and not pool._windows_tile(geo)


@pytest.mark.parametrize("shape, kernel", [((2, 3, 8, 6), 2), ((1, 2, 9, 7), 2),
                                           ((2, 1, 9, 8), (3, 2)), ((1, 1, 3, 3), 1)])
@pytest.mark.parametrize("special", [None, np.inf, np.nan])
def test_max_pool_backward_on_disjoint_tiles(shape, kernel, special):
    """The tile fast path (and its fallback when gY is not finite) equals the reference loops;
    ties in x make several taps equal so only the first may receive the gradient."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, shape).astype(np.float64)                   # many ties
    geo = pool_geometry(shape, kernel, None, 0, 1, False, "max_pool2d")
    assert pool._windows_tile(geo)
    gy = rng.standard_normal(geo.output_shape)
    if special is not None:
        gy[0, 0, 0, 0] = special
    _, argmax = pool.max_pool_forward(x, geo)
    _, ref_argmax = ref.max_pool2d(x, kernel)
    np.testing.assert_array_equal(argmax, ref_argmax)
    got = pool.max_pool_backward(gy, argmax, geo)
    want = ref.max_pool2d_backward(gy, ref_argmax, shape, kernel)
    np.testing.assert_array_equal(got, want)
