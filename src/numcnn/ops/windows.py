"""Kernel windows of a padded image: the gather (im2col) and its adjoint (col2im)  (SPEC §6.2, §6.5).

Pure, single-threaded NumPy on whole arrays; :mod:`numcnn.ops.engine` decides how they run.

The gather, in the spec layout: ``cols[n, c, u, v, o_h, o_w] = X_pad[n, c, s_h·o_h + d_h·u,
s_w·o_w + d_w·v]``, shape (N, C, kh, kw, Ho, Wo): kernel taps before output positions, so
``cols.reshape(N, C·kh·kw, Ho·Wo)`` is free and ``W2d @ cols`` is NCHW output with no transpose.

The scatter, on the row grid (docs/math.md §7.3). Split X_pad into its s_h·s_w phase planes
``X_q[a, b] = X_pad[a::s_h, b::s_w]`` (one plane, X_pad itself, for stride 1), each padded to
Hq × Wq. Tap (u, v) reads plane ``(a, b) = (d_h·u mod s_h, d_w·v mod s_w)`` at ``X_q[a, b][o_h + r,
o_w + c]`` with ``(r, c) = (d_h·u div s_h, d_w·v div s_w)``: in the flattened plane that is cell
``t + off(u, v)`` with ``t = o_h·Wq + o_w`` and ``off = r·Wq + c``. Columns indexed by t instead of
(o_h, o_w), ``rows[..., o_h·Wq + o_w] = cols[..., o_h, o_w]`` and 0 at the wrap-around positions
o_w >= Wo, add each tap as one contiguous run of T = (Ho − 1)·Wq + Wo cells. Laid out channel
first, with each sample on its own stretch of Hq·Wq cells one after another (zeros past T), one
run covers every sample of the batch (docs/math.md §7.3).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .shapes import ConvGeometry, conv_geometry


def tap_slices(u: int, v: int, Ho: int, Wo: int, sh: int, sw: int, dh: int, dw: int):
    """Index of the input cells that kernel tap (u, v) reads for every output position.

    ``X_pad[..., s_h·o_h + d_h·u, s_w·o_w + d_w·v]`` for all (o_h, o_w) is the strided slice
    rows ``d_h·u : d_h·u + s_h(Ho-1) + 1 : s_h`` (and likewise for columns).
    """
    return (
        Ellipsis,
        slice(dh * u, dh * u + sh * (Ho - 1) + 1, sh),
        slice(dw * v, dw * v + sw * (Wo - 1) + 1, sw),
    )


def pad2d(x: np.ndarray, pad_h, pad_w, value: float = 0.0) -> np.ndarray:
    """Pad the last two axes by ``(before, after)`` each; returns ``x`` itself when nothing to do."""
    if tuple(pad_h) == (0, 0) and tuple(pad_w) == (0, 0):
        return x
    (top, bottom), (left, right) = pad_h, pad_w
    H, W = x.shape[-2:]
    out = np.empty(x.shape[:-2] + (top + H + bottom, left + W + right), x.dtype)
    out[..., :top, :] = value                                          # the border only:
    out[..., top + H:, :] = value                                      # the inside is x
    out[..., top:top + H, :left] = value
    out[..., top:top + H, left + W:] = value
    out[..., top:top + H, left:left + W] = x
    return out


def crop2d(x: np.ndarray, pad_h, pad_w) -> np.ndarray:
    """Inverse of :func:`pad2d` (a view): drop ``(before, after)`` rows and columns."""
    H, W = x.shape[-2:]
    return x[..., pad_h[0]:H - pad_h[1], pad_w[0]:W - pad_w[1]]


def dilate2d(g: np.ndarray, sh: int, sw: int) -> np.ndarray:
    """Insert s-1 zeros between neighbours (none outside): the seed's "inserted" gradient G.

    ``G[..., s_h·a, s_w·b] = g[..., a, b]``; shape (..., A, B) -> (..., s_h(A-1)+1, s_w(B-1)+1).
    """
    if sh == 1 and sw == 1:
        return g
    A, B = g.shape[-2:]
    out = np.zeros(g.shape[:-2] + (sh * (A - 1) + 1, sw * (B - 1) + 1), dtype=g.dtype)
    out[..., ::sh, ::sw] = g
    return out


def pad_or_crop2d(x: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Zero-pad the last two axes; a negative amount crops that many rows/columns instead."""
    H, W = x.shape[-2:]
    x = x[..., max(0, -top):H - max(0, -bottom), max(0, -left):W - max(0, -right)]
    return pad2d(x, (max(0, top), max(0, bottom)), (max(0, left), max(0, right)))


# --- phase planes and taps ---------------------------------------------------------------------

def tap_position(u: int, v: int, geo: ConvGeometry) -> tuple[int, int, int, int, int]:
    """Plane (a, b), shift (r, c) and flat offset of kernel tap (u, v): ``d_h·u = s_h·r + a``,
    ``d_w·v = s_w·c + b``, ``off = r·Wq + c``."""
    r, a = divmod(geo.dh * u, geo.sh)
    c, b = divmod(geo.dw * v, geo.sw)
    return a, b, r, c, r * geo.Wq + c


def _taps(geo: ConvGeometry) -> list[tuple[int, ...]]:
    """``(u, v, a, b, r, c, off)`` for every kernel tap, in scan order."""
    return [(u, v, *tap_position(u, v, geo)) for u in range(geo.kh) for v in range(geo.kw)]


def phase_planes(xp: np.ndarray, sh: int, sw: int, Hq: int, Wq: int) -> np.ndarray:
    """``planes[..., a, b, i, j] = xp[..., s_h·i + a, s_w·j + b]`` (0 beyond xp).

    Shape (N, C, Hp, Wp) -> (N, C, s_h, s_w, Hq, Wq). For stride 1 the one plane is xp itself.
    """
    if sh == sw == 1:
        return xp.reshape(xp.shape[:2] + (1, 1, Hq, Wq))
    planes = np.empty(xp.shape[:2] + (sh, sw, Hq, Wq), xp.dtype)
    for a in range(sh):
        for b in range(sw):
            part = xp[:, :, a::sh, b::sw]                              # (N, C, <=Hq, <=Wq)
            h, w = part.shape[-2:]
            planes[:, :, a, b, :h, :w] = part
            planes[:, :, a, b, h:] = 0
            planes[:, :, a, b, :h, w:] = 0
    return planes


def merge_phase_planes(planes: np.ndarray, Hp: int, Wp: int, crop_h=(0, 0), crop_w=(0, 0),
                       out: np.ndarray | None = None) -> np.ndarray:
    """Adjoint of :func:`phase_planes`: ``out[..., s_h·i + a, s_w·j + b] = planes[..., a, b, i, j]``,
    less ``crop_h`` rows and ``crop_w`` columns (before, after) of the padded grid: each plane
    is written straight into the cells it owns in the cropped grid, in one pass.

    Shape (N, C, s_h, s_w, Hq, Wq) -> (N, C, Hp − crop, Wp − crop), written to ``out`` when
    given; for stride 1 without ``out``, a view of the one plane.
    """
    N, C, sh, sw = planes.shape[:4]
    (top, bottom), (left, right) = crop_h, crop_w
    H, W = Hp - top - bottom, Wp - left - right
    if sh == sw == 1 and out is None:
        return planes[:, :, 0, 0, top:top + H, left:left + W]
    out = np.empty((N, C, H, W), planes.dtype) if out is None else out
    for a in range(sh):
        for b in range(sw):
            i0, j0 = (a - top) % sh, (b - left) % sw    # first cropped row/column of phase (a, b)
            part = out[:, :, i0::sh, j0::sw]                           # (N, C, <=Hq, <=Wq)
            r0, c0 = (i0 + top - a) // sh, (j0 + left - b) // sw
            part[...] = planes[:, :, a, b, r0:r0 + part.shape[-2], c0:c0 + part.shape[-1]]
    return out


def phase_rows(x: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """The phase planes of X_pad with the batch inside each plane row (docs/math.md §7.6):
    ``Z[c, a, b, i·(N·W_q) + n·W_q + j] = X_pad[n, c, s_h·i + a, s_w·j + b]`` (0 beyond X_pad),
    then W_q zeros that the last row's wrap-around positions read.

    Written straight from x: the padding is never materialized.
    Shape: x (N, C, H, W) -> Z (C, s_h, s_w, H_q·N·W_q + W_q).
    """
    N, C = x.shape[:2]
    sh, sw, Hq, Wq = geo.sh, geo.sw, geo.Hq, geo.Wq
    span = Hq * N * Wq
    z = np.zeros((C, sh, sw, span + Wq), x.dtype)
    grid = z[..., :span].reshape(C, sh, sw, Hq, N, Wq)
    for a in range(sh):
        i0 = max(0, -(-(geo.pad_h[0] - a) // sh))    # first plane row inside x: s_h·i0 + a >= top
        h0 = sh * i0 + a - geo.pad_h[0]
        for b in range(sw):
            j0 = max(0, -(-(geo.pad_w[0] - b) // sw))
            w0 = sw * j0 + b - geo.pad_w[0]
            part = x[:, :, h0::sh, w0::sw]                             # (N, C, rows, cols)
            rows, cols = part.shape[-2:]
            grid[:, a, b, i0:i0 + rows, :, j0:j0 + cols] = part.transpose(1, 2, 0, 3)
    return z


# --- im2col and col2im --------------------------------------------------------------------------

def gather_windows(xp: np.ndarray, geo: ConvGeometry, out: np.ndarray) -> np.ndarray:
    """im2col: ``cols[n, c, u, v, o_h, o_w] = xp[n, c, s_h·o_h + d_h·u, s_w·o_w + d_w·v]``   (6.2).

    Three ways to copy the same numbers, by which runs of them are long:

    * stride 1 down the rows and rows of under 16 outputs (LeNet-5's convs at 14x14): the
      width windows first, then each tap's H_out rows as one block (:func:`_gather_row_blocks`,
      1.3-1.7x faster there; slower from 28 outputs a row, where its extra pass costs more);
    * otherwise with stride 1, or rows shorter than 32 outputs: one copy of NumPy's read-only
      window view (few long loops; 2-3x faster than a copy per tap at 28x28);
    * with a stride and long rows, each tap is a contiguous block of one phase plane, which
      copies several times faster than every s-th element of xp.

    Shape: xp (N, C, Hp, Wp) -> out (N, C, kh, kw, Ho, Wo).
    """
    Ho, Wo, sh, sw, dh, dw = geo.Ho, geo.Wo, geo.sh, geo.sw, geo.dh, geo.dw
    if sh == 1 and Wo < 16 and out.flags.c_contiguous:    # it writes through a reshape of out
        return _gather_row_blocks(xp, geo, out)
    if max(sh, sw) == 1 or Wo < 32:
        view = sliding_window_view(xp, (geo.keh, geo.kew), axis=(2, 3))  # (N, C, ., ., keh, kew)
        view = view[:, :, :sh * (Ho - 1) + 1:sh, :sw * (Wo - 1) + 1:sw, ::dh, ::dw]
        np.copyto(out, view.transpose(0, 1, 4, 5, 2, 3))               # (N, C, kh, kw, Ho, Wo)
        return out
    planes = phase_planes(xp, sh, sw, geo.Hq, geo.Wq)                  # (N, C, sh, sw, Hq, Wq)
    for u, v, a, b, r, c, _ in _taps(geo):
        out[:, :, u, v] = planes[:, :, a, b, r:r + Ho, c:c + Wo]       # (N, C, Ho, Wo)
    return out


def _gather_row_blocks(xp: np.ndarray, geo: ConvGeometry, out: np.ndarray) -> np.ndarray:
    """:func:`gather_windows` for stride 1 down the rows, in two copies with longer runs:
    ``rows[n, c, v, i, o_w] = xp[n, c, i, s_w·o_w + d_w·v]`` (the width windows of every row),
    then tap (u, v) is rows ``d_h·u .. d_h·u + H_out − 1`` of ``rows[n, c, v]``: one block of
    H_out·W_out consecutive numbers. Shape: xp (N, C, Hp, Wp) -> out (N, C, kh, kw, Ho, Wo)."""
    N, C, Hp, _ = xp.shape
    Ho, Wo, kh, kw, dh = geo.Ho, geo.Wo, geo.kh, geo.kw, geo.dh
    width = sliding_window_view(xp, geo.kew, axis=3)[:, :, :, :geo.sw * (Wo - 1) + 1:geo.sw, ::geo.dw]
    rows = np.ascontiguousarray(width.transpose(0, 1, 4, 2, 3))       # (N, C, kw, Hp, Wo)
    blocks = sliding_window_view(rows.reshape(N, C, kw, Hp * Wo), Ho * Wo, axis=3)
    blocks = blocks[:, :, :, :dh * (kh - 1) * Wo + 1:dh * Wo]          # (N, C, kw, kh, Ho·Wo)
    np.copyto(out.reshape(N, C, kh, kw, Ho * Wo), blocks.transpose(0, 1, 3, 2, 4))
    return out


def scatter_rows(rows: np.ndarray, geo: ConvGeometry, out: np.ndarray, first_row: int = 0):
    """col2im on the row grid, channel first: ``planes[c, a, b, t + off(u, v)] += rows[c, u, v, t]``.

    ``t`` runs over the samples' stretches one after another (each H_q·W_q long, its numbers
    past position T zero), so one add covers every sample of the tap. Within a tap the run
    covers distinct cells, so ``+=`` is exact; overlapping taps add up. ``rows`` may hold only
    the kernel rows ``first_row, first_row + 1, ...`` (its axis 1).
    Shape (C, rows of kh, kw, L) -> adds into out (C, s_h, s_w, >= L + the largest offset).
    """
    L = rows.shape[-1]
    for i in range(rows.shape[1]):
        for v in range(geo.kw):
            a, b, _, _, off = tap_position(first_row + i, v, geo)
            out[:, a, b, off:off + L] += rows[:, i, v]                  # (C, L)
    return out


def _unpadded_geometry(xp_shape, kh, kw, sh, sw, dh, dw) -> ConvGeometry:
    N, C, Hp, Wp = xp_shape
    return conv_geometry((N, C, Hp, Wp), (1, C, kh, kw), (sh, sw), 0, (dh, dw), 1)


def col2im(dcols: np.ndarray, Hp: int, Wp: int, sh=1, sw=1, dh=1, dw=1) -> np.ndarray:
    """Adjoint of :func:`im2col`: scatter-add the columns back onto the padded input grid
    (the spec layout laid on the row grid, then :func:`scatter_rows`).

    ``gX_pad[n, c, i, j] = Σ over (u, v, o_h, o_w) with s_h·o_h + d_h·u = i, s_w·o_w + d_w·v = j
    of dcols[n, c, u, v, o_h, o_w]``; cells no window reads stay 0.
    Shape: dcols (N, C, kh, kw, Ho, Wo) -> (N, C, Hp, Wp).
    """
    N, C, kh, kw, Ho, Wo = dcols.shape
    geo = _unpadded_geometry((N, C, Hp, Wp), kh, kw, sh, sw, dh, dw)
    Hq, Wq = geo.Hq, geo.Wq
    rows = np.zeros((C, kh, kw, N, Hq, Wq), dcols.dtype)               # wrap positions stay 0
    rows[..., :Ho, :Wo] = dcols.transpose(1, 2, 3, 0, 4, 5)
    planes = np.zeros((C, sh, sw, (N + 1) * Hq * Wq), dcols.dtype)     # + a spare plane
    scatter_rows(rows.reshape(C, kh, kw, N * Hq * Wq), geo, planes)
    planes = planes[..., :N * Hq * Wq].reshape(C, sh, sw, N, Hq, Wq)
    return np.ascontiguousarray(merge_phase_planes(planes.transpose(3, 0, 1, 2, 4, 5), Hp, Wp))


def im2col(xp: np.ndarray, kh: int, kw: int, Ho: int, Wo: int, sh=1, sw=1, dh=1, dw=1):
    """:func:`gather_windows` with the sizes given one by one, into a fresh array.

    Shape: xp (N, C, Hp, Wp) -> cols (N, C, kh, kw, Ho, Wo), a fresh C-contiguous array.
    """
    geo = _unpadded_geometry(xp.shape, kh, kw, sh, sw, dh, dw)
    if (geo.Ho, geo.Wo) != (Ho, Wo):
        raise ValueError(f"im2col: Ho, Wo = {(Ho, Wo)} is not the output size {(geo.Ho, geo.Wo)} of xp")
    return gather_windows(xp, geo, np.empty(xp.shape[:2] + (kh, kw, Ho, Wo), xp.dtype))
