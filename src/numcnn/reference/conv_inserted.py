"""The seed's inserted-grad forms of conv2d's backward (SPEC (3.2), (3.2a), (3.2c)), as loops."""
from __future__ import annotations

import numpy as np

from numcnn.ops import shapes

from ._common import expect_shape, prologue, shape4, zero_extended


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
                    P[n, q, a, b] = zero_extended(G, n, q, a - top, b - left)
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
    dtype, gy, w = prologue(op, gy=gy, weight=w)
    input_shape = shape4(input_shape, "input_shape", op)
    geo = shapes.conv_geometry(input_shape, w.shape, stride, padding, dilation, groups, op)
    expect_shape(gy, geo.output_shape, "gy", op)
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
    dtype, x, gy = prologue(op, x=x, gy=gy)
    weight_shape = shape4(weight_shape, "weight_shape", op)
    geo = shapes.conv_geometry(x.shape, weight_shape, stride, padding, dilation, groups, op)
    expect_shape(gy, geo.output_shape, "gy", op)
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
