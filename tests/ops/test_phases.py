"""A strided conv read from its phase planes (docs/math.md §7.6): the layout, the forward, the
weight gradient, and the engine that uses them for conv_transpose2d's backward.

Every geometry drawn has a stride and kernel sizes that are multiples of it (the only ones
``engine.on_phases`` accepts); each result is checked against the im2col form and the naive
loops of ``numcnn.reference``.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numcnn import reference as ref
from numcnn.ops import conv, engine, parallel, windows
from numcnn.ops.shapes import conv_geometry
from strategies import SEEDS, ConvConfig


@st.composite
def phase_axis(draw):
    """One axis (H, k, s, p) with k a multiple of s; the output is 1..3 wide, and the padded
    size leaves a remainder (rows no window reads) as often as not."""
    s = draw(st.integers(1, 3))
    k = s * draw(st.integers(1, 3))
    out = draw(st.integers(1, 3))
    span = s * (out - 1) + k + draw(st.integers(0, s - 1))             # = H + 2p
    p = draw(st.integers(0, min(3, (span - 1) // 2)))
    return span - 2 * p, k, s, p


@st.composite
def phase_configs(draw):
    """conv2d configurations that ``engine.on_phases`` accepts: a stride on at least one axis."""
    H, kh, sh, ph = draw(phase_axis())
    W, kw, sw, pw = draw(phase_axis())
    if max(sh, sw) == 1:
        sh, kh = 2, 2 * kh
        H += kh // 2                                                  # the same output size
    g = draw(st.integers(1, 3))
    C_in, C_out = g * draw(st.integers(1, 2)), g * draw(st.integers(1, 2))
    N = draw(st.integers(1, 3))
    return ConvConfig(N, C_in, C_out, g, H, W, kh, kw, (sh, sw), (ph, pw), (1, 1))


def test_phase_rows_definition(rng):
    """``Z[c, a, b, i·(N·W_q) + n·W_q + j] = X_pad[n, c, s·i + a, s·j + b]``, 0 beyond X_pad and
    in the W_q cells after the last row."""
    x = rng.standard_normal((3, 2, 7, 6))
    geo = conv_geometry(x.shape, (4, 2, 4, 2), (2, 2), (1, 2), 1, 1)
    z = windows.phase_rows(x, geo)
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (2, 2)))
    N, Hq, Wq = 3, geo.Hq, geo.Wq
    assert z.shape == (2, 2, 2, Hq * N * Wq + Wq) and (Hq, Wq) == (5, 5)
    expected = np.zeros_like(z)
    for c in range(2):
        for a in range(2):
            for b in range(2):
                for i in range(Hq):
                    for n in range(N):
                        for j in range(Wq):
                            h, w = 2 * i + a, 2 * j + b
                            if h < xp.shape[2] and w < xp.shape[3]:
                                expected[c, a, b, i * N * Wq + n * Wq + j] = xp[n, c, h, w]
    np.testing.assert_array_equal(z, expected)


@settings(max_examples=60)
@given(cfg=phase_configs(), seed=SEEDS)
def test_forward_and_weight_gradient_on_phases_equal_the_im2col_form(cfg, seed):
    x, w, _, gy = cfg.arrays(seed)
    geo = conv_geometry(x.shape, w.shape, **cfg.kwargs)
    assert engine.on_phases(geo)
    z = windows.phase_rows(x, geo)
    cols = conv.columns(x, geo)
    np.testing.assert_allclose(conv.forward_on_phases(z, w, geo), conv.forward(x, w, None, geo, cols),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv.grad_weight_on_phases(z, gy, geo),
                               conv.grad_weight(cols, gy, geo), rtol=1e-12, atol=1e-12)


@settings(max_examples=25)
@given(cfg=phase_configs(), seed=SEEDS)
def test_engine_on_phases_matches_the_reference_loops(cfg, seed):
    """What conv_transpose2d's backward runs (``conv2d_forward_and_weight``), against the naive
    loops, in one chunk and in many (a budget of one sample per thread)."""
    x, w, _, gy = cfg.arrays(seed)
    kwargs = cfg.kwargs
    y_ref = ref.conv2d(x, w, None, **kwargs)
    gw_ref = ref.conv2d_backward(x, w, gy, **kwargs)[1]
    budget = engine.COLS_BUDGET_BYTES
    for chunk_budget in (budget, 1):
        engine.COLS_BUDGET_BYTES = chunk_budget
        try:
            y, gw = engine.conv2d_forward_and_weight(x, w, gy, **kwargs)
        finally:
            engine.COLS_BUDGET_BYTES = budget
        np.testing.assert_allclose(y, y_ref, rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(gw, gw_ref, rtol=1e-11, atol=1e-11)


def test_which_geometries_run_on_phases():
    def geo(k, s, d=1):
        return conv_geometry((2, 3, 12, 12), (4, 3) + k, s, 1, d, 1)
    assert engine.on_phases(geo((4, 4), 2))                           # a decoder layer
    assert engine.on_phases(geo((2, 3), (2, 1)))                      # a stride on one axis
    assert engine.on_phases(geo((6, 3), 3))
    assert not engine.on_phases(geo((3, 3), 1))                       # no stride: im2col
    assert not engine.on_phases(geo((3, 3), 2))                       # k3 s2: a plane per tap
    assert not engine.on_phases(geo((4, 4), 2, 2))                    # dilation


@pytest.mark.parametrize("value", [np.inf, np.nan])
def test_a_non_finite_input_gets_the_exact_weight_gradient(value, rng):
    """A wrap-around position reads the bad cell too, with a zero of gY: ``0·inf`` is NaN in
    cells of gW that the exact sum leaves finite. The engine then recomputes gW by im2col."""
    x, w = rng.standard_normal((2, 2, 8, 8)), rng.standard_normal((3, 2, 4, 4))
    x[1, 0, 5, 7] = value
    kwargs = {"stride": 2, "padding": 1}
    geo = conv_geometry(x.shape, w.shape, **kwargs)
    gy = rng.standard_normal(geo.output_shape)
    exact = engine.conv_grad_weight(x, gy, geo)
    with np.errstate(invalid="ignore"):
        on_phases = conv.grad_weight_on_phases(windows.phase_rows(x, geo), gy, geo)
    assert (np.isnan(on_phases) & ~np.isnan(exact)).any()             # the test can fail
    y, gw = engine.conv2d_forward_and_weight(x, w, gy, **kwargs)
    np.testing.assert_array_equal(gw, exact)
    np.testing.assert_allclose(y, engine.conv2d_forward(x, w, None, **kwargs), rtol=1e-12,
                               atol=1e-12)                            # NaN where it is NaN


@settings(max_examples=15)
@given(cfg=phase_configs(), seed=SEEDS)
def test_threads_change_no_bit_of_the_forward(cfg, seed):
    x, w, _, gy = cfg.arrays(seed, np.float32)
    old_min, before = parallel.MIN_PARALLEL_ELEMENTS, parallel.get_num_threads()
    parallel.set_num_threads(1)
    try:
        one = engine.conv2d_forward_and_weight(x, w, gy, **cfg.kwargs)[0]
        parallel.MIN_PARALLEL_ELEMENTS = 0
        parallel.set_num_threads(2)
        two = engine.conv2d_forward_and_weight(x, w, gy, **cfg.kwargs)[0]
    finally:
        parallel.MIN_PARALLEL_ELEMENTS = old_min
        parallel.set_num_threads(before)
    np.testing.assert_array_equal(one, two)
