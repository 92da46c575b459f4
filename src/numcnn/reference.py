"""Reference implementations: every op as plain nested loops over the spec's index formulas.

These functions are the test oracle for the vectorized kernels of :mod:`numcnn.ops` and the
speed baseline they are measured against. They are written to be read next to SPEC-math:
each docstring quotes the formula it implements (with its section number) and the innermost
loop body is that formula. Scalar loops are the point here; they are orders of magnitude
slower than the vectorized kernels, so keep shapes tiny.

Index names are the spec's::

    n       batch index                   q       output channel
    c       input channel                 cp      c', the input channel inside its group
    gamma   group index (the spec's γ)    u, v    kernel offsets (rows, columns)
    o_h     output row                    o_w     output column
    i       input row                     j       input column

Dimension legend: N batch, C_in/C_out channels, H/W input size, kh/kw kernel, sh/sw stride,
dh/dw dilation, H_out/W_out output size, ke_h/ke_w effective kernel d(k-1)+1, g groups.
Arrays are ``x, w, b, y`` and their gradients ``gx, gw, gb, gy``; ``w`` is the spec's
weight ``W[q, c', u, v]`` (``W`` alone always means the input width).

Conventions: 4-D NCHW arrays only (no unbatched form); float32 or float64 in. Every sum is
accumulated in float64 and the result is returned in the floating dtype of the array
arguments (``np.result_type``), i.e. float32 in, float32 out.
"""
from __future__ import annotations

import math
from numbers import Integral

import numpy as np

from numcnn.ops import shapes

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "conv2d",
    "conv2d_backward",
    "conv2d_input_inserted",
    "conv2d_weight_rot180",
    "cross_entropy",
    "linear",
    "max_pool2d",
    "max_pool2d_backward",
]


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def _float64(a, name: str, op: str, ndim: int = 4) -> np.ndarray:
    """Check that ``a`` is a floating array of rank ``ndim`` and return a float64 copy."""
    a = shapes.check_float_array(a, name, op)
    if a.ndim != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D, got shape {a.shape}")
    return a.astype(np.float64)


def _result_dtype(*arrays) -> np.dtype:
    """The floating dtype of the array arguments (float32 stays float32)."""
    return np.result_type(*[np.asarray(a).dtype for a in arrays if a is not None])


def _shape4(shape, name: str, op: str) -> tuple[int, int, int, int]:
    """Validate a 4-D shape argument such as ``input_shape``."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != 4:
        raise ValueError(f"{op}: {name} must have 4 entries (N, C, H, W), got {shape}")
    return shape


def _check_gy(gy: np.ndarray, expected: tuple, op: str) -> None:
    if gy.shape != tuple(expected):
        raise ValueError(f"{op}: gy must have the output shape {tuple(expected)}, got {gy.shape}")


def _zero_extended(a: np.ndarray, n: int, c: int, i: int, j: int) -> float:
    """Ã[n, c, i, j]: ``a[n, c, i, j]`` inside the array, 0 outside (SPEC §1.3; never wraps)."""
    if 0 <= i < a.shape[2] and 0 <= j < a.shape[3]:
        return a[n, c, i, j]
    return 0.0


def _offset_set(i: int, k: int, s: int, p: int, d: int, size_out: int) -> list[int]:
    """U(i) = { u in 0..k-1 : s | (i + p - d·u), 0 <= (i + p - d·u)/s <= size_out - 1 }  (3.1c)."""
    return [
        u for u in range(k)
        if (i + p - d * u) % s == 0 and 0 <= (i + p - d * u) // s <= size_out - 1
    ]


def _dilate(gy: np.ndarray, sh: int, sw: int) -> np.ndarray:
    """dilate_s(gY) (SPEC §1.3): ``G[n, q, sh·a, sw·b] = gY[n, q, a, b]``, zeros elsewhere.

    Shape ``(N, C, sh(H_out-1)+1, sw(W_out-1)+1)``: s-1 zeros between neighbours, none outside.
    """
    N, C, H_out, W_out = gy.shape
    G = np.zeros((N, C, sh * (H_out - 1) + 1, sw * (W_out - 1) + 1))
    for n in range(N):
        for q in range(C):
            for a in range(H_out):
                for b in range(W_out):
                    G[n, q, sh * a, sw * b] = gy[n, q, a, b]
    return G


def _pad_or_crop(G: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """pad(G; top, bottom, left, right) (SPEC §1.3); a negative amount crops that side.

    ``P[n, q, a, b] = G̃[n, q, a - top, b - left]`` on a grid of
    ``(|G_h| + top + bottom) × (|G_w| + left + right)``.
    """
    N, C, Gh, Gw = G.shape
    P = np.zeros((N, C, Gh + top + bottom, Gw + left + right))
    for n in range(N):
        for q in range(C):
            for a in range(P.shape[2]):
                for b in range(P.shape[3]):
                    P[n, q, a, b] = _zero_extended(G, n, q, a - top, b - left)
    return P


def _inserted_grad(gy: np.ndarray, geo: shapes.ConvGeometry) -> np.ndarray:
    """The seed's "Inserted Grad" P of (3.2), with asymmetric padding allowed.

    ``G = dilate_s(gY)``; ``P = pad(G)`` with ``k_eff - 1 - p_before`` before and
    ``H + k_eff - 1 - before - |G|`` after (``= k_eff - 1 - p + r`` for symmetric padding),
    so that ``|P| = H + k_eff - 1`` on each axis. Negative amounts crop.
    """
    G = _dilate(gy, geo.sh, geo.sw)
    top = geo.keh - 1 - geo.pad_h[0]
    left = geo.kew - 1 - geo.pad_w[0]
    bottom = geo.H + geo.keh - 1 - top - G.shape[2]
    right = geo.W + geo.kew - 1 - left - G.shape[3]
    P = _pad_or_crop(G, top, bottom, left, right)
    assert P.shape[2:] == (geo.H + geo.keh - 1, geo.W + geo.kew - 1)
    return P


# ----------------------------------------------------------------------------------------------
# conv2d
# ----------------------------------------------------------------------------------------------
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
    dtype = _result_dtype(x, w, b)
    x, w = _float64(x, "x", op), _float64(w, "weight", op)
    geo = shapes.conv_geometry(x.shape, w.shape, stride, padding, dilation, groups, op)
    if b is not None:
        b = _float64(b, "bias", op, ndim=1)
        if b.shape != (geo.C_out,):
            raise ValueError(f"{op}: bias must have shape ({geo.C_out},), got {b.shape}")
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
                                acc += w[q, cp, u, v] * _zero_extended(
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
    dtype = _result_dtype(x, w, gy)
    x, w, gy = _float64(x, "x", op), _float64(w, "weight", op), _float64(gy, "gy", op)
    geo = shapes.conv_geometry(x.shape, w.shape, stride, padding, dilation, groups, op)
    _check_gy(gy, geo.output_shape, op)
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
                                acc += gy[n, q, o_h, o_w] * _zero_extended(
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


def conv2d_input_inserted(
    gy, w, input_shape, stride=1, padding=0, dilation=1, groups=1
) -> np.ndarray:
    """Conv2d input gradient by the seed's inserted-grad form, SPEC (3.2)/(3.2a), with loops.

    ::

        G   = dilate_(s_h, s_w)(gY)              (N, C_out, s_h(H_out−1)+1, s_w(W_out−1)+1)
        P   = pad(G; top  = ke_h − 1 − p_h, bottom = H + ke_h − 1 − top  − |G_h|,
                     left = ke_w − 1 − p_w, right  = W + ke_w − 1 − left − |G_w|)   (3.2)
        W_T[γ·C_in/g + c', q', u, v] = W[γ·C_out/g + q', c', kh−1−u, kw−1−v]
        gX[n, c] = Σ_{q in group γ(c)} P[n, q] ⋆_(d_h,d_w) rot180(W[q, c'])         (3.2a)

    i.e. the valid, stride-1, dilated correlation ::

        gX[n,c,i,j] = Σ_{q'} Σ_u Σ_v P[n, γ(c)·C_out/g + q', i + d_h·u, j + d_w·v]
                                     · W_T[c, q', u, v]

    ``p_h``, ``p_w`` are the amounts padded before; with symmetric padding ``bottom`` is the
    spec's ``ke_h − 1 − p_h + r_h``. Negative pad amounts crop.

    Parameters
    ----------
    gy : ndarray, shape (N, C_out, H_out, W_out)
        Gradient of the loss with respect to the conv output.
    w : ndarray, shape (C_out, C_in/groups, kh, kw)
        The forward weight.
    input_shape : tuple of 4 ints
        ``(N, C_in, H, W)``, the shape of the forward input.
    stride, padding, dilation, groups
        As in :func:`conv2d`.

    Returns
    -------
    gx : ndarray, shape input_shape
    """
    op = "reference.conv2d_input_inserted"
    dtype = _result_dtype(gy, w)
    gy, w = _float64(gy, "gy", op), _float64(w, "weight", op)
    input_shape = _shape4(input_shape, "input_shape", op)
    geo = shapes.conv_geometry(input_shape, w.shape, stride, padding, dilation, groups, op)
    _check_gy(gy, geo.output_shape, op)
    N, C_in, H, W = input_shape
    C_out, kh, kw, g = geo.C_out, geo.kh, geo.kw, geo.groups
    C_in_g, C_out_g = C_in // g, C_out // g

    P = _inserted_grad(gy, geo)  # (N, C_out, H + ke_h - 1, W + ke_w - 1)

    W_T = np.zeros((C_in, C_out_g, kh, kw))
    for gamma in range(g):
        for cp in range(C_in_g):
            for qp in range(C_out_g):
                for u in range(kh):
                    for v in range(kw):
                        W_T[gamma * C_in_g + cp, qp, u, v] = w[
                            gamma * C_out_g + qp, cp, kh - 1 - u, kw - 1 - v
                        ]

    gx = np.zeros(input_shape)
    for n in range(N):
        for c in range(C_in):
            gamma = c // C_in_g
            for i in range(H):
                for j in range(W):
                    acc = 0.0
                    for qp in range(C_out_g):
                        for u in range(kh):
                            for v in range(kw):
                                acc += (
                                    P[n, gamma * C_out_g + qp, i + geo.dh * u, j + geo.dw * v]
                                    * W_T[c, qp, u, v]
                                )
                    gx[n, c, i, j] = acc
    return gx.astype(dtype)


def conv2d_weight_rot180(
    x, gy, weight_shape, stride=1, padding=0, dilation=1, groups=1
) -> np.ndarray:
    """Conv2d weight gradient by the seed's Rot180 form, SPEC (3.2c), with loops.

    ::

        R_rot[n, q, c] = P[n, q] ⋆ X[n, c]       (unpadded X slides over P; size ke_h × ke_w)
        gW[q, c']      = Σ_n rot180(R_rot[n, q, γ(q)·C_in/g + c'])[::d_h, ::d_w]

    with ``P`` the inserted grad of (3.2) (see :func:`conv2d_input_inserted`), i.e.
    ``R_rot[n,q,c,t_h,t_w] = Σ_i Σ_j P[n,q,t_h+i,t_w+j] · X[n,c,i,j]`` and
    ``gW[q,c',u,v] = Σ_n R_rot[n, q, γ(q)·C_in/g + c', ke_h−1−d_h·u, ke_w−1−d_w·v]``.

    Parameters
    ----------
    x : ndarray, shape (N, C_in, H, W)
        The forward input.
    gy : ndarray, shape (N, C_out, H_out, W_out)
        Gradient of the loss with respect to the conv output.
    weight_shape : tuple of 4 ints
        ``(C_out, C_in/groups, kh, kw)``.
    stride, padding, dilation, groups
        As in :func:`conv2d`.

    Returns
    -------
    gw : ndarray, shape weight_shape
    """
    op = "reference.conv2d_weight_rot180"
    dtype = _result_dtype(x, gy)
    x, gy = _float64(x, "x", op), _float64(gy, "gy", op)
    weight_shape = _shape4(weight_shape, "weight_shape", op)
    geo = shapes.conv_geometry(x.shape, weight_shape, stride, padding, dilation, groups, op)
    _check_gy(gy, geo.output_shape, op)
    N, _, H, W = x.shape
    C_out, C_in_g, kh, kw = weight_shape
    C_out_g = C_out // geo.groups

    P = _inserted_grad(gy, geo)  # (N, C_out, H + ke_h - 1, W + ke_w - 1)

    # R_rot[n, q, c'] = P[n, q] ⋆ X[n, γ(q)·C_in/g + c']   (N, C_out, C_in/g, ke_h, ke_w)
    R_rot = np.zeros((N, C_out, C_in_g, geo.keh, geo.kew))
    for n in range(N):
        for q in range(C_out):
            gamma = q // C_out_g
            for cp in range(C_in_g):
                for t_h in range(geo.keh):
                    for t_w in range(geo.kew):
                        acc = 0.0
                        for i in range(H):
                            for j in range(W):
                                acc += P[n, q, t_h + i, t_w + j] * x[n, gamma * C_in_g + cp, i, j]
                        R_rot[n, q, cp, t_h, t_w] = acc

    rot = R_rot[..., ::-1, ::-1]  # rot180: the last two (spatial) axes only
    gw = np.zeros(weight_shape)
    for q in range(C_out):
        for cp in range(C_in_g):
            for u in range(kh):
                for v in range(kw):
                    for n in range(N):
                        gw[q, cp, u, v] += rot[n, q, cp, geo.dh * u, geo.dw * v]  # [::d_h, ::d_w]
    return gw.astype(dtype)


# ----------------------------------------------------------------------------------------------
# average pooling
# ----------------------------------------------------------------------------------------------
def _avg_window(o: int, k: int, s: int, p: int, size: int) -> tuple[int, int, int, int]:
    """Per-axis window of output ``o`` (SPEC §5.2).

    ``h0 = s·o − p``, ``h1 = min(h0 + k, H + p)`` (clipped to the padded extent),
    ``hs = max(h0, 0)``, ``he = min(h1, H)`` (clipped to the real input).
    """
    h0 = s * o - p
    h1 = min(h0 + k, size + p)
    hs = max(h0, 0)
    he = min(h1, size)
    return h0, h1, hs, he


def _avg_divisor(h: tuple, w: tuple, count_include_pad: bool, divisor_override) -> int:
    """D = (h1 − h0)(w1 − w0) if count_include_pad else (he − hs)(we − ws); an override wins."""
    if divisor_override is not None:
        return divisor_override
    h0, h1, hs, he = h
    w0, w1, ws, we = w
    return (h1 - h0) * (w1 - w0) if count_include_pad else (he - hs) * (we - ws)


def _check_divisor_override(divisor_override, op: str) -> None:
    if divisor_override is None:
        return
    if (
        not isinstance(divisor_override, Integral)
        or isinstance(divisor_override, bool)
        or divisor_override == 0
    ):
        raise ValueError(f"{op}: divisor_override must be a nonzero int, got {divisor_override!r}")


def avg_pool2d(
    x,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
) -> np.ndarray:
    """Average pooling forward, SPEC §5.2.

    ::

        h0 = s·o_h − p    h1 = min(h0 + kh, H + p)    hs = max(h0, 0)    he = min(h1, H)
        (w0, w1, ws, we likewise)
        D[o_h,o_w] = (h1 − h0)·(w1 − w0)   if count_include_pad
                   = (he − hs)·(we − ws)   otherwise
        Y[n,c,o_h,o_w] = (1 / D[o_h,o_w]) · Σ_{i=hs}^{he−1} Σ_{j=ws}^{we−1} X[n,c,i,j]

    ``divisor_override``, when given, replaces ``D`` (PyTorch). The output size is that of
    §5.1 (``shapes.pool_output_size``, ceil-mode correction included).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size``.
    padding : int or (int, int)
        Implicit zero padding, at most half the kernel.
    ceil_mode : bool
        Ceil instead of floor in the output size.
    count_include_pad : bool
        Whether padding cells count in the divisor.
    divisor_override : int, optional
        Divisor to use instead of ``D``.

    Returns
    -------
    y : ndarray, shape (N, C, H_out, W_out)
    """
    op = "reference.avg_pool2d"
    dtype = _result_dtype(x)
    x = _float64(x, "x", op)
    _check_divisor_override(divisor_override, op)
    geo = shapes.pool_geometry(x.shape, kernel_size, stride, padding, 1, ceil_mode, op)
    N, C, H_out, W_out = geo.output_shape

    y = np.zeros((N, C, H_out, W_out))
    for n in range(N):
        for c in range(C):
            for o_h in range(H_out):
                h0, h1, hs, he = _avg_window(o_h, geo.kh, geo.sh, geo.ph, geo.H)
                for o_w in range(W_out):
                    w0, w1, ws, we = _avg_window(o_w, geo.kw, geo.sw, geo.pw, geo.W)
                    D = _avg_divisor(
                        (h0, h1, hs, he), (w0, w1, ws, we), count_include_pad, divisor_override
                    )
                    acc = 0.0
                    for i in range(hs, he):
                        for j in range(ws, we):
                            acc += x[n, c, i, j]
                    y[n, c, o_h, o_w] = acc / D
    return y.astype(dtype)


def avg_pool2d_backward(
    gy,
    input_shape,
    kernel_size,
    stride=None,
    padding=0,
    ceil_mode=False,
    count_include_pad=True,
    divisor_override=None,
) -> np.ndarray:
    """Average pooling backward, SPEC §5.2, in gather form.

    ::

        gX[n,c,i,j] = Σ_{o_h : hs(o_h) ≤ i < he(o_h)}  Σ_{o_w : ws(o_w) ≤ j < we(o_w)}
                      gY[n,c,o_h,o_w] / D[o_h,o_w]

    with the windows and divisor of :func:`avg_pool2d`. Overlapping windows add; rows read
    by no window get 0.

    Parameters
    ----------
    gy : ndarray, shape (N, C, H_out, W_out)
        Gradient of the loss with respect to the output.
    input_shape : tuple of 4 ints
        ``(N, C, H, W)``.
    kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        As in :func:`avg_pool2d`.

    Returns
    -------
    gx : ndarray, shape input_shape
    """
    op = "reference.avg_pool2d_backward"
    dtype = _result_dtype(gy)
    gy = _float64(gy, "gy", op)
    _check_divisor_override(divisor_override, op)
    input_shape = _shape4(input_shape, "input_shape", op)
    geo = shapes.pool_geometry(input_shape, kernel_size, stride, padding, 1, ceil_mode, op)
    _check_gy(gy, geo.output_shape, op)
    N, C, H, W = input_shape
    H_out, W_out = geo.Ho, geo.Wo

    gx = np.zeros(input_shape)
    for n in range(N):
        for c in range(C):
            for i in range(H):
                for j in range(W):
                    acc = 0.0
                    for o_h in range(H_out):
                        h0, h1, hs, he = _avg_window(o_h, geo.kh, geo.sh, geo.ph, H)
                        if not hs <= i < he:
                            continue
                        for o_w in range(W_out):
                            w0, w1, ws, we = _avg_window(o_w, geo.kw, geo.sw, geo.pw, W)
                            if not ws <= j < we:
                                continue
                            D = _avg_divisor(
                                (h0, h1, hs, he), (w0, w1, ws, we),
                                count_include_pad, divisor_override,
                            )
                            acc += gy[n, c, o_h, o_w] / D
                    gx[n, c, i, j] = acc
    return gx.astype(dtype)


# ----------------------------------------------------------------------------------------------
# max pooling
# ----------------------------------------------------------------------------------------------
def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max pooling forward with window-local argmax, SPEC §5.3.

    ::

        i = s_h·o_h + d_h·u − p_h,   j = s_w·o_w + d_w·v − p_w,   0 ≤ u < kh, 0 ≤ v < kw
        Y[n,c,o_h,o_w] = max over valid (u,v) of X[n,c,i,j]
        argmax: scan u (outer) then v (inner); keep the FIRST position attaining the maximum
                (update only on strictly greater)

    Positions outside the input are skipped (padding behaves as −∞); the first valid position
    starts the scan, so a window of real −∞ values selects its first real cell (as PyTorch
    does). NaN: the first NaN in scan order wins and stays (``np.argmax`` semantics, §5.3).
    With dilation a window can hold no input cell at all (``H=2, k=2, p=1, d=3``: rows −1
    and 2); its output is −∞ and its argmax is −1 (it routes no gradient).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size``.
    padding : int or (int, int)
        Implicit −∞ padding, at most half the kernel.
    dilation : int or (int, int)
    ceil_mode : bool

    Returns
    -------
    y : ndarray, shape (N, C, H_out, W_out)
    argmax : ndarray of int64, shape (N, C, H_out, W_out)
        Window-local index ``u·kw + v`` of the selected input cell (−1: none).
    """
    op = "reference.max_pool2d"
    dtype = _result_dtype(x)
    x = _float64(x, "x", op)
    geo = shapes.pool_geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode, op)
    N, C, H_out, W_out = geo.output_shape

    y = np.zeros((N, C, H_out, W_out))
    argmax = np.zeros((N, C, H_out, W_out), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for o_h in range(H_out):
                for o_w in range(W_out):
                    best, best_index = None, -1
                    for u in range(geo.kh):
                        i = geo.sh * o_h + geo.dh * u - geo.ph
                        for v in range(geo.kw):
                            j = geo.sw * o_w + geo.dw * v - geo.pw
                            if not (0 <= i < geo.H and 0 <= j < geo.W):
                                continue  # padding: −∞, never selected
                            value = x[n, c, i, j]
                            if (
                                best is None
                                or value > best
                                or (math.isnan(value) and not math.isnan(best))
                            ):
                                best, best_index = value, u * geo.kw + v
                    y[n, c, o_h, o_w] = -math.inf if best is None else best
                    argmax[n, c, o_h, o_w] = best_index
    return y.astype(dtype), argmax


def max_pool2d_backward(
    gy, argmax, input_shape, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False
) -> np.ndarray:
    """Max pooling backward, SPEC §5.3, in gather form.

    ::

        gX[n,c,i,j] = Σ_{(o_h,o_w) whose argmax is (i,j)} gY[n,c,o_h,o_w]

    where the window-local argmax ``u·kw + v`` of ``(o_h, o_w)`` points at input cell
    ``(s_h·o_h + d_h·u − p_h, s_w·o_w + d_w·v − p_w)``. Overlapping windows that select the
    same cell add.

    Parameters
    ----------
    gy : ndarray, shape (N, C, H_out, W_out)
        Gradient of the loss with respect to the output.
    argmax : ndarray of ints, shape (N, C, H_out, W_out)
        The window-local indices returned by :func:`max_pool2d`.
    input_shape : tuple of 4 ints
        ``(N, C, H, W)``.
    kernel_size, stride, padding, dilation, ceil_mode
        As in :func:`max_pool2d`.

    Returns
    -------
    gx : ndarray, shape input_shape
    """
    op = "reference.max_pool2d_backward"
    dtype = _result_dtype(gy)
    gy = _float64(gy, "gy", op)
    argmax = np.asarray(argmax)
    input_shape = _shape4(input_shape, "input_shape", op)
    geo = shapes.pool_geometry(input_shape, kernel_size, stride, padding, dilation, ceil_mode, op)
    _check_gy(gy, geo.output_shape, op)
    if argmax.shape != gy.shape:
        raise ValueError(f"{op}: argmax must have the shape of gy {gy.shape}, got {argmax.shape}")
    N, C, H, W = input_shape
    H_out, W_out = geo.Ho, geo.Wo

    gx = np.zeros(input_shape)
    for n in range(N):
        for c in range(C):
            for i in range(H):
                for j in range(W):
                    acc = 0.0
                    for o_h in range(H_out):
                        for o_w in range(W_out):
                            index = int(argmax[n, c, o_h, o_w])
                            if index < 0:
                                continue  # a window with no input cell
                            u, v = divmod(index, geo.kw)
                            if (
                                geo.sh * o_h + geo.dh * u - geo.ph == i
                                and geo.sw * o_w + geo.dw * v - geo.pw == j
                            ):
                                acc += gy[n, c, o_h, o_w]
                    gx[n, c, i, j] = acc
    return gx.astype(dtype)


# ----------------------------------------------------------------------------------------------
# adaptive average pooling
# ----------------------------------------------------------------------------------------------
def _adaptive_output_size(output_size, H: int, W: int, op: str) -> tuple[int, int]:
    """Normalize ``output_size`` (int, pair, None entries = keep the input size)."""
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        sizes = tuple(size if o is None else o for o, size in zip(output_size, (H, W)))
    else:
        sizes = output_size
    O_h, O_w = shapes.pair(sizes, "output_size", op, minimum=1)
    return O_h, O_w


def _adaptive_window(o: int, size: int, size_out: int) -> tuple[int, int]:
    """[⌊o·H/O⌋, ⌈(o+1)·H/O⌉): the input rows averaged by output row ``o`` (PyTorch)."""
    start = (o * size) // size_out
    end = -((-(o + 1) * size) // size_out)
    return start, end


def adaptive_avg_pool2d(x, output_size) -> np.ndarray:
    """Adaptive average pooling forward (PyTorch's rule).

    ::

        hs(o_h) = ⌊o_h·H/H_out⌋    he(o_h) = ⌈(o_h+1)·H/H_out⌉    (ws, we likewise)
        Y[n,c,o_h,o_w] = 1 / ((he − hs)(we − ws)) · Σ_{i=hs}^{he−1} Σ_{j=ws}^{we−1} X[n,c,i,j]

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    output_size : int or (int or None, int or None)
        ``(H_out, W_out)``; None keeps that input size.

    Returns
    -------
    y : ndarray, shape (N, C, H_out, W_out)
    """
    op = "reference.adaptive_avg_pool2d"
    dtype = _result_dtype(x)
    x = _float64(x, "x", op)
    N, C, H, W = x.shape
    H_out, W_out = _adaptive_output_size(output_size, H, W, op)

    y = np.zeros((N, C, H_out, W_out))
    for n in range(N):
        for c in range(C):
            for o_h in range(H_out):
                hs, he = _adaptive_window(o_h, H, H_out)
                for o_w in range(W_out):
                    ws, we = _adaptive_window(o_w, W, W_out)
                    acc = 0.0
                    for i in range(hs, he):
                        for j in range(ws, we):
                            acc += x[n, c, i, j]
                    y[n, c, o_h, o_w] = acc / ((he - hs) * (we - ws))
    return y.astype(dtype)


def adaptive_avg_pool2d_backward(gy, input_shape, output_size) -> np.ndarray:
    """Adaptive average pooling backward, in gather form.

    ::

        gX[n,c,i,j] = Σ_{o_h : hs(o_h) ≤ i < he(o_h)}  Σ_{o_w : ws(o_w) ≤ j < we(o_w)}
                      gY[n,c,o_h,o_w] / ((he − hs)(we − ws))

    with the windows of :func:`adaptive_avg_pool2d`.

    Parameters
    ----------
    gy : ndarray, shape (N, C, H_out, W_out)
    input_shape : tuple of 4 ints
        ``(N, C, H, W)``.
    output_size : int or (int or None, int or None)
        As in :func:`adaptive_avg_pool2d`.

    Returns
    -------
    gx : ndarray, shape input_shape
    """
    op = "reference.adaptive_avg_pool2d_backward"
    dtype = _result_dtype(gy)
    gy = _float64(gy, "gy", op)
    N, C, H, W = _shape4(input_shape, "input_shape", op)
    H_out, W_out = _adaptive_output_size(output_size, H, W, op)
    _check_gy(gy, (N, C, H_out, W_out), op)

    gx = np.zeros((N, C, H, W))
    for n in range(N):
        for c in range(C):
            for i in range(H):
                for j in range(W):
                    acc = 0.0
                    for o_h in range(H_out):
                        hs, he = _adaptive_window(o_h, H, H_out)
                        if not hs <= i < he:
                            continue
                        for o_w in range(W_out):
                            ws, we = _adaptive_window(o_w, W, W_out)
                            if ws <= j < we:
                                acc += gy[n, c, o_h, o_w] / ((he - hs) * (we - ws))
                    gx[n, c, i, j] = acc
    return gx.astype(dtype)


# ----------------------------------------------------------------------------------------------
# linear and cross-entropy
# ----------------------------------------------------------------------------------------------
def linear(x, w, b=None) -> np.ndarray:
    """Fully connected layer ``y = x wᵀ + b``.

    ::

        y[n, k] = b[k] + Σ_f x[n, f] · w[k, f]

    Parameters
    ----------
    x : ndarray, shape (N, F_in)
    w : ndarray, shape (F_out, F_in)
    b : ndarray, shape (F_out,), optional

    Returns
    -------
    y : ndarray, shape (N, F_out)
    """
    op = "reference.linear"
    dtype = _result_dtype(x, w, b)
    x, w = _float64(x, "x", op, ndim=2), _float64(w, "weight", op, ndim=2)
    N, F_in = x.shape
    F_out = w.shape[0]
    if w.shape[1] != F_in:
        raise ValueError(f"{op}: x has {F_in} features but weight {w.shape} expects {w.shape[1]}")
    if b is not None:
        b = _float64(b, "bias", op, ndim=1)
        if b.shape != (F_out,):
            raise ValueError(f"{op}: bias must have shape ({F_out},), got {b.shape}")

    y = np.zeros((N, F_out))
    for n in range(N):
        for k in range(F_out):
            acc = 0.0 if b is None else b[k]
            for f in range(F_in):
                acc += x[n, f] * w[k, f]
            y[n, k] = acc
    return y.astype(dtype)


def cross_entropy(logits, target):
    """Mean cross-entropy of integer targets, computed stably.

    ::

        loss = (1/N) Σ_n ( log Σ_k exp(z[n,k]) − z[n, t_n] )
        log Σ_k exp(z[n,k]) = m_n + log Σ_k exp(z[n,k] − m_n),    m_n = max_k z[n,k]

    Parameters
    ----------
    logits : ndarray, shape (N, K)
        Unnormalized scores ``z``.
    target : ndarray of ints, shape (N,)
        Class indices ``t_n`` in ``0..K-1``.

    Returns
    -------
    loss : numpy scalar of the logits' dtype
    """
    op = "reference.cross_entropy"
    dtype = _result_dtype(logits)
    z = _float64(logits, "logits", op, ndim=2)
    target = np.asarray(target)
    N, K = z.shape
    if target.shape != (N,) or not np.issubdtype(target.dtype, np.integer):
        raise ValueError(f"{op}: target must be {N} integer class indices, got {target!r}")

    total = 0.0
    for n in range(N):
        t_n = int(target[n])
        if not 0 <= t_n < K:
            raise ValueError(f"{op}: target {t_n} is out of range for {K} classes")
        m_n = max(z[n, k] for k in range(K))
        log_sum_exp = m_n + math.log(sum(math.exp(z[n, k] - m_n) for k in range(K)))
        total += log_sum_exp - z[n, t_n]
    return dtype.type(total / N)


# ----------------------------------------------------------------------------------------------
# conv_transpose2d (the adjoint of conv2d; docs/math.md §11)
# ----------------------------------------------------------------------------------------------
# Own index names: i, j input pixel; a, b output row/column (a = s_h·i + d_h·u − p_h); c input
# channel, o output channel, op = o' its index inside the group. Weight w[c, o', u, v] has the
# layout (C_in, C_out/g, kh, kw). The loops scatter, as the definition reads; the kernels
# compute the same sums as a conv input gradient.
__all__ += ["conv_transpose2d", "conv_transpose2d_backward"]


def _transpose_geometry(x, w, stride, padding, output_padding, groups, dilation, op):
    from numcnn.ops.transpose import conv_transpose_geometry

    return conv_transpose_geometry(x.shape, w.shape, stride, padding, output_padding, groups,
                                   dilation, op)


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
    dtype = _result_dtype(x, w, b)
    x, w = _float64(x, "x", op), _float64(w, "weight", op)
    geo = _transpose_geometry(x, w, stride, padding, output_padding, groups, dilation, op)
    (sh, sw), (ph, pw), (dh, dw) = geo.stride, geo.padding, geo.dilation
    N, C_out, H_out, W_out = geo.output_shape
    C_in_g, C_out_g = geo.C_in // geo.groups, geo.C_out // geo.groups
    y = np.zeros((N, C_out, H_out, W_out))
    if b is not None:
        b = _float64(b, "bias", op, ndim=1)
        if b.shape != (C_out,):
            raise ValueError(f"{op}: bias must have shape ({C_out},), got {b.shape}")
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
    dtype = _result_dtype(x, w, gy)
    x, w, gy = _float64(x, "x", op), _float64(w, "weight", op), _float64(gy, "gy", op)
    geo = _transpose_geometry(x, w, stride, padding, output_padding, groups, dilation, op)
    _check_gy(gy, geo.output_shape, op)
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
                                acc += x[n, c, i, j] * _zero_extended(
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
                                acc += w[c, op_, u, v] * _zero_extended(
                                    gy, n, gamma * C_out_g + op_,
                                    sh * i + dh * u - ph, sw * j + dw * v - pw)
                    gx[n, c, i, j] = acc
    return gx.astype(dtype), gw.astype(dtype), gb.astype(dtype)
