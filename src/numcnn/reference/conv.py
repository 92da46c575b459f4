"""conv2d forward and backward (SPEC §2.3, §3.1) as literal index loops."""
from __future__ import annotations

import numpy as np

from numcnn.ops import shapes

from ._common import expect_shape, prologue, zero_extended


def _offset_set(i: int, k: int, s: int, p: int, d: int, size_out: int) -> list[int]:
    """U(i) = { u in 0..k-1 : s | (i + p - d·u), 0 <= (i + p - d·u)/s <= size_out - 1 }  (3.1c)."""
    return [
        u for u in range(k)
        if (i + p - d * u) % s == 0 and 0 <= (i + p - d * u) // s <= size_out - 1
    ]


def conv2d(x, w, b=None, stride=1, padding=0, dilation=1, groups=1) -> np.ndarray:
    """Conv2d forward (cross-correlation), SPEC §2.3, as seven nested loops.

    ::

        Y[n,q,o_h,o_w] = b[q] + Σ_{c'=0}^{C_in/g−1} Σ_{u=0}^{kh−1} Σ_{v=0}^{kw−1}
                         W[q,c',u,v] · X̃[n, γ(q)·C_in/g + c', s_h·o_h + d_h·u − p_h,
                                                              s_w·o_w + d_w·v − p_w]

    with ``γ(q) = ⌊q / (C_out/g)⌋`` and ``X̃`` the zero extension of ``X`` (0 outside the
    input). With asymmetric padding ``p_h``, ``p_w`` are the amounts padded *before*.

    Parameters
    ----------
    x : ndarray, shape (N, C_in, H, W)
        Input.
    w : ndarray, shape (C_out, C_in/groups, kh, kw)
        Weight.
    b : ndarray, shape (C_out,), optional
        Bias; omitted from the sum when None.
    stride, dilation : int or (int, int)
        Stride ``s`` and dilation ``d`` (>= 1).
    padding : int, (int, int), 'same' or 'valid'
        Zero padding; ``'same'`` pads ``d(k-1)`` in total, the odd unit after (PyTorch).
    groups : int
        Number of groups ``g``.

    Returns
    -------
    y : ndarray, shape (N, C_out, H_out, W_out)
    """
    op = "reference.conv2d"
    dtype, x, w, b = prologue(op, x=x, weight=w, bias=b)
    geo = shapes.conv_geometry(x.shape, w.shape, stride, padding, dilation, groups, op)
    expect_shape(b, (geo.C_out,), "bias", op)
    N, C_out, H_out, W_out = geo.output_shape
    C_in_g, C_out_g = geo.C_in // geo.groups, geo.C_out // geo.groups
    sh, sw, dh, dw, ph, pw = geo.sh, geo.sw, geo.dh, geo.dw, geo.pad_h[0], geo.pad_w[0]

    y = np.zeros((N, C_out, H_out, W_out))
    for n in range(N):
        for q in range(C_out):
            gamma = q // C_out_g
            for o_h in range(H_out):
                for o_w in range(W_out):
                    acc = 0.0 if b is None else b[q]
                    for cp in range(C_in_g):
                        for u in range(geo.kh):
                            for v in range(geo.kw):
                                acc += w[q, cp, u, v] * zero_extended(
                                    x, n, gamma * C_in_g + cp,
                                    sh * o_h + dh * u - ph, sw * o_w + dw * v - pw,
                                )
                    y[n, q, o_h, o_w] = acc
    return y.astype(dtype)


def conv2d_backward(x, w, gy, stride=1, padding=0, dilation=1, groups=1):
    """Conv2d backward in index form, SPEC §3.1: each gradient is its own literal loop.

    ::

        gb[q]        = Σ_n Σ_{o_h} Σ_{o_w} gY[n,q,o_h,o_w]                                (3.1a)

        gW[q,c',u,v] = Σ_n Σ_{o_h=0}^{H_out−1} Σ_{o_w=0}^{W_out−1} gY[n,q,o_h,o_w]
                       · X̃[n, γ(q)·C_in/g + c', s_h·o_h + d_h·u − p_h, s_w·o_w + d_w·v − p_w]
                                                                                          (3.1b)

        gX[n,c,i,j]  = Σ_{q=γ·C_out/g}^{(γ+1)·C_out/g−1} Σ_{u∈U_h(i)} Σ_{v∈U_w(j)}
                       gY[n, q, (i + p_h − d_h·u)/s_h, (j + p_w − d_w·v)/s_w] · W[q, c', u, v]
                                                                                          (3.1c)

        U_h(i) = { u ∈ 0..kh−1 : s_h | (i + p_h − d_h·u), 0 ≤ (i + p_h − d_h·u)/s_h ≤ H_out−1 }

    with ``γ = γ(c) = ⌊c / (C_in/g)⌋`` and ``c' = c − γ·C_in/g`` in (3.1c). ``p_h``, ``p_w``
    are the amounts padded before (asymmetric ``'same'`` padding works).

    Parameters
    ----------
    x : ndarray, shape (N, C_in, H, W)
        The forward input.
    w : ndarray, shape (C_out, C_in/groups, kh, kw)
        The forward weight.
    gy : ndarray, shape (N, C_out, H_out, W_out)
        Gradient of the loss with respect to the output.
    stride, padding, dilation, groups
        As in :func:`conv2d`.

    Returns
    -------
    gx : ndarray, shape (N, C_in, H, W)
    gw : ndarray, shape (C_out, C_in/groups, kh, kw)
    gb : ndarray, shape (C_out,)
    """
    op = "reference.conv2d_backward"
    dtype, x, w, gy = prologue(op, x=x, weight=w, gy=gy)
    geo = shapes.conv_geometry(x.shape, w.shape, stride, padding, dilation, groups, op)
    expect_shape(gy, geo.output_shape, "gy", op)
    N, C_out, H_out, W_out = geo.output_shape
    C_in, H, W, kh, kw = geo.C_in, geo.H, geo.W, geo.kh, geo.kw
    C_in_g, C_out_g = C_in // geo.groups, C_out // geo.groups
    sh, sw, dh, dw, ph, pw = geo.sh, geo.sw, geo.dh, geo.dw, geo.pad_h[0], geo.pad_w[0]

    # (3.1a) gb[q] = Σ_{n, o_h, o_w} gY[n, q, o_h, o_w]
    gb = np.zeros(C_out)
    for q in range(C_out):
        for n in range(N):
            for o_h in range(H_out):
                for o_w in range(W_out):
                    gb[q] += gy[n, q, o_h, o_w]

    # (3.1b) gW[q, c', u, v] = Σ_{n, o_h, o_w} gY[n, q, o_h, o_w] · X̃[n, c, s·o + d·u − p, ...]
    gw = np.zeros(w.shape)
    for q in range(C_out):
        gamma = q // C_out_g
        for cp in range(C_in_g):
            for u in range(kh):
                for v in range(kw):
                    acc = 0.0
                    for n in range(N):
                        for o_h in range(H_out):
                            for o_w in range(W_out):
                                acc += gy[n, q, o_h, o_w] * zero_extended(
                                    x, n, gamma * C_in_g + cp,
                                    sh * o_h + dh * u - ph, sw * o_w + dw * v - pw,
                                )
                    gw[q, cp, u, v] = acc

    # (3.1c) gX[n, c, i, j] = Σ_{q in group γ(c)} Σ_{u ∈ U_h(i)} Σ_{v ∈ U_w(j)}
    #          gY[n, q, (i + p_h − d_h·u)/s_h, (j + p_w − d_w·v)/s_w] · W[q, c', u, v]
    gx = np.zeros(x.shape)
    for n in range(N):
        for c in range(C_in):
            gamma = c // C_in_g
            cp = c - gamma * C_in_g
            for i in range(H):
                U_h = _offset_set(i, kh, sh, ph, dh, H_out)
                for j in range(W):
                    U_w = _offset_set(j, kw, sw, pw, dw, W_out)
                    acc = 0.0
                    for q in range(gamma * C_out_g, (gamma + 1) * C_out_g):
                        for u in U_h:
                            for v in U_w:
                                acc += (
                                    gy[n, q, (i + ph - dh * u) // sh, (j + pw - dw * v) // sw]
                                    * w[q, cp, u, v]
                                )
                    gx[n, c, i, j] = acc
    return gx.astype(dtype), gw.astype(dtype), gb.astype(dtype)
