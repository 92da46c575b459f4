"""Hypothesis strategies shared by the kernel tests: valid geometries of conv2d, the pools,
conv_transpose2d and bare kernel windows, each drawn from its output size and remainder so
that odd sizes, strides larger than the kernel, padding and non-divisible windows are common.

Each configuration class builds the arrays of one drawn case (``arrays(seed)``) and the keyword
arguments of the op under test.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from numcnn.ops import transpose
from numcnn.ops.shapes import conv_geometry, pool_geometry

#: Seeds of the random arrays of a drawn case.
SEEDS = st.integers(0, 2**32 - 1)


# --- conv2d -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Convolution:
    """What a conv2d and a conv_transpose2d configuration share: x (N, C_in, H, W), the
    kernel, the conv's keyword arguments, and the random arrays of one case."""

    N: int
    C_in: int
    C_out: int
    groups: int
    H: int
    W: int
    kh: int
    kw: int
    stride: tuple
    padding: object
    dilation: tuple

    @property
    def x_shape(self):
        return (self.N, self.C_in, self.H, self.W)

    @property
    def conv_kwargs(self):
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation,
                "groups": self.groups}

    @property
    def w_shape(self) -> tuple:
        raise NotImplementedError

    @property
    def out_shape(self) -> tuple:
        raise NotImplementedError

    def arrays(self, seed, dtype=np.float64):
        """Random x, w, b and an upstream gradient gy of the output's shape (never all ones)."""
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(self.x_shape).astype(dtype)
        w = rng.standard_normal(self.w_shape).astype(dtype)
        b = rng.standard_normal(self.C_out).astype(dtype)
        gy = rng.standard_normal(self.out_shape).astype(dtype)
        return x, w, b, gy


@dataclass(frozen=True)
class ConvConfig(_Convolution):
    """One conv2d configuration: w (C_out, C_in/g, kh, kw)."""

    @property
    def w_shape(self):
        return (self.C_out, self.C_in // self.groups, self.kh, self.kw)

    @property
    def kwargs(self):
        return self.conv_kwargs

    @property
    def out_shape(self):
        return conv_geometry(self.x_shape, self.w_shape, **self.kwargs).output_shape


@st.composite
def conv_axis(draw, max_out=3, max_pad=3):
    """One spatial axis (H, k, s, d, p) with H_out >= 1, built from H_out and the remainder r.

    ``H + 2p = s(H_out − 1) + k_eff + r`` (SPEC 2.2a): drawing H_out and r in [0, s) directly
    makes non-divisible sizes (r > 0), strides larger than the kernel and padding larger than the
    kernel all common.
    """
    k = draw(st.integers(1, 4))
    s = draw(st.integers(1, 4))
    d = draw(st.integers(1, 3))
    keff = d * (k - 1) + 1
    out = draw(st.integers(1, max_out))
    r = draw(st.integers(0, s - 1))
    span = s * (out - 1) + keff + r                                   # = H + 2p
    p = draw(st.integers(0, min(max_pad, (span - 1) // 2)))
    return span - 2 * p, k, s, d, p


@st.composite
def conv_configs(draw, max_out=3, max_channels=2, max_batch=2, same=True):
    """Valid conv2d configurations: groups divide both channel counts, output >= 1 on both axes;
    H != W, kh != kw, strides 1..4 (also > kernel), padding (also > kernel), dilation, r > 0,
    'same' and 'valid' padding all occur."""
    g = draw(st.integers(1, 3))
    C_in = g * draw(st.integers(1, max_channels))
    C_out = g * draw(st.integers(1, max_channels))
    N = draw(st.integers(1, max_batch))
    if same and draw(st.integers(0, 5)) == 0:
        # 'same' padding: stride 1, any kernel (even kernels pad one more after), any dilation
        kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
        dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
        H, W = draw(st.integers(1, 7)), draw(st.integers(1, 7))
        return ConvConfig(N, C_in, C_out, g, H, W, kh, kw, (1, 1), "same", (dh, dw))
    H, kh, sh, dh, ph = draw(conv_axis(max_out))
    W, kw, sw, dw, pw = draw(conv_axis(max_out))
    if ph == pw:
        padding = draw(st.sampled_from([ph, (ph, ph)] + (["valid"] if ph == 0 else [])))
    else:
        padding = (ph, pw)
    return ConvConfig(N, C_in, C_out, g, H, W, kh, kw, (sh, sw), padding, (dh, dw))


# --- pooling ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PoolConfig:
    N: int
    C: int
    H: int
    W: int
    kernel_size: object
    stride: object
    padding: object
    dilation: object
    ceil_mode: bool
    count_include_pad: bool
    divisor_override: object

    @property
    def x_shape(self):
        return (self.N, self.C, self.H, self.W)

    @property
    def geo_kwargs(self):
        return {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding,
                    "ceil_mode": self.ceil_mode}

    @property
    def avg_kwargs(self):
        return dict(self.geo_kwargs, count_include_pad=self.count_include_pad,
                    divisor_override=self.divisor_override)

    @property
    def max_kwargs(self):
        return dict(self.geo_kwargs, dilation=self.dilation)

    def geometry(self, dilated):
        return pool_geometry(self.x_shape, self.kernel_size, self.stride, self.padding,
                             self.dilation if dilated else 1, self.ceil_mode)

    def arrays(self, seed, dilated, dtype=np.float64):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal(self.x_shape).astype(dtype)
        gy = rng.standard_normal(self.geometry(dilated).output_shape).astype(dtype)
        return x, gy


@st.composite
def pool_axis(draw, dilated):
    """One axis (H, k, s, p, d): stride 1..5 (also > kernel), 2p <= k, H + 2p >= k_eff, built
    from the floor-mode output size and a remainder r in [0, s) so r > 0 (ceil-mode overhang)
    is common."""
    k = draw(st.integers(1, 4))
    s = draw(st.integers(1, 5))
    d = draw(st.integers(1, 3)) if dilated else 1
    keff = d * (k - 1) + 1
    out = draw(st.integers(1, 3))
    r = draw(st.integers(0, s - 1))
    span = s * (out - 1) + keff + r                                   # = H + 2p
    p = draw(st.integers(0, min(k // 2, (span - 1) // 2)))
    return span - 2 * p, k, s, p, d


def _param(draw, h, w):
    """An int when both axes agree (sometimes), else a pair."""
    if h == w and draw(st.booleans()):
        return h
    return (h, w)


@st.composite
def pool_configs(draw, dilated=False, max_batch=2, max_channels=3):
    N = draw(st.integers(1, max_batch))
    C = draw(st.integers(1, max_channels))
    H, kh, sh, ph, dh = draw(pool_axis(dilated))
    W, kw, sw, pw, dw = draw(pool_axis(dilated))
    stride = _param(draw, sh, sw)
    if (sh, sw) == (kh, kw) and draw(st.booleans()):
        stride = None
    divisor = draw(st.one_of(st.none(), st.integers(1, 7))) if not dilated else None
    return PoolConfig(N, C, H, W, _param(draw, kh, kw), stride, _param(draw, ph, pw),
                      _param(draw, dh, dw), draw(st.booleans()), draw(st.booleans()), divisor)


# --- conv_transpose2d ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TConfig(_Convolution):
    """One conv_transpose2d configuration: w (C_in, C_out/g, kh, kw)."""

    output_padding: tuple = (0, 0)

    @property
    def w_shape(self):
        return (self.C_in, self.C_out // self.groups, self.kh, self.kw)

    @property
    def kwargs(self):
        return {**self.conv_kwargs, "output_padding": self.output_padding}

    @property
    def out_shape(self):
        return transpose.conv_transpose_geometry(self.x_shape, self.w_shape,
                                                 **self.kwargs).output_shape


@st.composite
def t_axis(draw, max_in=4):
    """(H, k, s, d, p, r) of one axis with H_out >= 1: strides up to 4 (often > k), dilation,
    output_padding anywhere below max(s, d) (also s <= r < d), padding up to the limit."""
    H = draw(st.integers(1, max_in))
    k = draw(st.integers(1, 4))
    s = draw(st.integers(1, 4))
    d = draw(st.integers(1, 3))
    r = draw(st.integers(0, max(s, d) - 1))
    p = draw(st.integers(0, min(3, ((H - 1) * s + d * (k - 1) + r) // 2)))
    return H, k, s, d, p, r


@st.composite
def t_configs(draw, max_in=4, max_channels=2, max_batch=2):
    g = draw(st.integers(1, 3))
    C_in = g * draw(st.integers(1, max_channels))
    C_out = g * draw(st.integers(1, max_channels))
    N = draw(st.integers(1, max_batch))
    H, kh, sh, dh, ph, rh = draw(t_axis(max_in))
    W, kw, sw, dw, pw, rw = draw(t_axis(max_in))
    return TConfig(N, C_in, C_out, g, H, W, kh, kw, (sh, sw), (ph, pw), (dh, dw),
                   output_padding=(rh, rw))


# --- bare windows --------------------------------------------------------------------------------

@st.composite
def window_configs(draw):
    """(N, C, Hp, Wp, kh, kw, sh, sw, dh, dw, Ho, Wo) with every window inside the padded grid."""
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    axes = []
    for _ in range(2):
        k, s, d = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
        keff = d * (k - 1) + 1
        size = draw(st.integers(keff, keff + 9))
        axes.append((size, k, s, d, (size - keff) // s + 1))
    (Hp, kh, sh, dh, Ho), (Wp, kw, sw, dw, Wo) = axes
    return N, C, Hp, Wp, kh, kw, sh, sw, dh, dw, Ho, Wo
