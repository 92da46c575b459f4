"""conv2d kernels: four independent checks (DESIGN "Tests: four independent checks per op").

1. the adjoint identity
   ``<gy, conv(x, w)> == <conv2d_input(gy, w), x> == <conv2d_weight(x, gy), w>`` on the raw
   kernels, for both backward methods, on every configuration hypothesis draws;
2. central finite differences live in ``tests/test_functional.py`` (through ``numcnn.gradcheck``);
3. the naive loops of ``numcnn.reference``;
4. PyTorch CPU, forward and every gradient, float64 and float32.

Plus the worked examples of SPEC-math §4.2–4.5 number for number, the coverage rule of §2.4
(rows no window reads get exactly zero gradient) and the dtype/shape contract of §7.1.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

from numcnn import functional as F
from numcnn import reference as ref
from numcnn.autograd import tensor
from numcnn.ops import conv, engine, parallel
from numcnn.ops.shapes import conv_geometry
from strategies import SEEDS, conv_configs

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")

METHODS = ("gemm", "inserted")


# --- configurations -------------------------------------------------------------------------

def inner(a, b):
    return float(np.vdot(a.ravel(), b.ravel()))


def scale_of(gy, x, w):
    """An upper bound of every partial sum in the inner products (for the relative tolerance)."""
    K = w.shape[1] * w.shape[2] * w.shape[3]
    return float(np.abs(gy).sum() * np.abs(x).max() * np.abs(w).max() * K) + 1e-300


# --- 1. adjoint identity --------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=60)
@given(cfg=conv_configs(), seed=SEEDS)
def test_adjoint_identity(cfg, seed, method):
    """<gy, conv(x, w)> == <conv2d_input(gy, w), x> == <conv2d_weight(x, gy), w>, to 1e-12."""
    x, w, _, gy = cfg.arrays(seed)
    y = engine.conv2d_forward(x, w, None, **cfg.kwargs)
    gx = engine.conv2d_input(x.shape, w, gy, method=method, **cfg.kwargs)
    gw = engine.conv2d_weight(x, w.shape, gy, method=method, **cfg.kwargs)
    assert y.shape == gy.shape and gx.shape == x.shape and gw.shape == w.shape
    tol = 1e-12 * scale_of(gy, x, w)
    lhs = inner(gy, y)
    assert abs(inner(gx, x) - lhs) <= tol
    assert abs(inner(gw, w) - lhs) <= tol


@settings(max_examples=40)
@given(cfg=conv_configs(), seed=SEEDS)
def test_bias_adjoint(cfg, seed):
    """conv is affine in b: <gy, conv(x, w, b) − conv(x, w)> == <conv2d_bias(gy), b>."""
    x, w, b, gy = cfg.arrays(seed)
    delta = engine.conv2d_forward(x, w, b, **cfg.kwargs) - engine.conv2d_forward(x, w, None,
                                                                              **cfg.kwargs)
    gb = engine.conv2d_bias(gy)
    assert gb.shape == b.shape
    np.testing.assert_allclose(inner(gy, delta), inner(gb, b), rtol=1e-12, atol=1e-12)


@settings(max_examples=50)
@given(cfg=conv_configs(), seed=SEEDS)
def test_gemm_and_inserted_backward_agree(cfg, seed):
    """The seed's inserted-grad/Rot180 form and the im2col/col2im form are the same gradients."""
    x, w, _, gy = cfg.arrays(seed)
    geo = conv_geometry(x.shape, w.shape, **cfg.kwargs)
    np.testing.assert_allclose(engine.conv_grad_input(gy, w, geo, "inserted"),
                               engine.conv_grad_input(gy, w, geo, "gemm"), rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(engine.conv_grad_weight(x, gy, geo, method="inserted"),
                               engine.conv_grad_weight(x, gy, geo, method="gemm"),
                               rtol=1e-11, atol=1e-12)


@settings(max_examples=30)
@given(cfg=conv_configs(), seed=SEEDS)
def test_cached_columns_and_batch_chunks_give_the_same_result(cfg, seed):
    """The weight gradient from the forward's cached columns, and forward/backward processed in
    batch chunks (a tiny im2col budget), equal the one-shot results."""
    x, w, b, gy = cfg.arrays(seed)
    geo = conv_geometry(x.shape, w.shape, **cfg.kwargs)
    y, cols = engine.conv_forward(x, w, b, geo, keep_cols=True)
    assert cols is not None
    gw_cached = engine.conv_grad_weight(x, gy, geo, cols)
    gw = engine.conv_grad_weight(x, gy, geo)
    np.testing.assert_allclose(gw_cached, gw, rtol=1e-12, atol=1e-12)
    budget = engine.COLS_BUDGET_BYTES
    try:
        engine.COLS_BUDGET_BYTES = 1                       # one sample per thread per chunk
        y_chunked, cols_chunked = engine.conv_forward(x, w, b, geo, keep_cols=True)
        gw_chunked = engine.conv_grad_weight(x, gy, geo)
    finally:
        engine.COLS_BUDGET_BYTES = budget
    if cfg.N > parallel.get_num_threads():
        assert cols_chunked is None                        # several chunks: nothing kept
    np.testing.assert_allclose(y_chunked, y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw_chunked, gw, rtol=1e-12, atol=1e-12)


# --- 3. the reference loops -----------------------------------------------------------------

@settings(max_examples=25)
@given(cfg=conv_configs(max_out=2, max_channels=2), seed=SEEDS)
def test_matches_reference_loops(cfg, seed):
    """Forward, index-form backward (3.1a–c), inserted-grad gX (3.2a) and Rot180 gW (3.2c)."""
    x, w, b, gy = cfg.arrays(seed)
    kw = cfg.kwargs
    np.testing.assert_allclose(engine.conv2d_forward(x, w, b, **kw), ref.conv2d(x, w, b, **kw),
                               rtol=1e-12, atol=1e-12)
    gx_ref, gw_ref, gb_ref = ref.conv2d_backward(x, w, gy, **kw)
    for method in METHODS:
        np.testing.assert_allclose(engine.conv2d_input(x.shape, w, gy, method=method, **kw),
                                   gx_ref, rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(engine.conv2d_weight(x, w.shape, gy, method=method, **kw),
                                   gw_ref, rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(engine.conv2d_bias(gy), gb_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ref.conv2d_input_inserted(gy, w, x.shape, **kw), gx_ref,
                               rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(ref.conv2d_weight_rot180(x, gy, w.shape, **kw), gw_ref,
                               rtol=1e-11, atol=1e-12)


@settings(max_examples=25)
@given(cfg=conv_configs(max_out=2), seed=SEEDS)
def test_inserted_grad_definition(cfg, seed):
    """P (3.2): zero-inserted and padded k_eff−1−p before, k_eff−1−p+r after; H + k_eff − 1."""
    gy = cfg.arrays(seed)[3]
    geo = conv_geometry(cfg.x_shape, cfg.w_shape, **cfg.kwargs)
    P = conv.inserted_grad(gy, geo)
    assert P.shape == (geo.N, geo.C_out, geo.H + geo.keh - 1, geo.W + geo.kew - 1)
    # P[top + s_h·a, left + s_w·b] = gY[a, b], zero elsewhere (entries that land outside are
    # cropped; they belong to windows lying entirely in the zero padding)
    top, left = geo.keh - 1 - geo.pad_h[0], geo.kew - 1 - geo.pad_w[0]
    expected = np.zeros(P.shape)
    for a in range(geo.Ho):
        for b in range(geo.Wo):
            row, col = top + geo.sh * a, left + geo.sw * b
            if 0 <= row < P.shape[2] and 0 <= col < P.shape[3]:
                expected[:, :, row, col] = gy[:, :, a, b]
    np.testing.assert_array_equal(P, expected)


# --- 4. PyTorch -------------------------------------------------------------------------------

def torch_conv(torch, x, w, b, gy, cfg):
    """Forward and (gx, gw, gb) by torch autograd."""
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    ty = torch.nn.functional.conv2d(tx, tw, tb, **cfg.kwargs)
    ty.backward(torch.tensor(gy))
    return [t.detach().numpy() for t in (ty, tx.grad, tw.grad, tb.grad)]


def numcnn_conv(x, w, b, gy, cfg, method="gemm"):
    tx, tw, tb = (tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.conv2d(tx, tw, tb, method=method, **cfg.kwargs)
    y.backward(gy)
    return [y.data, tx.grad, tw.grad, tb.grad]


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=30)
@given(cfg=conv_configs(), seed=SEEDS)
def test_matches_torch_float64(cfg, seed, method, torch):
    x, w, b, gy = cfg.arrays(seed)
    expected = torch_conv(torch, x, w, b, gy, cfg)
    got = numcnn_conv(x, w, b, gy, cfg, method)
    for name, g, e in zip(("y", "gx", "gw", "gb"), got, expected):
        assert g.dtype == np.float64 and g.shape == e.shape, name
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-11, err_msg=name)


@settings(max_examples=25)
@given(cfg=conv_configs(), seed=SEEDS)
def test_matches_torch_float32(cfg, seed, torch):
    """float32 in, float32 out (forward and every gradient), within 1e-4 relative of PyTorch."""
    x, w, b, gy = cfg.arrays(seed, np.float32)
    expected = torch_conv(torch, x, w, b, gy, cfg)
    got = numcnn_conv(x, w, b, gy, cfg)
    for name, g, e in zip(("y", "gx", "gw", "gb"), got, expected):
        assert g.dtype == np.float32 and g.shape == e.shape, name
        scale = max(1.0, float(np.abs(e).max()))
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-4 * scale, err_msg=name)


@settings(max_examples=25)
@given(cfg=conv_configs(same=False), seed=SEEDS)
def test_public_gradients_match_torch_nn_grad(cfg, seed, torch):
    """conv2d_input / conv2d_weight carry torch.nn.grad's names and agree with it; gX is also
    conv_transpose2d(gY, W) with output_padding = r (SPEC §3.5)."""
    x, w, _, gy = cfg.arrays(seed)
    tx, tw, tgy = torch.tensor(x), torch.tensor(w), torch.tensor(gy)
    geo = conv_geometry(x.shape, w.shape, **cfg.kwargs)
    kw = dict(cfg.kwargs, padding=(geo.pad_h[0], geo.pad_w[0]))      # torch.nn.grad: ints only
    gx = engine.conv2d_input(x.shape, w, gy, **cfg.kwargs)
    np.testing.assert_allclose(
        gx, torch.nn.grad.conv2d_input(x.shape, tw, tgy, **kw).numpy(), rtol=1e-10, atol=1e-11)
    np.testing.assert_allclose(
        engine.conv2d_weight(x, w.shape, gy, **cfg.kwargs),
        torch.nn.grad.conv2d_weight(tx, w.shape, tgy, **kw).numpy(), rtol=1e-10, atol=1e-11)
    gx_t = torch.nn.functional.conv_transpose2d(
        tgy, tw, stride=cfg.stride, padding=kw["padding"], output_padding=(geo.rh, geo.rw),
        groups=cfg.groups, dilation=cfg.dilation)
    np.testing.assert_allclose(gx, gx_t.numpy(), rtol=1e-10, atol=1e-11)


# --- worked examples (SPEC §4) --------------------------------------------------------------

W_EX = np.array([[1, 0, -1], [2, 1, 0], [0, -1, 1]], dtype=np.float64)[None, None]
GY_EX = np.array([[1, 2], [3, 4]], dtype=np.float64)[None, None]
GX_A = np.array([[1, 0, 1, 0, -2],
                 [2, 1, 4, 2, 0],
                 [3, -1, 2, -2, -2],
                 [6, 3, 8, 4, 0],
                 [0, -3, 3, -4, 4]], dtype=np.float64)


def affine_input(size):
    """X[i, j] = size·i + j, shape (1, 1, size, size)."""
    return (size * np.arange(size)[:, None] + np.arange(size)).astype(np.float64)[None, None]


def correlate_valid(a, k):
    """Plain 2-D valid cross-correlation (A ⋆ K), written out independently of the library."""
    out = np.zeros((a.shape[0] - k.shape[0] + 1, a.shape[1] - k.shape[1] + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(a[i:i + k.shape[0], j:j + k.shape[1]] * k)
    return out


def test_correlation_not_convolution():
    """E1: [1 2; 3 4] ⋆ [1 2; 3 4] = 1 + 4 + 9 + 16 = 30 (a true convolution would give 20)."""
    a = np.array([[1.0, 2.0], [3.0, 4.0]])[None, None]
    assert engine.conv2d_forward(a, a)[0, 0, 0, 0] == 30.0


@pytest.mark.parametrize("method", METHODS)
def test_example_a_5x5_k3_s2(method):
    """§4.2: 5×5 → 2×2, the inserted gradient is the seed's 7×7 picture; Y, gb, gW, gX exact."""
    x = affine_input(5)
    geo = conv_geometry(x.shape, W_EX.shape, stride=2)
    assert (geo.Ho, geo.Wo, geo.rh) == (2, 2, 0)
    y, _ = engine.conv_forward(x, W_EX, None, geo)
    np.testing.assert_array_equal(y[0, 0], [[15, 21], [45, 51]])
    P = conv.inserted_grad(GY_EX, geo)
    assert P.shape == (1, 1, 7, 7)
    expected_p = np.zeros((7, 7))
    expected_p[2, 2], expected_p[2, 4], expected_p[4, 2], expected_p[4, 4] = 1, 2, 3, 4
    np.testing.assert_array_equal(P[0, 0], expected_p)
    np.testing.assert_array_equal(conv.grad_bias(GY_EX), [10])
    gw = engine.conv_grad_weight(x, GY_EX, geo, method=method)
    np.testing.assert_array_equal(gw[0, 0], [[82, 92, 102], [132, 142, 152], [182, 192, 202]])
    # the seed's Rot180 form: P ⋆ X is rot180(gW)
    np.testing.assert_array_equal(correlate_valid(P[0, 0], x[0, 0]), gw[0, 0, ::-1, ::-1])
    gx = engine.conv_grad_input(GY_EX, W_EX, geo, method=method)
    np.testing.assert_array_equal(gx[0, 0], GX_A)
    # centre cell, read by all four windows: 1·W[2,2] + 2·W[2,0] + 3·W[0,2] + 4·W[0,0] = 2
    assert gx[0, 0, 2, 2] == 2
    # and gX = P ⋆ rot180(W)
    np.testing.assert_array_equal(correlate_valid(P[0, 0], W_EX[0, 0, ::-1, ::-1]), GX_A)


@pytest.mark.parametrize("method", METHODS)
def test_example_b_6x6_needs_8x8_inserted_grad(method):
    """§4.3: 6×6, k = 3, s = 2 (r = 1): floor size 2, P is 8×8 (not the seed's 7×7), padded
    2 before and 3 after; gX is Example A's plus a zero last row and column."""
    x = affine_input(6)
    geo = conv_geometry(x.shape, W_EX.shape, stride=2)
    assert (geo.Ho, geo.Wo, geo.rh, geo.rw) == (2, 2, 1, 1)
    y, _ = engine.conv_forward(x, W_EX, None, geo)
    np.testing.assert_array_equal(y[0, 0], [[18, 24], [54, 60]])
    P = conv.inserted_grad(GY_EX, geo)
    assert P.shape == (1, 1, 8, 8)
    expected_p = np.zeros((8, 8))
    expected_p[2, 2], expected_p[2, 4], expected_p[4, 2], expected_p[4, 4] = 1, 2, 3, 4
    np.testing.assert_array_equal(P[0, 0], expected_p)
    np.testing.assert_array_equal(conv.grad_bias(GY_EX), [10])
    gw = engine.conv_grad_weight(x, GY_EX, geo, method=method)
    np.testing.assert_array_equal(gw[0, 0], [[96, 106, 116], [156, 166, 176], [216, 226, 236]])
    np.testing.assert_array_equal(correlate_valid(P[0, 0], x[0, 0]), gw[0, 0, ::-1, ::-1])
    gx = engine.conv_grad_input(GY_EX, W_EX, geo, method=method)
    expected = np.zeros((6, 6))
    expected[:5, :5] = GX_A
    np.testing.assert_array_equal(gx[0, 0], expected)


@pytest.mark.parametrize("method", METHODS)
def test_example_c_padding_dilation_remainder(method, rng):
    """§4.4: 8×8, k = 3, s = 2, p = 1, d = 2: k_eff 5, H_out 3, r 1, P 12×12; coverage
    [0,2,0,3,0,2,0,1], so rows/columns 0, 2, 4, 6 get exactly zero gradient."""
    x = rng.standard_normal((1, 1, 8, 8))
    geo = conv_geometry(x.shape, (1, 1, 3, 3), stride=2, padding=1, dilation=2)
    assert (geo.keh, geo.Hp, geo.Ho, geo.rh) == (5, 10, 3, 1)
    assert conv.inserted_grad(np.ones((1, 1, 3, 3)), geo).shape == (1, 1, 12, 12)
    cov = np.array([0, 2, 0, 3, 0, 2, 0, 1], dtype=np.float64)
    gx_ones = engine.conv_grad_input(np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3)), geo, method)
    np.testing.assert_array_equal(gx_ones[0, 0], np.outer(cov, cov))
    gx = engine.conv_grad_input(rng.standard_normal((1, 1, 3, 3)), rng.standard_normal((1, 1, 3, 3)),
                         geo, method)
    assert np.all(gx[0, 0, ::2, :] == 0) and np.all(gx[0, 0, :, ::2] == 0)
    assert np.all(gx[0, 0, 1::2, 1::2] != 0)


def test_example_d_shapes(rng):
    """§4.5: every tensor of the `numcnn explain` example has the printed shape."""
    x = rng.standard_normal((2, 4, 7, 6))
    w = rng.standard_normal((6, 2, 3, 2))
    kw = {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2), "groups": 2}
    geo = conv_geometry(x.shape, w.shape, **kw)
    assert (geo.Ho, geo.Wo, geo.rh, geo.rw, geo.Hp, geo.Wp) == (4, 4, 0, 0, 9, 6)
    y, cols = engine.conv_forward(x, w, None, geo, keep_cols=True)
    assert y.shape == (2, 6, 4, 4)
    assert cols.size == 768                                            # N·C_in·Ho·Wo·kh·kw
    gy = rng.standard_normal(y.shape)
    assert conv.inserted_grad(gy, geo).shape == (2, 6, 9, 8)
    assert conv.flip_swap(w, 2).shape == (4, 3, 3, 2)
    for method in METHODS:
        assert engine.conv_grad_input(gy, w, geo, method).shape == x.shape
        assert engine.conv_grad_weight(x, gy, geo, method=method).shape == w.shape


# --- coverage: rows no window reads get exactly zero (SPEC §2.4) ----------------------------

def coverage(size, k, s, p, d, out):
    """cov(i) = #{(o, u): s·o + d·u − p = i}, by enumeration."""
    cov = np.zeros(size)
    for o in range(out):
        for u in range(k):
            i = s * o + d * u - p
            if 0 <= i < size:
                cov[i] += 1
    return cov


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=40)
@given(cfg=conv_configs(same=False), seed=SEEDS)
def test_unread_rows_get_exactly_zero_gradient(cfg, seed, method):
    """With all-ones W and gY on one channel gX[i, j] = cov(i)·cov(j) exactly; with random data
    the rows and columns of zero coverage (remainder, s > k gaps, dilation gaps) are exactly 0."""
    geo = conv_geometry((1, 1, cfg.H, cfg.W), (1, 1, cfg.kh, cfg.kw), cfg.stride, cfg.padding,
                        cfg.dilation)
    cov_h = coverage(geo.H, geo.kh, geo.sh, geo.pad_h[0], geo.dh, geo.Ho)
    cov_w = coverage(geo.W, geo.kw, geo.sw, geo.pad_w[0], geo.dw, geo.Wo)
    ones = engine.conv_grad_input(np.ones((1, 1, geo.Ho, geo.Wo)), np.ones((1, 1, geo.kh, geo.kw)), geo,
                           method)
    np.testing.assert_array_equal(ones[0, 0], np.outer(cov_h, cov_w))
    x, w, _, gy = cfg.arrays(seed)
    gx = engine.conv2d_input(x.shape, w, gy, method=method, **cfg.kwargs)
    assert np.all(gx[:, :, cov_h == 0, :] == 0)
    assert np.all(gx[:, :, :, cov_w == 0] == 0)


def test_stride_larger_than_kernel_leaves_gaps(rng):
    """E5: 7×7, k = 2, s = 3 (r = 2): rows 2, 5 (gaps) and 6 (remainder) get zero gradient."""
    x, w = rng.standard_normal((1, 2, 7, 7)), rng.standard_normal((3, 2, 2, 2))
    gy = rng.standard_normal((1, 3, 2, 2))
    for method in METHODS:
        gx = engine.conv2d_input(x.shape, w, gy, stride=3, method=method)
        for row in (2, 5, 6):
            assert np.all(gx[:, :, row, :] == 0) and np.all(gx[:, :, :, row] == 0)
        assert np.all(gx[:, :, [0, 1, 3, 4], :][:, :, :, [0, 1, 3, 4]] != 0)


@pytest.mark.parametrize("stride, padding", [(1, 0), (1, 1), (2, 0), ((1, 3), 0)])
def test_a_non_finite_weight_reaches_only_the_cells_its_tap_reads(stride, padding, rng):
    """inf in one tap makes gX infinite only where that tap reads, as the index form (3.1c) and
    PyTorch say: the row grid's wrap-around positions, where gY is 0, must not add inf·0 = NaN
    to the cells they land on."""
    x = rng.standard_normal((2, 2, 6, 10))
    w = rng.standard_normal((3, 2, 3, 3))
    w[1, 0, 0, 0] = np.inf
    gy = rng.standard_normal(conv_geometry(x.shape, w.shape, stride, padding).output_shape)
    with np.errstate(invalid="ignore"):                # inf·0 at the wrap positions, then dropped
        gx = engine.conv2d_input(x.shape, w, gy, stride, padding, method="gemm")
    gx_ref = ref.conv2d_backward(x, w, gy, stride, padding)[0]
    assert not np.isnan(gx_ref).any() and np.isinf(gx_ref).any()
    np.testing.assert_allclose(gx, gx_ref, rtol=1e-12, atol=1e-12)


# --- shape and dtype contract (SPEC §7.1) -----------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("method", METHODS)
def test_kernels_keep_dtype_and_shape(dtype, method, rng):
    x = rng.standard_normal((2, 4, 7, 6)).astype(dtype)
    w = rng.standard_normal((6, 2, 3, 2)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    kw = {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2), "groups": 2}
    y = engine.conv2d_forward(x, w, b, **kw)
    gy = rng.standard_normal(y.shape).astype(dtype)
    gx = engine.conv2d_input(x.shape, w, gy, method=method, **kw)
    gw = engine.conv2d_weight(x, w.shape, gy, method=method, **kw)
    gb = engine.conv2d_bias(gy)
    for arr, like in ((y, gy), (gx, x), (gw, w), (gb, b)):
        assert arr.dtype == dtype and arr.shape == like.shape


@pytest.mark.parametrize("N, C_in", [(2, 3), (0, 3), (2, 0)])
def test_the_weight_gradient_has_the_dtype_of_x_times_gy_on_empty_sums_too(N, C_in, rng):
    """x float64 and gY float32 give a float64 gW, with or without samples and input channels
    (an empty sum is no reason for another dtype)."""
    x = rng.standard_normal((N, C_in, 5, 5))
    w = rng.standard_normal((4, C_in, 3, 3))
    gy = rng.standard_normal((N, 4, 3, 3)).astype(np.float32)
    assert engine.conv2d_weight(x, w.shape, gy).dtype == np.float64
    assert engine.conv2d_forward_and_weight(x, w, gy)[1].dtype == np.float64
    geo = conv_geometry(x.shape, w.shape)
    assert engine.conv_backward(x, w, gy, geo)[1].dtype == np.float64


@pytest.mark.parametrize("method", METHODS)
def test_pointwise_and_non_contiguous_inputs(method, rng):
    """1×1 kernels (the GEMM needs no im2col) and strided views give the contiguous results."""
    big = rng.standard_normal((2, 6, 10, 12))
    x = big[:, ::2, ::2, 1::2]                                         # (2, 3, 5, 6), a view
    assert not x.flags.c_contiguous
    xc = np.ascontiguousarray(x)
    w = rng.standard_normal((4, 3, 1, 1))
    gy = rng.standard_normal((2, 4, 5, 6))
    np.testing.assert_allclose(engine.conv2d_forward(x, w), ref.conv2d(xc, w), rtol=1e-12)
    gx_ref, gw_ref, _ = ref.conv2d_backward(xc, w, gy)
    np.testing.assert_allclose(engine.conv2d_input(x.shape, w, gy, method=method), gx_ref,
                               rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(engine.conv2d_weight(x, w.shape, gy, method=method), gw_ref,
                               rtol=1e-12, atol=1e-13)
    w3 = rng.standard_normal((4, 3, 3, 2))
    kw = {"stride": 2, "padding": 1}
    gy3 = rng.standard_normal(conv_geometry(x.shape, w3.shape, **kw).output_shape)
    np.testing.assert_allclose(engine.conv2d_forward(x, w3, **kw), ref.conv2d(xc, w3, **kw),
                               rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(engine.conv2d_weight(x, w3.shape, gy3, method=method, **kw),
                               ref.conv2d_backward(xc, w3, gy3, **kw)[1], rtol=1e-12, atol=1e-13)


def test_flip_swap_definition(rng):
    """W_T[γ·Cg + c', q', u, v] = W[γ·Qg + q', c', kh−1−u, kw−1−v], checked entry by entry."""
    g, Qg, Cg, kh, kw = 3, 2, 4, 3, 2
    w = rng.standard_normal((g * Qg, Cg, kh, kw))
    wt = conv.flip_swap(w, g)
    assert wt.shape == (g * Cg, Qg, kh, kw)
    for gamma in range(g):
        for cp in range(Cg):
            for qp in range(Qg):
                for u in range(kh):
                    for v in range(kw):
                        assert wt[gamma * Cg + cp, qp, u, v] == \
                            w[gamma * Qg + qp, cp, kh - 1 - u, kw - 1 - v]
    # depthwise: the swap is trivial and W_T = flip(W) on the spatial axes only
    dw = rng.standard_normal((5, 1, 3, 3))
    np.testing.assert_array_equal(conv.flip_swap(dw, 5), np.flip(dw, (2, 3)))
    assert not np.array_equal(conv.flip_swap(dw, 5), np.rot90(dw, 2))


@pytest.mark.parametrize("method", ["gemm", "inserted"])
@pytest.mark.parametrize("N", [0, 3])
def test_grad_input_plus_a_bias_adds_it_to_every_cell_of_its_channel(method, N, rng):
    """conv_transpose2d's forward is gX of a conv plus its bias, added block by block."""
    w, b = rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(3)
    geo = conv_geometry((N, 3, 9, 8), w.shape, (2, 1), 1)
    gy = rng.standard_normal(geo.output_shape)
    np.testing.assert_allclose(engine.conv_grad_input(gy, w, geo, method, bias=b),
                               engine.conv_grad_input(gy, w, geo, method) + b.reshape(1, -1, 1, 1),
                               rtol=1e-13, atol=1e-13)


def test_unknown_method_is_rejected(rng):
    x, w = rng.standard_normal((1, 1, 4, 4)), rng.standard_normal((1, 1, 3, 3))
    gy = rng.standard_normal((1, 1, 2, 2))
    with pytest.raises(ValueError, match="method.*'fast'"):
        engine.conv2d_input(x.shape, w, gy, method="fast")
    with pytest.raises(ValueError, match="method.*'fast'"):
        engine.conv2d_weight(x, w.shape, gy, method="fast")
