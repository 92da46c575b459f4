"""Window gather/scatter (im2col, col2im and friends) and the size arithmetic of shapes.py.

The size formulas are checked against enumeration (count the windows that fit), against the
identity H + 2p = s(H_out − 1) + k_eff + r (SPEC 2.2a) and against PyTorch; im2col against its
index definition and ``sliding_window_view`` (SPEC §6.2); col2im as the exact adjoint of im2col
and against ``np.add.at``.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import sliding_window_view

from numcnn.ops import shapes, windows
from strategies import SEEDS, window_configs

# --- size arithmetic --------------------------------------------------------------------------

@given(size=st.integers(1, 30), k=st.integers(1, 6), s=st.integers(1, 6), d=st.integers(1, 4),
       before=st.integers(0, 5), after=st.integers(0, 5))
@settings(max_examples=60)
def test_conv_output_size_counts_the_windows_that_fit(size, k, s, d, before, after):
    """H_out = #{o >= 0 : s·o + k_eff <= H_p}; r = H_p − s(H_out−1) − k_eff, in [0, s) (2.2a)."""
    padded = size + before + after
    keff = shapes.effective_kernel(k, d)
    fitting = sum(1 for o in range(padded + 1) if s * o + keff <= padded)
    out = shapes.conv_output_size(size, k, s, (before, after), d)
    if fitting == 0:
        assert out < 1
        return
    assert out == fitting
    r = shapes.conv_remainder(size, k, s, (before, after), d)
    assert 0 <= r < s
    assert padded == s * (out - 1) + keff + r


@given(size=st.integers(1, 25), k=st.integers(1, 6), s=st.integers(1, 6), d=st.integers(1, 3),
       ceil=st.booleans(), data=st.data())
@settings(max_examples=60)
def test_pool_output_size_rule(size, k, s, d, ceil, data):
    """Floor mode: the windows that fit. Ceil mode: the windows that START inside the input or
    the left padding and that are needed to cover the padded extent (PyTorch's rule, §5.1)."""
    p = data.draw(st.integers(0, k // 2))
    padded, keff = size + 2 * p, d * (k - 1) + 1
    out = shapes.pool_output_size(size, k, s, p, d, ceil)
    fit = sum(1 for o in range(padded + 1) if s * o + keff <= padded)
    if not ceil:
        assert out == fit if fit else out < 1
        return
    if padded < keff:
        return
    # ceil: one extra window when the floor windows leave a remainder, unless it would start in
    # the right padding (or beyond)
    extra = 1 if (padded - keff) % s else 0
    if extra and s * fit >= size + p:
        extra = 0
    assert out == fit + extra


def test_pool_output_size_matches_torch(torch):
    """The output size of both pools equals PyTorch's on a grid of small configurations."""
    fn = torch.nn.functional
    for size in range(1, 9):
        for k in range(1, 5):
            for s in range(1, 5):
                for p in range(k // 2 + 1):
                    for d in (1, 2):
                        for ceil in (False, True):
                            if size + 2 * p < d * (k - 1) + 1:
                                continue
                            x = torch.zeros(1, 1, size, 1)
                            got = shapes.pool_output_size(size, k, s, p, d, ceil)
                            expected = fn.max_pool2d(x, (k, 1), (s, 1), (p, 0), (d, 1),
                                                     ceil).shape[2]
                            assert got == expected, (size, k, s, p, d, ceil)
                            if d == 1:
                                assert fn.avg_pool2d(x, (k, 1), (s, 1), (p, 0), ceil).shape[2] \
                                    == got


@given(H=st.integers(1, 9), W=st.integers(1, 9), kh=st.integers(1, 5), kw=st.integers(1, 5),
       dh=st.integers(1, 3), dw=st.integers(1, 3))
@settings(max_examples=50)
def test_same_padding_keeps_the_size(H, W, kh, kw, dh, dw):
    """'same' pads d(k−1) in total per axis, the odd unit after (PyTorch); output = input."""
    geo = shapes.conv_geometry((1, 1, H, W), (1, 1, kh, kw), 1, "same", (dh, dw))
    assert (geo.Ho, geo.Wo) == (H, W)
    for pad, k, d in ((geo.pad_h, kh, dh), (geo.pad_w, kw, dw)):
        assert pad[0] + pad[1] == d * (k - 1)
        assert pad[1] - pad[0] in (0, 1)
    valid = shapes.conv_geometry((1, 1, H + 9, W + 9), (1, 1, kh, kw), 1, "valid")
    assert valid.pad_h == valid.pad_w == (0, 0)


def test_conv_geometry_quantities():
    """Example D of SPEC §4.5, every per-axis quantity."""
    geo = shapes.conv_geometry((2, 4, 7, 6), (6, 2, 3, 2), stride=(2, 1), padding=(1, 0),
                               dilation=(1, 2), groups=2)
    assert (geo.keh, geo.kew) == (3, 3)
    assert (geo.Hp, geo.Wp) == (9, 6)
    assert (geo.Ho, geo.Wo) == (4, 4)
    assert (geo.rh, geo.rw) == (0, 0)
    assert geo.input_shape == (2, 4, 7, 6)
    assert geo.weight_shape == (6, 2, 3, 2)
    assert geo.output_shape == (2, 6, 4, 4)
    c = shapes.conv_geometry((1, 1, 8, 8), (1, 1, 3, 3), stride=2, padding=1, dilation=2)
    assert (c.keh, c.Hp, c.Ho, c.rh) == (5, 10, 3, 1)


def test_pool_geometry_defaults_and_extra_padding():
    geo = shapes.pool_geometry((1, 1, 5, 7), 2)
    assert (geo.sh, geo.sw, geo.Ho, geo.Wo, geo.eh, geo.ew) == (2, 2, 2, 3, 0, 0)
    geo = shapes.pool_geometry((1, 1, 5, 7), 2, ceil_mode=True)
    assert (geo.Ho, geo.Wo, geo.eh, geo.ew) == (3, 4, 1, 1)
    assert (geo.Hp, geo.Wp) == (6, 8)
    geo = shapes.pool_geometry((1, 1, 5, 5), 2, 2, 1, ceil_mode=True)
    assert (geo.Ho, geo.eh) == (3, 0)


def test_pair():
    assert shapes.pair(3) == (3, 3)
    assert shapes.pair((2, 1)) == (2, 1)
    assert shapes.pair([4, 5]) == (4, 5)
    assert shapes.pair(np.int64(2)) == (2, 2)
    assert all(type(v) is int for v in shapes.pair((np.int32(2), np.int64(3))))
    assert shapes.pair((7,)) == (7, 7)                 # a 1-tuple broadcasts, as PyTorch
    with pytest.raises(TypeError, match="size"):
        shapes.pair((1,), "size", single=False)
    for bad in (True, 2.0, (1, 2, 3), (), "3", (1.0, 2), None, (True, 1), (True,)):
        with pytest.raises(TypeError, match="size"):
            shapes.pair(bad, "size")
    with pytest.raises(ValueError, match=r"stride must be >= 1.*\(1, 0\)"):
        shapes.pair((1, 0), "stride", "conv2d", minimum=1)


# --- im2col / col2im --------------------------------------------------------------------------

@given(cfg=window_configs(), seed=SEEDS)
@settings(max_examples=50)
def test_im2col_definition_and_sliding_window_view(cfg, seed):
    """cols[n, c, u, v, o_h, o_w] = xp[n, c, s_h·o_h + d_h·u, s_w·o_w + d_w·v]."""
    N, C, Hp, Wp, kh, kw, sh, sw, dh, dw, Ho, Wo = cfg
    xp = np.random.default_rng(seed).standard_normal((N, C, Hp, Wp))
    cols = windows.im2col(xp, kh, kw, Ho, Wo, sh, sw, dh, dw)
    assert cols.shape == (N, C, kh, kw, Ho, Wo) and cols.flags.c_contiguous
    u, v, oh, ow = np.meshgrid(np.arange(kh), np.arange(kw), np.arange(Ho), np.arange(Wo),
                               indexing="ij")
    np.testing.assert_array_equal(cols, xp[:, :, sh * oh + dh * u, sw * ow + dw * v])
    keh, kew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    view = sliding_window_view(xp, (keh, kew), axis=(-2, -1))
    view = view[..., :sh * (Ho - 1) + 1:sh, :sw * (Wo - 1) + 1:sw, ::dh, ::dw]
    np.testing.assert_array_equal(cols, view.transpose(0, 1, 4, 5, 2, 3))


@pytest.mark.parametrize("Hp, Wp, k, s, d", [
    (14, 14, 5, 1, 1),     # stride-1 rows under 16 outputs: width windows, then row blocks
    (13, 12, 3, (1, 2), 2),  # the same with a column stride and dilation
    (24, 24, 3, 1, 1),     # 22 outputs a row: the window view
    (9, 70, 3, 2, 1),      # a stride and 34 outputs a row: the phase planes
])
@pytest.mark.parametrize("contiguous_out", [True, False])
def test_each_way_of_gathering_follows_the_definition(Hp, Wp, k, s, d, contiguous_out):
    """Each copy :func:`gather_windows` may choose, into a fresh or a strided ``out``."""
    xp = np.random.default_rng(0).standard_normal((2, 3, Hp, Wp))
    geo = shapes.conv_geometry(xp.shape, (1, 3, k, k), s, 0, d, 1)
    shape = (2, 3, k, k, geo.Ho, geo.Wo)
    out = np.empty(shape) if contiguous_out else np.empty(shape[:-1] + (2 * geo.Wo,))[..., ::2]
    windows.gather_windows(xp, geo, out)
    u, v, oh, ow = np.meshgrid(np.arange(k), np.arange(k), np.arange(geo.Ho), np.arange(geo.Wo),
                               indexing="ij")
    np.testing.assert_array_equal(out, xp[:, :, geo.sh * oh + geo.dh * u, geo.sw * ow + geo.dw * v])


@given(cfg=window_configs(), seed=SEEDS)
@settings(max_examples=50)
def test_col2im_is_the_adjoint_of_im2col_and_equals_add_at(cfg, seed):
    N, C, Hp, Wp, kh, kw, sh, sw, dh, dw, Ho, Wo = cfg
    rng = np.random.default_rng(seed)
    xp = rng.standard_normal((N, C, Hp, Wp))
    dcols = rng.standard_normal((N, C, kh, kw, Ho, Wo))
    back = windows.col2im(dcols, Hp, Wp, sh, sw, dh, dw)
    assert back.shape == xp.shape
    lhs = np.vdot(windows.im2col(xp, kh, kw, Ho, Wo, sh, sw, dh, dw), dcols)
    rhs = np.vdot(xp, back)
    assert abs(lhs - rhs) <= 1e-12 * (np.abs(dcols).sum() * np.abs(xp).max())
    expected = np.zeros_like(xp)
    u, v, oh, ow = np.meshgrid(np.arange(kh), np.arange(kw), np.arange(Ho), np.arange(Wo),
                               indexing="ij")
    n, c = np.arange(N)[:, None, None, None, None, None], np.arange(C)[None, :, None, None, None,
                                                                          None]
    np.add.at(expected, (n, c, sh * oh + dh * u, sw * ow + dw * v), dcols)
    np.testing.assert_allclose(back, expected, rtol=1e-13, atol=1e-14)


def test_col2im_of_ones_counts_coverage():
    """An all-ones scatter counts, per input cell, the windows that read it (§2.4)."""
    dcols = np.ones((1, 1, 3, 1, 3, 1))
    counts = windows.col2im(dcols, 10, 1, 2, 1, 2, 1)     # Hp 10, k 3, s 2, d 2: Ho 3
    # the windows read padded rows {0, 2, 4}, {2, 4, 6}, {4, 6, 8}; row 9 is the remainder.
    # Cropping p = 1 gives SPEC §4.4's coverage [0, 2, 0, 3, 0, 2, 0, 1].
    np.testing.assert_array_equal(counts[0, 0, :, 0], [1, 0, 2, 0, 3, 0, 2, 0, 1, 0])


@given(H=st.integers(1, 12), W=st.integers(1, 12), sh=st.integers(1, 4), sw=st.integers(1, 4),
       crop=st.tuples(*[st.integers(0, 3)] * 4), seed=SEEDS)
@settings(max_examples=60)
def test_merge_phase_planes_undoes_phase_planes_and_crops_in_the_same_pass(H, W, sh, sw, crop,
                                                                           seed):
    """merge(planes(X)) = X, and with a crop, exactly X's cropped cells (into ``out`` too)."""
    top, bottom, left, right = crop
    xp = np.random.default_rng(seed).standard_normal((2, 3, H + top + bottom, W + left + right))
    Hp, Wp = xp.shape[-2:]
    planes = windows.phase_planes(xp, sh, sw, -(-Hp // sh), -(-Wp // sw))
    np.testing.assert_array_equal(windows.merge_phase_planes(planes, Hp, Wp), xp)
    cropped = windows.merge_phase_planes(planes, Hp, Wp, (top, bottom), (left, right))
    np.testing.assert_array_equal(cropped, xp[:, :, top:top + H, left:left + W])
    out = np.full((2, 3, H, W), np.nan)
    windows.merge_phase_planes(planes, Hp, Wp, (top, bottom), (left, right), out=out)
    np.testing.assert_array_equal(out, cropped)


def test_dilate_pad_crop():
    g = np.arange(1.0, 7.0).reshape(1, 1, 2, 3)
    G = windows.dilate2d(g, 3, 2)
    assert G.shape == (1, 1, 4, 5)
    expected = np.zeros((4, 5))
    expected[::3, ::2] = g[0, 0]
    np.testing.assert_array_equal(G[0, 0], expected)
    assert windows.dilate2d(g, 1, 1) is g
    P = windows.pad2d(g, (1, 2), (0, 3), value=-1.0)
    assert P.shape == (1, 1, 5, 6)
    assert P[0, 0, 0, 0] == -1 and P[0, 0, 1, 0] == 1 and P[0, 0, 2, 2] == 6
    np.testing.assert_array_equal(windows.crop2d(P, (1, 2), (0, 3)), g)
    assert windows.pad2d(g, (0, 0), (0, 0)) is g
    # negative amounts crop
    Q = windows.pad_or_crop2d(g, -1, 1, 2, -1)
    assert Q.shape == (1, 1, 2, 4)
    np.testing.assert_array_equal(Q[0, 0], [[0, 0, 4, 5], [0, 0, 0, 0]])


def test_tap_slices():
    x = np.arange(100).reshape(10, 10)
    sl = windows.tap_slices(2, 1, 3, 2, 2, 3, 2, 1)
    # rows d_h·u + s_h·o_h = 4 + 2·o for o < 3; cols d_w·v + s_w·o_w = 1 + 3·o for o < 2
    np.testing.assert_array_equal(x[sl], x[np.ix_([4, 6, 8], [1, 4])])
