"""conv_transpose2d forward and backward (the adjoint of conv2d; docs/math.md §11) as loops."""
from __future__ import annotations

import numpy as np

from numcnn.ops.transpose import conv_transpose_geometry

from ._common import expect_shape, prologue, zero_extended

# Own index names: i, j input pixel; a, b output row/column (a = s_h·i + d_h·u − p_h); c input
# channel, o output channel, op = o' its index inside the group. Weight w[c, o', u, v] has the
# layout (C_in, C_out/g, kh, kw). The loops scatter, as the definition reads; the kernels
# compute the same sums as a conv input gradient.


def conv_transpose2d(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1) -> np.ndarray:
    """Transposed conv forward as nested loops: every input pixel scatters a weighted kernel.

    ::

        Y[n, o, a, b] = b[o] + Σ_{c ∈ group γ(o)} Σ_{i, j, u, v : s_h·i + d_h·u − p_h = a,
                                                              s_w·j + d_w·v − p_w = b}
                        X[n, c, i, j] · W[c, o', u, v]

    with ``γ(o) = ⌊o / (C_out/g)⌋``, ``o' = o − γ·C_out/g``; positions outside
    ``0 ≤ a < H_out``, ``0 ≤ b < W_out`` are dropped (that is the padding p), and
    ``H_out = (H − 1)·s_h − 2p_h + d_h(kh − 1) + output_padding_h + 1``.

    Parameters
    ----------
    x : ndarray, shape (N, C_in, H, W)
    w : ndarray, shape (C_in, C_out/groups, kh, kw)
    b : ndarray, shape (C_out,), optional
    stride, padding, output_padding, dilation : int or (int, int)
    groups : int

    Returns
    -------
    y : ndarray, shape (N, C_out, H_out, W_out)
    """
    op = "reference.conv_transpose2d"
    dtype, x, w, b = prologue(op, x=x, weight=w, bias=b)
    geo = conv_transpose_geometry(x.shape, w.shape, stride, padding, output_padding, groups,
                                  dilation, op)
    expect_shape(b, (geo.C_out,), "bias", op)
    (sh, sw), (ph, pw), (dh, dw) = geo.stride, geo.padding, geo.dilation
    N, C_out, H_out, W_out = geo.output_shape
    C_in_g, C_out_g = geo.C_in // geo.groups, geo.C_out // geo.groups
    y = np.zeros((N, C_out, H_out, W_out))
    if b is not None:
        for o in range(C_out):
            y[:, o] = b[o]
    for n in range(N):
        for c in range(geo.C_in):
            gamma = c // C_in_g
            for i in range(geo.H):
                for j in range(geo.W):
                    for op_ in range(C_out_g):
                        o = gamma * C_out_g + op_
                        for u in range(geo.kh):
                            for v in range(geo.kw):
                                a_, b_ = sh * i + dh * u - ph, sw * j + dw * v - pw
                                if 0 <= a_ < H_out and 0 <= b_ < W_out:
                                    y[n, o, a_, b_] += x[n, c, i, j] * w[c, op_, u, v]
    return y.astype(dtype)


def conv_transpose2d_backward(x, w, gy, stride=1, padding=0, output_padding=0, groups=1,
                              dilation=1):
    """Transposed conv backward in index form: each gradient is its own literal loop.

    ::

        gb[o]         = Σ_{n, a, b} gY[n, o, a, b]
        gW[c, o', u, v] = Σ_{n, i, j} X[n, c, i, j] · G̃[n, o, s_h·i + d_h·u − p_h,
                                                          s_w·j + d_w·v − p_w]
        gX[n, c, i, j]  = Σ_{o' , u, v} W[c, o', u, v] · G̃[n, o, s_h·i + d_h·u − p_h,
                                                          s_w·j + d_w·v − p_w]

    with ``o = γ(c)·C_out/g + o'`` and ``G̃`` the zero extension of gY. (gX is conv2d of gY
    with the same weight, gW conv2d's weight gradient with gY as input: docs/math.md §11.)

    Returns
    -------
    gx : ndarray, shape (N, C_in, H, W)
    gw : ndarray, shape (C_in, C_out/groups, kh, kw)
    gb : ndarray, shape (C_out,)
    """
    op = "reference.conv_transpose2d_backward"
    dtype, x, w, gy = prologue(op, x=x, weight=w, gy=gy)
    geo = conv_transpose_geometry(x.shape, w.shape, stride, padding, output_padding, groups,
                                  dilation, op)
    expect_shape(gy, geo.output_shape, "gy", op)
    (sh, sw), (ph, pw), (dh, dw) = geo.stride, geo.padding, geo.dilation
    N, C_out, H_out, W_out = geo.output_shape
    C_in_g, C_out_g = geo.C_in // geo.groups, geo.C_out // geo.groups

    gb = np.zeros(C_out)
    for o in range(C_out):
        for n in range(N):
            for a_ in range(H_out):
                for b_ in range(W_out):
                    gb[o] += gy[n, o, a_, b_]

    gw = np.zeros(w.shape)
    for c in range(geo.C_in):
        gamma = c // C_in_g
        for op_ in range(C_out_g):
            for u in range(geo.kh):
                for v in range(geo.kw):
                    acc = 0.0
                    for n in range(N):
                        for i in range(geo.H):
                            for j in range(geo.W):
                                acc += x[n, c, i, j] * zero_extended(
                                    gy, n, gamma * C_out_g + op_,
                                    sh * i + dh * u - ph, sw * j + dw * v - pw)
                    gw[c, op_, u, v] = acc

    gx = np.zeros(x.shape)
    for n in range(N):
        for c in range(geo.C_in):
            gamma = c // C_in_g
            for i in range(geo.H):
                for j in range(geo.W):
                    acc = 0.0
                    for op_ in range(C_out_g):
                        for u in range(geo.kh):
                            for v in range(geo.kw):
                                acc += w[c, op_, u, v] * zero_extended(
                                    gy, n, gamma * C_out_g + op_,
                                    sh * i + dh * u - ph, sw * j + dw * v - pw)
                    gx[n, c, i, j] = acc
    return gx.astype(dtype), gw.astype(dtype), gb.astype(dtype)
