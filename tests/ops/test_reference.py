"""Tests of the loop oracle ``numcnn.reference``.

The spec's worked examples number for number (SPEC-math §4.2–4.4, §5.1–5.2), PyTorch as an
independent oracle, the equality of the three forms of the conv backward (index form,
inserted grad, Rot180) and central finite differences. Shapes stay tiny: the oracle loops.
"""
import numpy as np
import pytest

from numcnn import reference as ref

# ----------------------------------------------------------------------------------------------
# worked examples (SPEC-math §4)
# ----------------------------------------------------------------------------------------------
W_EX = np.array([[1, 0, -1], [2, 1, 0], [0, -1, 1]], dtype=np.float64)[None, None]
GY_EX = np.array([[1, 2], [3, 4]], dtype=np.float64)[None, None]
GX_A = np.array(
    [
        [1, 0, 1, 0, -2],
        [2, 1, 4, 2, 0],
        [3, -1, 2, -2, -2],
        [6, 3, 8, 4, 0],
        [0, -3, 3, -4, 4],
    ],
    dtype=np.float64,
)


def affine_input(size: int) -> np.ndarray:
    """X[i, j] = size·i + j, shape (1, 1, size, size)."""
    return (size * np.arange(size)[:, None] + np.arange(size)).astype(np.float64)[None, None]


def test_example_a_5x5_stride2():
    """§4.2: X[i,j] = 5i + j, k = 3, s = 2 -> Y, gb, gW, gX exactly as printed."""
    x = affine_input(5)
    y = ref.conv2d(x, W_EX, stride=2)
    np.testing.assert_array_equal(y[0, 0], [[15, 21], [45, 51]])
    gx, gw, gb = ref.conv2d_backward(x, W_EX, GY_EX, stride=2)
    np.testing.assert_array_equal(gb, [10])
    np.testing.assert_array_equal(
        gw[0, 0], [[82, 92, 102], [132, 142, 152], [182, 192, 202]]
    )
    np.testing.assert_array_equal(gx[0, 0], GX_A)
    # centre cell, read by all four windows: 1·W[2,2] + 2·W[2,0] + 3·W[0,2] + 4·W[0,0] = 2
    assert gx[0, 0, 2, 2] == 2
    np.testing.assert_array_equal(ref.conv2d_input_inserted(GY_EX, W_EX, x.shape, 2), gx)
    np.testing.assert_array_equal(ref.conv2d_weight_rot180(x, GY_EX, W_EX.shape, 2), gw)


def test_example_b_6x6_remainder():
    """§4.3: 6×6, k = 3, s = 2 (r = 1): gX is Example A's gX plus a zero last row/column."""
    x = affine_input(6)
    y = ref.conv2d(x, W_EX, stride=2)
    np.testing.assert_array_equal(y[0, 0], [[18, 24], [54, 60]])
    gx, gw, gb = ref.conv2d_backward(x, W_EX, GY_EX, stride=2)
    np.testing.assert_array_equal(gb, [10])
    np.testing.assert_array_equal(
        gw[0, 0], [[96, 106, 116], [156, 166, 176], [216, 226, 236]]
    )
    expected = np.zeros((6, 6))
    expected[:5, :5] = GX_A
    np.testing.assert_array_equal(gx[0, 0], expected)
    assert not gx[0, 0, 5, :].any() and not gx[0, 0, :, 5].any()
    np.testing.assert_array_equal(ref.conv2d_input_inserted(GY_EX, W_EX, x.shape, 2), gx)
    np.testing.assert_array_equal(ref.conv2d_weight_rot180(x, GY_EX, W_EX.shape, 2), gw)


def test_example_c_coverage():
    """§4.4: 8×8, k = 3, s = 2, p = 1, d = 2: coverage [0,2,0,3,0,2,0,1]; rows 0,2,4,6 get 0."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, 8, 8))
    cfg = {"stride": 2, "padding": 1, "dilation": 2}
    # all-ones weight and upstream gradient: gX[i, j] = cov(i)·cov(j)
    ones_w, ones_gy = np.ones((1, 1, 3, 3)), np.ones((1, 1, 3, 3))
    gx = ref.conv2d_backward(x, ones_w, ones_gy, **cfg)[0]
    cov = np.array([0, 2, 0, 3, 0, 2, 0, 1], dtype=np.float64)
    np.testing.assert_array_equal(gx[0, 0], np.outer(cov, cov))
    # random weight and gradient: the never-read rows and columns are exactly zero
    w, gy = rng.standard_normal((1, 1, 3, 3)), rng.standard_normal((1, 1, 3, 3))
    gx, gw, _ = ref.conv2d_backward(x, w, gy, **cfg)
    for r in (0, 2, 4, 6):
        assert not gx[0, 0, r, :].any() and not gx[0, 0, :, r].any()
    np.testing.assert_allclose(ref.conv2d_input_inserted(gy, w, x.shape, **cfg), gx, atol=1e-12)
    np.testing.assert_allclose(ref.conv2d_weight_rot180(x, gy, w.shape, **cfg), gw, atol=1e-12)


def test_avg_pool_divisor_example():
    """§5.2: H = W = 6, k = 3, s = 2, p = 1, ceil: divisors [3,3,3,2] / [2,3,3,1]."""
    x = np.ones((1, 1, 6, 6))
    y = ref.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=True)
    assert y.shape == (1, 1, 4, 4)
    real = np.array([2, 3, 3, 1], dtype=np.float64)  # input cells inside each window
    divisor = np.array([3, 3, 3, 2], dtype=np.float64)
    np.testing.assert_allclose(y[0, 0], np.outer(real, real) / np.outer(divisor, divisor))
    assert y[0, 0, 0, 0] == pytest.approx(4 / 9) and y[0, 0, 3, 3] == pytest.approx(1 / 4)
    y = ref.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)
    np.testing.assert_allclose(y, np.ones((1, 1, 4, 4)))
    # the backward divides by the same divisors: with all-ones gY, gX[i, j] = Σ_windows 1/D;
    # row 5 is read by windows o = 2 (divisor factor 3) and o = 3 (factor 1)
    gx = ref.avg_pool2d_backward(np.ones((1, 1, 4, 4)), x.shape, 3, 2, 1, ceil_mode=True,
                                 count_include_pad=False)
    assert gx[0, 0, 5, 5] == pytest.approx((1 / 3 + 1 / 1) ** 2)


def test_ceil_mode_correction_example():
    """§5.1: H = 5, k = 2, s = 2, p = 1, ceil -> H_out = 3 (not 4)."""
    assert ref.avg_pool2d(np.ones((1, 1, 5, 5)), 2, 2, 1, ceil_mode=True).shape == (1, 1, 3, 3)


def test_seed_avg_pool_k2():
    """Seed pooling ①: k = s = 2, each input cell gets a quarter of its window's gradient."""
    rng = np.random.default_rng(1)
    x, gy = rng.standard_normal((1, 2, 4, 4)), rng.standard_normal((1, 2, 2, 2))
    y = ref.avg_pool2d(x, 2)
    np.testing.assert_allclose(y, x.reshape(1, 2, 2, 2, 2, 2).mean(axis=(3, 5)))
    gx = ref.avg_pool2d_backward(gy, x.shape, 2)
    i, j = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
    np.testing.assert_allclose(gx, gy[:, :, i // 2, j // 2] / 4)


# ----------------------------------------------------------------------------------------------
# conv2d: forms agree, finite differences, PyTorch
# ----------------------------------------------------------------------------------------------
# (N, C_in, C_out, H, W, k, stride, padding, dilation, groups)
CONV_CONFIGS = [
    (2, 3, 4, 7, 6, (3, 2), (2, 1), (1, 0), (1, 2), 1),  # rectangular everything
    (1, 4, 6, 7, 7, 3, 2, 1, 1, 2),  # groups
    (2, 3, 3, 6, 5, 3, 1, 2, 2, 3),  # depthwise, dilation
    (1, 2, 2, 6, 5, (4, 2), 1, "same", (1, 2), 1),  # asymmetric 'same', even kernel
    (1, 4, 2, 5, 6, (2, 3), 1, "same", 2, 2),  # asymmetric 'same' with groups
    (1, 2, 3, 8, 7, 2, 3, 3, 1, 1),  # padding >= k_eff (crop), s > k, r > 0
    (2, 2, 2, 5, 6, 1, 2, 0, 1, 1),  # 1×1 kernel, stride 2
    (1, 2, 4, 6, 6, 3, 2, "valid", 1, 2),  # 'valid', r = 1
]
CONV_IDS = [f"cfg{i}" for i in range(len(CONV_CONFIGS))]


def conv_case(cfg, seed):
    N, C_in, C_out, H, W, k, s, p, d, g = cfg
    kh, kw = (k, k) if isinstance(k, int) else k
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C_in, H, W))
    w = rng.standard_normal((C_out, C_in // g, kh, kw))
    b = rng.standard_normal(C_out)
    kwargs = {"stride": s, "padding": p, "dilation": d, "groups": g}
    return x, w, b, kwargs, rng


@pytest.mark.parametrize("cfg", CONV_CONFIGS, ids=CONV_IDS)
def test_conv_backward_forms_agree(cfg):
    """Inserted-grad gX (3.2a) and Rot180 gW (3.2c) equal the index form (3.1)."""
    x, w, b, kwargs, rng = conv_case(cfg, 2)
    y = ref.conv2d(x, w, b, **kwargs)
    gy = rng.standard_normal(y.shape)
    gx, gw, gb = ref.conv2d_backward(x, w, gy, **kwargs)
    assert gx.shape == x.shape and gw.shape == w.shape and gb.shape == b.shape
    np.testing.assert_allclose(ref.conv2d_input_inserted(gy, w, x.shape, **kwargs), gx,
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ref.conv2d_weight_rot180(x, gy, w.shape, **kwargs), gw,
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gb, gy.sum(axis=(0, 2, 3)), rtol=1e-12)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("cfg", CONV_CONFIGS, ids=CONV_IDS)
def test_conv_matches_torch(cfg):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, w, b, kwargs, rng = conv_case(cfg, 3)
    y = ref.conv2d(x, w, b, **kwargs)
    gy = rng.standard_normal(y.shape)
    gx, gw, gb = ref.conv2d_backward(x, w, gy, **kwargs)

    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = F.conv2d(tx, tw, tb, **kwargs)
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gw, tw.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gb, tb.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_conv_finite_differences():
    """Central differences (float64, eps 1e-6) of L = <gY, conv2d(x, w, b)>."""
    cfg = (1, 2, 2, 5, 4, (2, 3), (2, 1), (1, 1), (2, 1), 2)
    x, w, b, kwargs, rng = conv_case(cfg, 4)
    gy = rng.standard_normal(ref.conv2d(x, w, b, **kwargs).shape)
    gx, gw, gb = ref.conv2d_backward(x, w, gy, **kwargs)
    eps = 1e-6

    def numeric(arr):
        grad = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            saved = arr[idx]
            arr[idx] = saved + eps
            plus = np.sum(gy * ref.conv2d(x, w, b, **kwargs))
            arr[idx] = saved - eps
            minus = np.sum(gy * ref.conv2d(x, w, b, **kwargs))
            arr[idx] = saved
            grad[idx] = (plus - minus) / (2 * eps)
        return grad

    np.testing.assert_allclose(gx, numeric(x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gw, numeric(w), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gb, numeric(b), rtol=1e-6, atol=1e-7)


def test_conv_float32_in_float32_out():
    x, w, b, kwargs, rng = conv_case(CONV_CONFIGS[1], 5)
    x32, w32, b32 = x.astype(np.float32), w.astype(np.float32), b.astype(np.float32)
    y = ref.conv2d(x32, w32, b32, **kwargs)
    assert y.dtype == np.float32
    gy = rng.standard_normal(y.shape).astype(np.float32)
    assert all(g.dtype == np.float32 for g in ref.conv2d_backward(x32, w32, gy, **kwargs))
    assert ref.conv2d_input_inserted(gy, w32, x.shape, **kwargs).dtype == np.float32
    assert ref.conv2d_weight_rot180(x32, gy, w.shape, **kwargs).dtype == np.float32
    np.testing.assert_allclose(y, ref.conv2d(x32.astype(np.float64), w32.astype(np.float64),
                                             b32.astype(np.float64), **kwargs), rtol=1e-6)


def test_conv_rejects_bad_arguments():
    x, w = np.zeros((1, 2, 5, 5)), np.zeros((2, 2, 3, 3))
    with pytest.raises(ValueError):
        ref.conv2d(x[0], w)  # 3-D input
    with pytest.raises(TypeError):
        ref.conv2d(x.astype(np.int64), w)
    with pytest.raises(ValueError):
        ref.conv2d(x, w, padding="same", stride=2)
    with pytest.raises(ValueError):
        ref.conv2d(x, np.zeros((2, 2, 7, 7)))  # kernel does not fit
    with pytest.raises(ValueError):
        ref.conv2d_backward(x, w, np.zeros((1, 2, 4, 4)))  # gy has the wrong shape
    with pytest.raises(ValueError):
        ref.conv2d_input_inserted(np.zeros((1, 2, 3, 3)), w, (1, 2, 5))


# ----------------------------------------------------------------------------------------------
# pooling against PyTorch
# ----------------------------------------------------------------------------------------------
# (H, W, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_CONFIGS = [
    (6, 6, 3, 2, 1, True, True, None),  # §5.2 example
    (6, 6, 3, 2, 1, True, False, None),
    (7, 6, (3, 2), (2, 1), (1, 0), False, False, None),
    (5, 7, 3, 2, 1, True, True, 5),  # divisor_override
    (8, 8, 2, 3, 0, False, True, None),  # s > k: gap rows get 0
    (5, 5, 3, 1, 1, False, False, None),  # s < k: overlaps add
    (5, 5, 2, 2, 1, True, True, None),  # ceil-mode correction drops a window
]


@pytest.mark.parametrize("cfg", AVG_CONFIGS, ids=[f"cfg{i}" for i in range(len(AVG_CONFIGS))])
def test_avg_pool_matches_torch(cfg):
    torch = pytest.importorskip("torch")
    H, W, k, s, p, ceil_mode, cip, div = cfg
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 2, H, W))
    kwargs = {"kernel_size": k, "stride": s, "padding": p, "ceil_mode": ceil_mode,
              "count_include_pad": cip, "divisor_override": div}
    y = ref.avg_pool2d(x, **kwargs)
    gy = rng.standard_normal(y.shape)
    gx = ref.avg_pool2d_backward(gy, x.shape, **kwargs)

    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.avg_pool2d(tx, **kwargs)
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-12, atol=1e-12)


# (H, W, kernel, stride, padding, dilation, ceil_mode)
MAX_CONFIGS = [
    (7, 7, 3, 2, 1, 1, True),
    (6, 7, 2, 1, 1, 2, False),
    (7, 6, (3, 2), (2, 1), (1, 0), (2, 1), True),
    (8, 8, 2, 3, 0, 1, False),  # gaps
    (5, 5, 3, 1, 1, 1, False),  # overlapping windows select the same cell
]


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("cfg", MAX_CONFIGS, ids=[f"cfg{i}" for i in range(len(MAX_CONFIGS))])
def test_max_pool_matches_torch(cfg, ties):
    """Values, first-occurrence argmax and gradients equal PyTorch's, also on many ties."""
    torch = pytest.importorskip("torch")
    H, W, k, s, p, d, ceil_mode = cfg
    rng = np.random.default_rng(7)
    shape = (2, 2, H, W)
    x = rng.integers(0, 3, shape).astype(np.float64) if ties else rng.standard_normal(shape)
    kwargs = {"kernel_size": k, "stride": s, "padding": p, "dilation": d,
              "ceil_mode": ceil_mode}
    y, argmax = ref.max_pool2d(x, **kwargs)
    assert argmax.dtype == np.int64 and argmax.shape == y.shape
    gy = rng.standard_normal(y.shape)
    gx = ref.max_pool2d_backward(gy, argmax, x.shape, **kwargs)

    tx = torch.tensor(x, requires_grad=True)
    ty, tind = torch.nn.functional.max_pool2d(tx, return_indices=True, **kwargs)
    ty.backward(torch.tensor(gy))
    np.testing.assert_array_equal(y, ty.detach().numpy())
    # window-local u·kw + v -> flat input index i·W + j
    kw = k if isinstance(k, int) else k[1]
    sh, sw = (s, s) if isinstance(s, int) else s
    ph, pw = (p, p) if isinstance(p, int) else p
    dh, dw = (d, d) if isinstance(d, int) else d
    o_h = np.arange(y.shape[2])[:, None]
    o_w = np.arange(y.shape[3])[None, :]
    u, v = np.divmod(argmax, kw)
    flat = (sh * o_h + dh * u - ph) * W + (sw * o_w + dw * v - pw)
    np.testing.assert_array_equal(flat, tind.numpy())
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_max_pool_window_without_input_cell():
    """H = 2, k = 2, p = 1, d = 3: the only window reads rows −1 and 2 -> −∞, no gradient."""
    x = np.arange(4.0).reshape(1, 1, 2, 2)
    y, argmax = ref.max_pool2d(x, 2, 1, 1, 3)
    assert y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] == -np.inf and argmax[0, 0, 0, 0] == -1
    gx = ref.max_pool2d_backward(np.ones((1, 1, 1, 1)), argmax, x.shape, 2, 1, 1, 3)
    np.testing.assert_array_equal(gx, np.zeros_like(x))


def test_max_pool_infinities_and_nan():
    """A window of real −∞ selects its first real cell; the first NaN wins (§5.3)."""
    x = np.full((1, 1, 3, 3), -np.inf)
    y, argmax = ref.max_pool2d(x, 2, 2, 1)
    assert np.all(y == -np.inf)
    np.testing.assert_array_equal(argmax[0, 0], [[3, 2], [1, 0]])  # first cell inside the input
    x = np.array([[1.0, np.nan], [np.nan, 5.0]])[None, None]
    y, argmax = ref.max_pool2d(x, 2)
    assert np.isnan(y[0, 0, 0, 0]) and argmax[0, 0, 0, 0] == 1


# (H, W, output_size)
ADAPTIVE_CONFIGS = [(7, 5, (3, 2)), (4, 6, (3, 4)), (3, 3, (5, 4)), (5, 6, (None, 2)), (8, 8, 3)]


@pytest.mark.parametrize("cfg", ADAPTIVE_CONFIGS,
                         ids=[f"cfg{i}" for i in range(len(ADAPTIVE_CONFIGS))])
def test_adaptive_avg_pool_matches_torch(cfg):
    torch = pytest.importorskip("torch")
    H, W, output_size = cfg
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 2, H, W))
    y = ref.adaptive_avg_pool2d(x, output_size)
    gy = rng.standard_normal(y.shape)
    gx = ref.adaptive_avg_pool2d_backward(gy, x.shape, output_size)

    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.adaptive_avg_pool2d(tx, output_size)
    ty.backward(torch.tensor(gy))
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gx, tx.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_pools_float32_in_float32_out():
    x = np.random.default_rng(9).standard_normal((1, 2, 5, 5)).astype(np.float32)
    y = ref.avg_pool2d(x, 2)
    assert y.dtype == np.float32
    assert ref.avg_pool2d_backward(y, x.shape, 2).dtype == np.float32
    y, argmax = ref.max_pool2d(x, 2)
    assert y.dtype == np.float32
    assert ref.max_pool2d_backward(y, argmax, x.shape, 2).dtype == np.float32
    y = ref.adaptive_avg_pool2d(x, 3)
    assert y.dtype == np.float32
    assert ref.adaptive_avg_pool2d_backward(y, x.shape, 3).dtype == np.float32


def test_pools_reject_bad_arguments():
    x = np.zeros((1, 1, 6, 6))
    with pytest.raises(ValueError):
        ref.avg_pool2d(x, 2, padding=2)  # more than half the kernel
    with pytest.raises(ValueError):
        ref.avg_pool2d(x, 2, divisor_override=0)
    with pytest.raises(ValueError):
        ref.max_pool2d(x[0], 2)


# ----------------------------------------------------------------------------------------------
# linear and cross-entropy
# ----------------------------------------------------------------------------------------------
def test_linear_and_cross_entropy_match_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(10)
    x, w, b = rng.standard_normal((3, 5)), rng.standard_normal((4, 5)), rng.standard_normal(4)
    np.testing.assert_allclose(ref.linear(x, w, b), x @ w.T + b, rtol=1e-12)
    np.testing.assert_allclose(ref.linear(x, w), x @ w.T, rtol=1e-12)
    logits, target = rng.standard_normal((4, 6)), np.array([0, 5, 2, 2])
    expected = F.cross_entropy(torch.tensor(logits), torch.tensor(target)).item()
    assert ref.cross_entropy(logits, target) == pytest.approx(expected, rel=1e-12)


def test_cross_entropy_is_stable():
    logits = np.array([[1000.0, 0.0, -1000.0], [-1000.0, 1000.0, 0.0]])
    loss = ref.cross_entropy(logits, np.array([0, 2]))
    assert np.isfinite(loss) and loss == pytest.approx(500.0)
    assert ref.cross_entropy(logits.astype(np.float32), np.array([0, 0])).dtype == np.float32
