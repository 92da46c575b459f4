"""conv2d forward and its three gradients, as SPEC-math writes them  (§2, §3, §6).

Pure, single-threaded NumPy on whole arrays: no threads, chunks, budgets or buffer pools here
(:mod:`numcnn.ops.engine` runs these functions on batch blocks). The batch size is read from the
arrays, so every function holds for any slice of the batch.

Dimension legend: N batch, C_in/C_out channels, g groups, Cg = C_in/g, Qg = C_out/g, H/W input,
Hp/Wp padded input, kh/kw kernel, Ho/Wo output, K = Cg·kh·kw, L = Ho·Wo; Wq the row width of the
row grid and T = (Ho − 1)·Wq + Wo its positions (:mod:`numcnn.ops.windows`; for stride 1, Wq = Wp).
``geo`` is a :class:`~numcnn.ops.shapes.ConvGeometry`, validated once at the public boundary.

Two exact forms of the backward:

* the GEMM form (6.3)-(6.5): ``cols = im2col(X)``, ``Y = W cols + b``, ``gW = gY colsᵀ``,
  ``gX = col2im(Wᵀ gY)``, the last on the row grid (every kernel tap one contiguous run);
* the seed's form (3.2): gX is the zero-inserted, padded gY correlated with the flipped,
  channel-swapped kernel; gW is rot180 of the inserted gY correlated with X.
"""
from __future__ import annotations

import numpy as np

from .shapes import ConvGeometry, conv_geometry
from .windows import (
    dilate2d,
    gather_windows,
    merge_phase_planes,
    pad2d,
    pad_or_crop2d,
    scatter_rows,
)

# --- the GEMM form (SPEC §6) -----------------------------------------------------------------

def columns(x, geo: ConvGeometry, out=None) -> np.ndarray:
    """im2col (6.2) of the zero-padded input, grouped for the GEMM:
    ``cols[n, γ, (c', u, v), (o_h, o_w)] = X̃[n, γ·Cg + c', s_h·o_h + d_h·u − p_h, s_w·o_w + d_w·v − p_w]``.

    Shape: x (N, C_in, H, W) -> cols (N, g, K, L), written to ``out`` when given.
    """
    N, g = x.shape[0], geo.groups
    xp = pad2d(x, geo.pad_h, geo.pad_w)                                # (N, C_in, Hp, Wp)
    shape = (N, geo.C_in, geo.kh, geo.kw, geo.Ho, geo.Wo)
    cols = np.empty(shape, x.dtype) if out is None else out.reshape(shape)
    gather_windows(xp, geo, cols)                                      # (N, C_in, kh, kw, Ho, Wo)
    return cols.reshape(N, g, -1, geo.Ho * geo.Wo)


def forward(x, w, b, geo: ConvGeometry, cols=None, out=None) -> np.ndarray:
    """``Y[n,q,o_h,o_w] = b[q] + Σ_{c',u,v} W[q,c',u,v]·X̃[n, γ(q)·Cg + c', s_h·o_h + d_h·u − p_h,
    s_w·o_w + d_w·v − p_w]``   (SPEC §2.3), as the GEMM ``Y_γ = W_γ cols_γ + b`` (6.3).

    ``cols`` (from :func:`columns`) is gathered here when not given.
    Shape: x (N, C_in, H, W) -> y (N, C_out, Ho, Wo), written to ``out`` when given.
    """
    N, g = x.shape[0], geo.groups
    if cols is None:
        cols = columns(x, geo)                                         # (N, g, K, L)
    y = np.empty((N, geo.C_out, geo.Ho, geo.Wo), np.result_type(x, w)) if out is None else out
    w_g = w.reshape(g, geo.C_out // g, -1)                             # (g, Qg, K)
    np.matmul(w_g, cols, out=y.reshape(N, g, geo.C_out // g, -1))      # (N, g, Qg, L): NCHW
    if b is not None:
        y += b.reshape(1, -1, 1, 1)                                    # + b[q]
    return y


def gy_on_rows(gy, geo: ConvGeometry) -> np.ndarray:
    """gY on the row grid: ``gY_rows[n, γ, q', o_h·Wq + o_w] = gY[n, γ·Qg + q', o_h, o_w]``, and 0
    at the wrap-around positions o_w >= Wo, so that they add nothing to gX.

    Shape: gy (N, C_out, Ho, Wo) -> (N, g, Qg, Ho·Wq).
    """
    N = gy.shape[0]
    rows = np.empty((N, geo.C_out, geo.Ho, geo.Wq), gy.dtype)
    rows[..., :geo.Wo] = gy
    rows[..., geo.Wo:] = 0
    return rows.reshape(N, geo.groups, geo.C_out // geo.groups, geo.Ho * geo.Wq)


def grad_bias(gy: np.ndarray) -> np.ndarray:
    """``gb[q] = Σ_{n, o_h, o_w} gY[n, q, o_h, o_w]``   (SPEC 3.1a). Shape (C_out,)."""
    return gy.sum(axis=(0, 2, 3))


def grad_weight(cols, gy, geo: ConvGeometry) -> np.ndarray:
    """``gW[q,c',u,v] = Σ_{n,o_h,o_w} gY[n,q,o_h,o_w]·X̃[n, γ(q)·Cg + c', s_h·o_h + d_h·u − p_h,
    s_w·o_w + d_w·v − p_w]``   (SPEC 3.1b), as the GEMM ``gW_γ = Σ_n gY_γ[n] cols_γ[n]ᵀ`` (6.4).

    Computed as ``(cols[n] gY[n]ᵀ)ᵀ``: the same products, but BLAS reads the large operand in its
    stored order (measured 1.3-1.4x faster). Shape: cols (N, g, K, L) -> (C_out, Cg, kh, kw).
    """
    N, g = gy.shape[0], geo.groups
    gy_g = gy.reshape(N, g, geo.C_out // g, -1)                        # (N, g, Qg, L)
    gw_t = np.matmul(cols, gy_g.transpose(0, 1, 3, 2)).sum(axis=0)     # (g, K, Qg)
    return np.ascontiguousarray(gw_t.transpose(0, 2, 1)).reshape(geo.weight_shape)


def grad_input(gy_rows, w, geo: ConvGeometry, out=None) -> np.ndarray:
    """``gX[n,c,i,j] = Σ_{q ∈ group γ(c)} Σ_{u ∈ U_h(i), v ∈ U_w(j)}
    gY[n, q, (i + p_h − d_h·u)/s_h, (j + p_w − d_w·v)/s_w]·W[q, c', u, v]``   (SPEC 3.1c),
    as ``gX = crop(col2im(Wᵀ gY))`` (6.5).

    ``dcols = Wᵀ gY`` is computed one kernel row u at a time and its taps added at once, so the
    columns being added are the ones just computed (a fifth of dcols for a 5x5 kernel). Each
    sample's dcols are laid on its own plane-sized stretch of the row grid, channel first
    (docs/math.md §7.3, step 5): a tap's add is then one run over all the samples.
    Shape: gy_rows (N, g, Qg, Ho·Wq) from :func:`gy_on_rows` -> gx (N, C_in, H, W).
    """
    N, g, T = gy_rows.shape[0], geo.groups, geo.T
    Qg, Cg, kh, kw = geo.C_out // g, geo.C_in // g, geo.kh, geo.kw
    P = geo.Hq * geo.Wq                                                # one sample's plane
    # w_rows[u, γ, (c', v), q'] = W[γ·Qg + q', c', u, v]: row u of Wᵀ, for each group
    w_rows = w.reshape(g, Qg, Cg, kh, kw).transpose(3, 0, 2, 4, 1).reshape(kh, g, Cg * kw, Qg)
    dtype = np.result_type(gy_rows, w)
    dcols_u = np.empty((g, Cg * kw, N, P), dtype)                      # channel first
    dcols_u[..., T:] = 0                                               # past the last output
    # the planes of all samples one after another, and one spare that takes the last
    # sample's spill (zeros only) past its plane
    gplanes = np.zeros((geo.C_in, geo.sh, geo.sw, (N + 1) * P), dtype)
    finite = bool(np.isfinite(w).all())
    for u in range(kh):
        # dcols[:, :, :, u] = Wᵀ gY: (N, g, Cg·kw, T), written into the channel-first layout
        np.matmul(w_rows[u], gy_rows[..., :T], out=dcols_u.transpose(2, 0, 1, 3)[..., :T])
        if not finite:  # inf·0 = NaN at the wrap positions o_w >= Wo would land on real cells
            dcols_u.reshape(g, Cg * kw, N, geo.Hq, geo.Wq)[..., :geo.Ho, geo.Wo:] = 0
        scatter_rows(dcols_u.reshape(geo.C_in, 1, kw, N * P), geo, gplanes, first_row=u)
    gplanes = gplanes[..., :N * P].reshape(geo.C_in, geo.sh, geo.sw, N, geo.Hq, geo.Wq)
    gx = np.empty((N, geo.C_in, geo.H, geo.W), dtype) if out is None else out
    # interleave the planes back into X_pad's grid, less its padding (which gets no gradient)
    merge_phase_planes(gplanes.transpose(3, 0, 1, 2, 4, 5), geo.Hp, geo.Wp, geo.pad_h,
                       geo.pad_w, out=gx)                              # (N, C_in, H, W)
    return gx


# --- a strided conv as a stride-1 conv of the phase planes (docs/math.md §7.6) ---------------

def _phase_batch(z: np.ndarray, geo: ConvGeometry) -> int:
    """The batch size N of :func:`.windows.phase_rows`' Z, from its length H_q·N·W_q + W_q."""
    return (z.shape[-1] - geo.Wq) // (geo.Hq * geo.Wq)


def _shift_count(geo: ConvGeometry) -> tuple[int, int]:
    """(R_h, R_w) = (kh / s_h, kw / s_w): the shifts (r, c) of the taps ``(s_h·r + a, s_w·c + b)``."""
    return geo.kh // geo.sh, geo.kw // geo.sw


def shift_weights(w: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """``W_rc[r, c, γ, q', (c', a, b)] = W[γ·Qg + q', c', s_h·r + a, s_w·c + b]``: the weight of
    each shift as a matrix over the phase-plane channels. Needs ``s | k`` on both axes.
    Shape (C_out, Cg, kh, kw) -> (R_h, R_w, g, Qg, Cg·s_h·s_w)."""
    Rh, Rw = _shift_count(geo)
    g, sh, sw = geo.groups, geo.sh, geo.sw
    Qg, Cg = geo.C_out // g, geo.C_in // g
    w7 = w.reshape(g, Qg, Cg, Rh, sh, Rw, sw)
    return np.ascontiguousarray(w7.transpose(3, 5, 0, 1, 2, 4, 6)).reshape(Rh, Rw, g, Qg, -1)


def forward_on_phases(z, w, geo: ConvGeometry, out=None) -> np.ndarray:
    """``Y[n,q,o_h,o_w] = Σ_{r,c} Σ_{c',a,b} W[q, c', s_h·r + a, s_w·c + b]·Z[c', a, b, t + off(r, c)]``
    with ``t = o_h·(N·W_q) + n·W_q + o_w`` and ``off(r, c) = r·(N·W_q) + c``: the conv forward of
    SPEC §2.3 read from the phase planes (docs/math.md §7.6), one GEMM per shift over the
    whole batch, no im2col. Needs ``s | k`` and dilation 1 on both axes.

    Positions with o_w >= W_out straddle a row end; they are computed and dropped.
    Shape: z (C_in, s_h, s_w, H_q·N·W_q + W_q) from :func:`.windows.phase_rows`
    -> y (N, C_out, Ho, Wo), written to ``out`` when given.
    """
    N, g = _phase_batch(z, geo), geo.groups
    row = N * geo.Wq                                                   # one row of the grid
    L = geo.Ho * row                                                   # positions t computed
    z_g = z.reshape(g, -1, z.shape[-1])                                # (g, Cg·sh·sw, len)
    w_rc = shift_weights(w, geo)                                       # (Rh, Rw, g, Qg, Cg·sh·sw)
    y_rows = None
    for r in range(w_rc.shape[0]):
        for c in range(w_rc.shape[1]):
            off = r * row + c
            part = np.matmul(w_rc[r, c], z_g[..., off:off + L])        # (g, Qg, L)
            if y_rows is None:
                y_rows = part
            else:
                y_rows += part
    assert y_rows is not None
    y = np.empty((N, geo.C_out, geo.Ho, geo.Wo), y_rows.dtype) if out is None else out
    # Y[n, q, o_h, o_w] = y_rows[q, o_h, n, o_w], the wrap-around positions o_w >= Wo dropped
    y[...] = y_rows.reshape(geo.C_out, geo.Ho, N, geo.Wq)[..., :geo.Wo].transpose(2, 0, 1, 3)
    return y


def gy_on_phase_grid(gy: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """gY on the grid of :func:`forward_on_phases`: ``E[γ, q', o_h·(N·W_q) + n·W_q + o_w] =
    gY[n, γ·Qg + q', o_h, o_w]``, and 0 at the wrap-around positions o_w >= W_out.

    Shape: gy (N, C_out, Ho, Wo) -> (g, Qg, Ho·N·Wq)."""
    N = gy.shape[0]
    grid = np.empty((geo.C_out, geo.Ho, N, geo.Wq), gy.dtype)
    grid[..., :geo.Wo] = gy.transpose(1, 2, 0, 3)
    grid[..., geo.Wo:] = 0
    return grid.reshape(geo.groups, geo.C_out // geo.groups, -1)


def grad_weight_on_phases(z, gy, geo: ConvGeometry) -> np.ndarray:
    """``gW[q, c', s_h·r + a, s_w·c + b] = Σ_t E[q, t]·Z[c', a, b, t + off(r, c)]`` (SPEC 3.1b on
    the grid of :func:`forward_on_phases`; E from :func:`gy_on_phase_grid`, 0 at the wrap-around
    positions), one GEMM per shift over the whole batch.

    Exact for a finite Z. An inf or NaN cell of x is also read at some wrap-around position,
    where ``0·inf`` adds NaN: :mod:`.engine` recomputes such a gW by the im2col form.
    Shape: z from :func:`.windows.phase_rows`, gy (N, C_out, Ho, Wo) -> (C_out, Cg, kh, kw).
    """
    N, g = gy.shape[0], geo.groups
    Rh, Rw = _shift_count(geo)
    row = N * geo.Wq
    L = geo.Ho * row
    e = gy_on_phase_grid(gy, geo)                                      # (g, Qg, L)
    z_g = z.reshape(g, -1, z.shape[-1])                                # (g, Cg·sh·sw, len)
    gw_t = np.empty((Rh, Rw, g, z_g.shape[1], e.shape[1]), np.result_type(z, gy))
    for r in range(Rh):
        for c in range(Rw):
            off = r * row + c
            # Z_rc Eᵀ rather than E Z_rcᵀ: BLAS reads the larger operand, Z, in its stored order
            np.matmul(z_g[..., off:off + L], e.transpose(0, 2, 1), out=gw_t[r, c])
    # gw_t[r, c, γ, (c', a, b), q'] -> gW[γ·Qg + q', c', s_h·r + a, s_w·c + b]
    gw = gw_t.reshape(Rh, Rw, g, geo.C_in // g, geo.sh, geo.sw, -1).transpose(2, 6, 3, 0, 4, 1, 5)
    return np.ascontiguousarray(gw).reshape(geo.weight_shape)


# --- the seed's form: zero-inserted gradient, flipped kernel (SPEC §3.2) ---------------------

def inserted_grad(gy: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """P: gy with s−1 zeros inserted, padded ``k_eff−1−p_before`` before and the rest after.

    The size is always ``H + k_eff − 1`` (3.2); the end padding exceeds the start padding by
    the remainder r when the stride does not divide. Negative amounts crop.
    Shape: gy (N, C_out, Ho, Wo) -> P (N, C_out, H + ke_h − 1, W + ke_w − 1).
    """
    G = dilate2d(gy, geo.sh, geo.sw)                                   # (N, C_out, sh(Ho-1)+1, ...)
    top = geo.keh - 1 - geo.pad_h[0]
    left = geo.kew - 1 - geo.pad_w[0]
    bottom = geo.H + geo.keh - 1 - top - G.shape[-2]
    right = geo.W + geo.kew - 1 - left - G.shape[-1]
    return pad_or_crop2d(G, top, bottom, left, right)


def flip_swap(w: np.ndarray, groups: int) -> np.ndarray:
    """W_T[γ·Cg + c', q', u, v] = W[γ·Qg + q', c', kh−1−u, kw−1−v]: rot180 on the spatial axes
    only, and C_out <-> C_in within each group. Shape (C_out, Cg, kh, kw) -> (C_in, Qg, kh, kw).
    """
    C_out, Cg, kh, kw = w.shape
    flipped = np.flip(w, axis=(2, 3))
    return (flipped.reshape(groups, C_out // groups, Cg, kh, kw)
            .transpose(0, 2, 1, 3, 4)
            .reshape(groups * Cg, C_out // groups, kh, kw))


def grad_input_inserted(gy, w, geo: ConvGeometry) -> np.ndarray:
    """(3.2a) ``gX[n, c] = Σ_{q in group} P[n, q] ⋆_d rot180(W[q, c'])``: a stride-1, unpadded
    conv of the inserted gradient P with W_T. Shape (N, C_in, H, W)."""
    P = inserted_grad(gy, geo)                                         # (N, C_out, H+keh-1, W+kew-1)
    w_t = flip_swap(w, geo.groups)                                     # (C_in, Qg, kh, kw)
    inner = conv_geometry(P.shape, w_t.shape, 1, 0, (geo.dh, geo.dw), geo.groups)
    return forward(np.ascontiguousarray(P), np.ascontiguousarray(w_t), None, inner)


def grad_weight_inserted(x, gy, geo: ConvGeometry) -> np.ndarray:
    """(3.2c) the seed's ``grad w = Rot180(Inserted Grad y ⋆ x)``:
    ``R[n,q,c] = P[n,q] ⋆ X[n,c]`` (x slides over P; size ke_h × ke_w), then
    ``gW[q,c'] = Σ_n rot180(R[n, q, γ(q)·Cg + c'])[::d_h, ::d_w]``.

    The sum over n becomes the contraction of one conv call: P plays the input with the batch as
    channels, x the kernel. Shape (C_out, Cg, kh, kw).
    """
    N, g = x.shape[0], geo.groups
    Cg, Qg = geo.C_in // g, geo.C_out // g
    P = inserted_grad(gy, geo)                                         # (N, C_out, PH, PW)
    PH, PW = P.shape[-2:]
    # input: one "image" per q', channels (γ, n): (Qg, g·N, PH, PW)
    p_in = P.reshape(N, g, Qg, PH, PW).transpose(2, 1, 0, 3, 4).reshape(Qg, g * N, PH, PW)
    # kernel: one filter per (γ, c'), reading channels n of its group: (g·Cg, N, H, W)
    x_k = x.reshape(N, g, Cg, geo.H, geo.W).transpose(1, 2, 0, 3, 4).reshape(g * Cg, N, geo.H, geo.W)
    inner = conv_geometry(p_in.shape, x_k.shape, 1, 0, 1, g)
    R = forward(np.ascontiguousarray(p_in), np.ascontiguousarray(x_k), None, inner)
    # R: (Qg, g·Cg, keh, kew) with R[q', γ·Cg + c'] = Σ_n P[n, γ·Qg + q'] ⋆ X[n, γ·Cg + c']
    R = R.reshape(Qg, g, Cg, geo.keh, geo.kew).transpose(1, 0, 2, 3, 4)  # (g, Qg, Cg, keh, kew)
    gw = np.flip(R, axis=(3, 4))[..., ::geo.dh, ::geo.dw]              # rot180 of the result
    return gw.reshape(geo.weight_shape)
