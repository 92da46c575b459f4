"""Kernel windows of a padded image: the gather (im2col) and its adjoint (col2im)  (SPEC §6.2, §6.5).

Pure, single-threaded NumPy on whole arrays; :mod:`numcnn.ops.engine` decides how they run.

Spec layout: ``cols[n, c, u, v, o_h, o_w] = X_pad[n, c, s_h·o_h + d_h·u, s_w·o_w + d_w·v]``, shape
(N, C, kh, kw, Ho, Wo): kernel taps before output positions, so ``cols.reshape(N, C·kh·kw, Ho·Wo)``
is free and ``W2d @ cols`` is NCHW output with no transpose.

Row-grid layout (docs/math.md §7.3), the form the kernels compute in. Split X_pad into its
s_h·s_w phase planes ``X_q[a, b] = X_pad[a::s_h, b::s_w]`` (one plane, X_pad itself, for stride 1),
each padded to Hq × Wq and flattened. Tap (u, v) reads plane ``(a, b) = (d_h·u mod s_h, d_w·v mod s_w)``
at ``X_q[a, b][o_h + r, o_w + c]`` with ``(r, c) = (d_h·u div s_h, d_w·v div s_w)``: in the flattened
plane that is cell ``t + off(u, v)`` with ``t = o_h·Wq + o_w`` and ``off = r·Wq + c``. So

    ``rows[n, c, u, v, t] = X_q[n, c, a, b].flat[t + off(u, v)]``,  t in [0, T), T = (Ho − 1)·Wq + Wo,

is one contiguous run per tap; ``cols[..., o_h, o_w] = rows[..., o_h·Wq + o_w]``, and the t with
o_w >= Wo are wrap-around positions that the kernels compute and drop.
"""
from __future__ import annotations

import numpy as np

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


def pad2d(x: np.ndarray, pad_h, pad_w, value: float = 0.0, empty=np.empty) -> np.ndarray:
    """Pad the last two axes by ``(before, after)`` each; returns ``x`` itself when nothing to do."""
    if tuple(pad_h) == (0, 0) and tuple(pad_w) == (0, 0):
        return x
    (top, bottom), (left, right) = pad_h, pad_w
    H, W = x.shape[-2:]
    out = empty(x.shape[:-2] + (top + H + bottom, left + W + right), x.dtype)
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


# --- the row grid: phase planes and taps ------------------------------------------------------

def tap_position(u: int, v: int, geo: ConvGeometry) -> tuple[int, int, int]:
    """Plane (a, b) and flat offset of kernel tap (u, v): ``d·u = s·r + a``, ``off = r·Wq + c``."""
    r, a = divmod(geo.dh * u, geo.sh)
    c, b = divmod(geo.dw * v, geo.sw)
    return a, b, r * geo.Wq + c


def _taps(geo: ConvGeometry) -> list[tuple[int, int, int, int, int]]:
    """``(u, v, a, b, off)`` for every kernel tap, in scan order."""
    return [(u, v, *tap_position(u, v, geo)) for u in range(geo.kh) for v in range(geo.kw)]


def phase_planes(xp: np.ndarray, sh: int, sw: int, Hq: int, Wq: int, empty=np.empty):
    """``planes[..., a, b, i, j] = xp[..., s_h·i + a, s_w·j + b]`` (0 beyond xp), flattened.

    Shape (N, C, Hp, Wp) -> (N, C, s_h, s_w, Hq·Wq). For stride 1 the one plane is xp itself.
    """
    if sh == sw == 1:
        return xp.reshape(xp.shape[:2] + (1, 1, Hq * Wq))
    planes = empty(xp.shape[:2] + (sh, sw, Hq, Wq), xp.dtype)
    for a in range(sh):
        for b in range(sw):
            part = xp[:, :, a::sh, b::sw]                              # (N, C, <=Hq, <=Wq)
            h, w = part.shape[-2:]
            planes[:, :, a, b, :h, :w] = part
            planes[:, :, a, b, h:] = 0
            planes[:, :, a, b, :h, w:] = 0
    return planes.reshape(xp.shape[:2] + (sh, sw, Hq * Wq))


def merge_phase_planes(planes: np.ndarray, Hp: int, Wp: int, empty=np.empty) -> np.ndarray:
    """Adjoint of :func:`phase_planes`: ``out[..., s_h·i + a, s_w·j + b] = planes[..., a, b, i, j]``.

    Shape (N, C, s_h, s_w, Hq·Wq) -> (N, C, Hp, Wp); for stride 1 a view of the one plane.
    """
    N, C, sh, sw = planes.shape[:4]
    if sh == sw == 1:
        return planes.reshape(N, C, Hp, Wp)
    Hq, Wq = -(-Hp // sh), -(-Wp // sw)
    grid = planes.reshape(N, C, sh, sw, Hq, Wq)
    out = empty((N, C, Hp, Wp), planes.dtype)
    for a in range(sh):
        for b in range(sw):
            part = out[:, :, a::sh, b::sw]                             # (N, C, <=Hq, <=Wq)
            part[...] = grid[:, :, a, b, :part.shape[-2], :part.shape[-1]]
    return out


def gather_rows(planes: np.ndarray, geo: ConvGeometry, out: np.ndarray) -> np.ndarray:
    """``rows[n, c, u, v, t] = planes[n, c, a, b, t + off(u, v)]``: one contiguous run per tap.

    Shape (N, C, s_h, s_w, Hq·Wq) -> out (N, C, kh, kw, Ho·Wq); t >= T is left as it is.
    """
    T = geo.T
    for u, v, a, b, off in _taps(geo):
        out[:, :, u, v, :T] = planes[:, :, a, b, off:off + T]          # (N, C, T)
    return out


def scatter_rows(rows: np.ndarray, geo: ConvGeometry, out: np.ndarray) -> np.ndarray:
    """Adjoint of :func:`gather_rows`: ``planes[n, c, a, b, t + off(u, v)] += rows[n, c, u, v, t]``.

    Within a tap the run covers distinct cells, so ``+=`` is exact; overlapping taps add up.
    Shape (N, C, kh, kw, >=T) -> out (N, C, s_h, s_w, Hq·Wq), zeroed here.
    """
    T = geo.T
    out.fill(0)
    for u, v, a, b, off in _taps(geo):
        out[:, :, a, b, off:off + T] += rows[:, :, u, v, :T]           # (N, C, T)
    return out


# --- the spec layout ----------------------------------------------------------------------------

def _unpadded_geometry(xp_shape, kh, kw, sh, sw, dh, dw) -> ConvGeometry:
    N, C, Hp, Wp = xp_shape
    return conv_geometry((N, C, Hp, Wp), (1, C, kh, kw), (sh, sw), 0, (dh, dw), 1)


def im2col(xp: np.ndarray, kh: int, kw: int, Ho: int, Wo: int, sh=1, sw=1, dh=1, dw=1):
    """Gather every kernel window of the padded input into columns, in the spec layout.

    ``cols[n, c, u, v, o_h, o_w] = xp[n, c, s_h·o_h + d_h·u, s_w·o_w + d_w·v]``.
    Shape: xp (N, C, Hp, Wp) -> cols (N, C, kh, kw, Ho, Wo), C-contiguous.
    """
    geo = _unpadded_geometry(xp.shape, kh, kw, sh, sw, dh, dw)
    assert (geo.Ho, geo.Wo) == (Ho, Wo), "im2col: Ho, Wo must be the output size of xp"
    planes = phase_planes(xp, sh, sw, geo.Hq, geo.Wq)
    rows = gather_rows(planes, geo, np.empty(xp.shape[:2] + (kh, kw, Ho * geo.Wq), xp.dtype))
    return np.ascontiguousarray(rows.reshape(xp.shape[:2] + (kh, kw, Ho, geo.Wq))[..., :Wo])


def col2im(dcols: np.ndarray, Hp: int, Wp: int, sh=1, sw=1, dh=1, dw=1) -> np.ndarray:
    """Adjoint of :func:`im2col`: scatter-add the columns back onto the padded input grid.

    ``gX_pad[n, c, i, j] = Σ over (u, v, o_h, o_w) with s_h·o_h + d_h·u = i, s_w·o_w + d_w·v = j
    of dcols[n, c, u, v, o_h, o_w]``; cells no window reads stay 0.
    Shape: dcols (N, C, kh, kw, Ho, Wo) -> (N, C, Hp, Wp).
    """
    N, C, kh, kw, Ho, Wo = dcols.shape
    geo = _unpadded_geometry((N, C, Hp, Wp), kh, kw, sh, sw, dh, dw)
    rows = np.zeros((N, C, kh, kw, Ho, geo.Wq), dcols.dtype)          # wrap positions stay 0
    rows[..., :Wo] = dcols
    planes = scatter_rows(rows.reshape(N, C, kh, kw, Ho * geo.Wq), geo,
                          np.empty((N, C, sh, sw, geo.Hq * geo.Wq), dcols.dtype))
    return merge_phase_planes(planes, Hp, Wp)
