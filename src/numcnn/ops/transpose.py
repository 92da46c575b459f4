"""conv_transpose2d: the adjoint of conv2d, forward and both gradients   (docs/math.md §11).

A transposed convolution with weight W (C_in, C_out/g, kh, kw) maps x (N, C_in, H, W) to
y (N, C_out, Ho, Wo) with ``Ho = (H − 1)·s − 2p + d(k − 1) + output_padding + 1``. Read W as the
weight of a conv2d from C_out to C_in channels (its layout is exactly conv2d's (C_out', C_in'/g,
kh, kw) with C_out' = C_in, C_in' = C_out); call that conv ``K``, so ``K(z)`` maps
(N, C_out, Ho, Wo) to (N, C_in, H, W). Then

    forward  y  = Kᵀ x + b          = conv2d_input((N, C_out, Ho, Wo), W, x)  (+ b)
    backward gx = K gy              = conv2d_forward(gy, W)
             gW = ∂<gy, Kᵀx>/∂W     = conv2d_weight(gy, W.shape, x)   (input and gY exchanged)
             gb = Σ_{n,i,j} gy      = conv2d_bias(gy)

The three identities are the adjoint pair ``<K z, x> = <z, Kᵀ x>``: the seed's inserted
gradient (the conv's gX) *is* this forward. The module is a composition of the conv's public
kernels (:mod:`numcnn.ops.engine`), so their math and their execution (chunks, threads, buffers)
apply here unchanged; it adds no kernel of its own.

``output_padding`` r adds r rows at the end that no input pixel reaches (only the bias). When
r < s the conv K maps Ho back to exactly H rows (⌊(H−1)·s + r⌋/s + 1 = H); PyTorch also allows
s <= r < d, where K would see H + ⌊r/s⌋ rows, so x is then zero-extended at the end for the
forward and gx cropped back (:func:`_conv_rows`).

Dimension legend: N batch, C_in/C_out channels of the *transposed* op, g groups,
H/W input size, Ho/Wo output size, kh/kw kernel. Arrays x, w, b, y and gradients gx, gw, gb, gy.
"""
from __future__ import annotations

from dataclasses import dataclass
from numbers import Integral

import numpy as np

from .engine import (
    conv2d_bias,
    conv2d_forward,
    conv2d_forward_and_weight,
    conv2d_weight,
    conv_grad_input,
)
from .shapes import (
    Pair,
    batched_shape,
    check_bias,
    check_float_arrays,
    check_output_shape,
    conv_geometry,
    pair,
)

__all__ = [
    "ConvTransposeGeometry",
    "conv_transpose2d_bias",
    "conv_transpose2d_forward",
    "conv_transpose2d_input",
    "conv_transpose2d_weight",
    "conv_transpose_geometry",
    "conv_transpose_output_size",
]


def conv_transpose_output_size(size: int, k: int, s: int, p: int, d: int, r: int) -> int:
    """Ho = (H − 1)·s − 2p + d(k − 1) + r + 1   (PyTorch's rule)."""
    return (size - 1) * s - 2 * p + d * (k - 1) + r + 1


@dataclass(frozen=True)
class ConvTransposeGeometry:
    """Every size of one conv_transpose2d call; padding is symmetric per axis."""

    N: int
    C_in: int
    H: int
    W: int
    C_out: int
    kh: int
    kw: int
    stride: Pair
    padding: Pair
    output_padding: Pair
    dilation: Pair
    groups: int

    @property
    def Ho(self) -> int:
        return conv_transpose_output_size(self.H, self.kh, self.stride[0], self.padding[0],
                                          self.dilation[0], self.output_padding[0])

    @property
    def Wo(self) -> int:
        return conv_transpose_output_size(self.W, self.kw, self.stride[1], self.padding[1],
                                          self.dilation[1], self.output_padding[1])

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C_in, self.H, self.W)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.C_in, self.C_out // self.groups, self.kh, self.kw)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C_out, self.Ho, self.Wo)

    @property
    def conv_kwargs(self) -> dict:
        """The arguments of the conv2d K whose input gradient this op is."""
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation,
                "groups": self.groups}


def _groups(groups, op: str) -> int:
    if not isinstance(groups, Integral) or isinstance(groups, (bool, np.bool_)) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    return int(groups)


def conv_transpose_args(stride, padding, output_padding, dilation, groups,
                        op: str = "conv_transpose2d"):
    """Normalize and check the hyper-parameters alone: ``(s, p, r, d, g)`` as pairs and an int.

    Refusals as PyTorch's: stride and dilation >= 1, padding and output_padding >= 0 (no
    string padding), ``output_padding < max(stride, dilation)`` on each axis, groups >= 1.
    """
    if isinstance(padding, str):
        raise TypeError(f"{op}: padding must be an int or a pair of ints, got {padding!r} "
                        "(a transposed convolution has no 'same' or 'valid' padding)")
    s = pair(stride, "stride", op, minimum=1)
    p = pair(padding, "padding", op, minimum=0)
    r = pair(output_padding, "output_padding", op, minimum=0)
    d = pair(dilation, "dilation", op, minimum=1)
    for axis, ri, si, di in zip(("height", "width"), r, s, d):
        if ri >= max(si, di):
            raise ValueError(
                f"{op}: output_padding must be smaller than either stride or dilation, got "
                f"output_padding={r} with stride={s} and dilation={d} (the {axis} axis: "
                f"{ri} >= max({si}, {di}))")
    return s, p, r, d, _groups(groups, op)


def conv_transpose_geometry(x_shape, w_shape, stride=1, padding=0, output_padding=0, groups=1,
                            dilation=1, op: str = "conv_transpose2d") -> ConvTransposeGeometry:
    """Validate a conv_transpose2d configuration (x is 4-D here) and return its geometry."""
    N, C_in, H, W = batched_shape(x_shape, "input", op)
    if len(w_shape) != 4:
        raise ValueError(f"{op}: weight must be 4-D (C_in, C_out/groups, kh, kw), got shape "
                         f"{tuple(w_shape)}")
    s, p, r, d, g = conv_transpose_args(stride, padding, output_padding, dilation, groups, op)
    w_in, C_out_g, kh, kw = w_shape
    if w_in % g:
        raise ValueError(f"{op}: groups={g} must divide the input channels, but the weight of "
                         f"shape {tuple(w_shape)} has {w_in} (weight layout (C_in, C_out/groups, "
                         "kh, kw))")
    if C_in != w_in:
        raise ValueError(f"{op}: input has {C_in} channels but weight expects {w_in} (weight "
                         f"shape {tuple(w_shape)} is (C_in, C_out/groups, kh, kw))")
    if min(w_in, C_out_g, kh, kw) < 1:  # as PyTorch
        raise ValueError(f"{op}: weight shape {tuple(w_shape)} has an empty axis; expected at "
                         "least 1 input and 1 output channel and a kernel of at least 1x1 "
                         "(weight layout (C_in, C_out/groups, kh, kw))")
    if min(H, W) < 1:  # the output formula would give a size, but there is nothing to spread
        raise ValueError(f"{op}: input height and width must be >= 1, got {H}x{W} "
                         f"(input shape {tuple(x_shape)})")
    geo = ConvTransposeGeometry(N, C_in, H, W, C_out_g * g, kh, kw, s, p, r, d, g)
    if geo.Ho < 1 or geo.Wo < 1:
        axis, size, k, si, pi, di, ri, out = next(
            a for a in (("height", H, kh, s[0], p[0], d[0], r[0], geo.Ho),
                        ("width", W, kw, s[1], p[1], d[1], r[1], geo.Wo)) if a[-1] < 1)
        raise ValueError(
            f"{op}: output {axis} ({size}-1)*{si} - 2*{pi} + {di}*({k}-1) + {ri} + 1 = {out} "
            f"is too small (input {H}x{W}); use padding <= "
            f"{((size - 1) * si + di * (k - 1) + ri) // 2}")
    return geo


def output_padding_for(output_size, geo_min: ConvTransposeGeometry, op: str) -> Pair:
    """``output_padding`` that gives the requested ``output_size`` (PyTorch's ``output_size=``).

    ``geo_min`` is the geometry with output_padding 0; valid sizes run from its (Ho, Wo) to
    (Ho + s − 1, Wo + s − 1). ``output_size`` is (Ho, Wo) or the full 4-D/3-D shape.
    """
    size = tuple(output_size)
    if len(size) not in (2, 3, 4) or not all(
            isinstance(v, Integral) and not isinstance(v, bool) for v in size):
        raise ValueError(f"{op}: output_size must be (H_out, W_out) or the whole output shape, "
                         f"got {output_size!r}")
    size = size[-2:]
    low = (geo_min.Ho, geo_min.Wo)
    high = tuple(lo + s - 1 for lo, s in zip(low, geo_min.stride))
    if any(not lo <= v <= hi for v, lo, hi in zip(size, low, high)):
        raise ValueError(f"{op}: requested an output size of {size}, but valid sizes range from "
                         f"{low} to {high} (for an input of {geo_min.H}x{geo_min.W})")
    return (size[0] - low[0], size[1] - low[1])


# --- the kernels ------------------------------------------------------------------------------

def _conv_rows(geo: ConvTransposeGeometry) -> tuple[int, int]:
    """Rows and columns K's output has for an input of (Ho, Wo): H + ⌊r/s⌋ (= H when r < s)."""
    return (geo.H + geo.output_padding[0] // geo.stride[0],
            geo.W + geo.output_padding[1] // geo.stride[1])


def _extend(x: np.ndarray, geo: ConvTransposeGeometry) -> np.ndarray:
    """x zero-extended at the end to K's output size (a no-op unless s <= r < d)."""
    Hk, Wk = _conv_rows(geo)
    if (Hk, Wk) == (geo.H, geo.W):
        return x
    return np.pad(x, [(0, 0), (0, 0), (0, Hk - geo.H), (0, Wk - geo.W)])


def _crop(gx: np.ndarray, geo: ConvTransposeGeometry) -> np.ndarray:
    """K's output cut back to x's size (a no-op unless s <= r < d; see :func:`_extend`)."""
    return gx[..., :geo.H, :geo.W] if gx.shape[-2:] != (geo.H, geo.W) else gx


def forward(x, w, b, geo: ConvTransposeGeometry) -> np.ndarray:
    """``Y[n,o,i',j'] = b[o] + Σ_{c ∈ group γ(o)} Σ_{u,v} X[n,c,i,j]·W[c, o', u, v]`` over
    ``i' = s_h·i + d_h·u − p_h``, ``j' = s_w·j + d_w·v − p_w`` (every input pixel scatters its
    kernel-weighted copy): the conv input gradient ``Kᵀ x`` with x in the place of gY.

    Shapes: x (N, C_in, H, W), w (C_in, C_out/g, kh, kw), b (C_out,) -> y (N, C_out, Ho, Wo).
    """
    conv_geo = conv_geometry(geo.output_shape, w.shape, **geo.conv_kwargs)
    # + b[o], added by each block of the batch while its rows of y are in cache
    return conv_grad_input(_extend(x, geo), w, conv_geo, bias=b)       # (N, C_out, Ho, Wo)


def grad_input(gy, w, geo: ConvTransposeGeometry) -> np.ndarray:
    """``gX[n,c,i,j] = Σ_{o ∈ group γ(c)} Σ_{u,v} gY[n, o, s_h·i + d_h·u − p_h,
    s_w·j + d_w·v − p_w]·W[c, o', u, v]``: the plain conv ``K gY``. Shape (N, C_in, H, W)."""
    return _crop(conv2d_forward(gy, w, None, **geo.conv_kwargs), geo)  # (N, C_in, H, W)


def grad_weight(x, gy, geo: ConvTransposeGeometry) -> np.ndarray:
    """``gW[c,o',u,v] = Σ_{n,i,j} X[n,c,i,j]·gY[n, o, s_h·i + d_h·u − p_h, s_w·j + d_w·v − p_w]``
    (o = γ(c)·C_out/g + o'): conv2d's weight gradient with gY as its input and x as its output
    gradient. Shape (C_in, C_out/g, kh, kw)."""
    return conv2d_weight(gy, geo.weight_shape, _extend(x, geo), **geo.conv_kwargs)


def grad_input_and_weight(x, gy, w, geo: ConvTransposeGeometry) -> tuple[np.ndarray, np.ndarray]:
    """``(grad_input(gy, w), grad_weight(x, gy))`` from one gather of gY's columns: both are
    products of the same columns of gY, the conv ``K gY`` with W and conv2d's weight gradient
    with x (:func:`.engine.conv_forward_and_grad_weight`)."""
    gx, gw = conv2d_forward_and_weight(gy, w, _extend(x, geo), **geo.conv_kwargs)
    return _crop(gx, geo), gw


def grad_bias(gy) -> np.ndarray:
    """``gb[o] = Σ_{n,i',j'} gY[n, o, i', j']``. Shape (C_out,)."""
    return conv2d_bias(gy)


# --- public kernels on ndarrays, PyTorch's argument order ------------------------------------

def conv_transpose2d_forward(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                             dilation=1):
    """conv_transpose2d on 4-D ndarrays (as ``torch.nn.functional.conv_transpose2d``).

    Shape: x (N, C_in, H, W), w (C_in, C_out/g, kh, kw), b (C_out,) -> (N, C_out, Ho, Wo).

    >>> import numpy as np
    >>> conv_transpose2d_forward(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3)), stride=2)[0, 0]
    array([[1., 1., 2., 1., 1.],
           [1., 1., 2., 1., 1.],
           [2., 2., 4., 2., 2.],
           [1., 1., 2., 1., 1.],
           [1., 1., 2., 1., 1.]])
    """
    x, w = check_float_arrays("conv_transpose2d", input=x, weight=w)
    geo = conv_transpose_geometry(x.shape, w.shape, stride, padding, output_padding, groups,
                                  dilation)
    return forward(x, w, check_bias(b, geo.C_out, "conv_transpose2d"), geo)


def conv_transpose2d_input(input_shape, w, gy, stride=1, padding=0, output_padding=0, groups=1,
                           dilation=1):
    """Gradient of conv_transpose2d with respect to its input: ``conv2d(gy, w)``."""
    w, gy = check_float_arrays("conv_transpose2d", weight=w, gy=gy)
    geo = conv_transpose_geometry(tuple(input_shape), w.shape, stride, padding, output_padding,
                                  groups, dilation)
    check_output_shape(gy, geo.output_shape, "gy", "conv_transpose2d")
    return grad_input(gy, w, geo)


def conv_transpose2d_weight(x, weight_shape, gy, stride=1, padding=0, output_padding=0,
                            groups=1, dilation=1):
    """Gradient of conv_transpose2d with respect to its weight. Shape ``weight_shape``."""
    x, gy = check_float_arrays("conv_transpose2d", input=x, gy=gy)
    geo = conv_transpose_geometry(x.shape, tuple(weight_shape), stride, padding, output_padding,
                                  groups, dilation)
    check_output_shape(gy, geo.output_shape, "gy", "conv_transpose2d")
    return grad_weight(x, gy, geo)


def conv_transpose2d_bias(gy):
    """Gradient of conv_transpose2d with respect to its bias: gy summed over (N, Ho, Wo)."""
    return grad_bias(gy)
