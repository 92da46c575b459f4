"""The window gather (im2col) and its adjoint, the scatter-add (col2im)   (SPEC-math §6.2, §6.5).

Column layout: ``cols[n, c, u, v, o_h, o_w] = X_pad[n, c, s_h·o_h + d_h·u, s_w·o_w + d_w·v]``,
shape (N, C, kh, kw, Ho, Wo). Keeping the kernel taps before the output positions means
``cols.reshape(N, C·kh·kw, Ho·Wo)`` is free and one batched GEMM ``W2d @ cols`` yields NCHW output
with no transpose. Both directions loop over the kh·kw kernel taps only; each iteration is one
strided slice of a whole batch block, and the blocks run on the kernel threads
(:mod:`numcnn.ops.parallel`). For stride 1 the scatter-add also has a whole-row form
(:func:`col2im_rows`) whose taps add long contiguous runs.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import parallel


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
    if pad_h == (0, 0) and pad_w == (0, 0):
        return x
    N, C, H, W = x.shape
    out = np.full((N, C, H + pad_h[0] + pad_h[1], W + pad_w[0] + pad_w[1]), value, dtype=x.dtype)
    out[:, :, pad_h[0]:pad_h[0] + H, pad_w[0]:pad_w[0] + W] = x
    return out


def crop2d(x: np.ndarray, pad_h, pad_w) -> np.ndarray:
    """Inverse of :func:`pad2d` (a view): drop ``(before, after)`` rows and columns."""
    H, W = x.shape[-2:]
    return x[..., pad_h[0]:H - pad_h[1], pad_w[0]:W - pad_w[1]]


def _phase(u: int, s: int, d: int) -> tuple[int, int]:
    """Tap u reads rows s·o + d·u = s·(o + d·u // s) + (d·u mod s): phase plane (d·u mod s),
    starting at row d·u // s of that plane."""
    return (d * u) % s, (d * u) // s


def im2col(xp: np.ndarray, kh: int, kw: int, Ho: int, Wo: int, sh=1, sw=1, dh=1, dw=1,
           out: np.ndarray | None = None, pad_h=(0, 0), pad_w=(0, 0)) -> np.ndarray:
    """Gather every kernel window of the padded input into columns.

    ``cols[n, c, u, v, o_h, o_w] = xp[n, c, s_h·o_h + d_h·u, s_w·o_w + d_w·v]``

    ``xp`` is the input already padded, or the unpadded input with ``pad_h``/``pad_w`` given: then
    each batch block is padded just before its gather, in the same thread. The batch is split
    among the cores (:func:`~numcnn.ops.parallel.over_batch`).

    Small outputs are copied from the window view in one call. Long output rows with a stride
    > 1 first split the input into its s_h·s_w phase planes ``xp[..., a::s_h, b::s_w]`` (one
    copy of xp in all): every tap then reads a contiguous block of one plane instead of every
    s-th element, which copies several times faster.

    Shape: xp (N, C, Hp, Wp) -> cols (N, C, kh, kw, Ho, Wo), a fresh C-contiguous array.
    """
    N, C = xp.shape[:2]
    if out is None:
        out = np.empty((N, C, kh, kw, Ho, Wo), dtype=xp.dtype)

    def gather(block):
        _im2col_into(pad2d(xp[block], pad_h, pad_w), kh, kw, Ho, Wo, sh, sw, dh, dw, out[block])

    parallel.over_batch(gather, N, out.size)
    return out


def _im2col_into(xp, kh, kw, Ho, Wo, sh, sw, dh, dw, out) -> None:
    if max(sh, sw) == 1 or Wo < 32:
        # one strided copy of the read-only window view: fewer, longer inner loops than a copy
        # per tap, which matters for small images (measured 2-3x faster at 28x28)
        keh, kew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
        view = sliding_window_view(xp, (keh, kew), axis=(2, 3))       # (N, C, Hp-keh+1, ..., keh, kew)
        view = view[:, :, :sh * (Ho - 1) + 1:sh, :sw * (Wo - 1) + 1:sw, ::dh, ::dw]
        np.copyto(out, view.transpose(0, 1, 4, 5, 2, 3))              # (N, C, kh, kw, Ho, Wo)
        return
    planes: dict[tuple[int, int], np.ndarray] = {}
    for u in range(kh):
        a, r0 = _phase(u, sh, dh)
        for v in range(kw):
            b, c0 = _phase(v, sw, dw)
            if (a, b) not in planes:
                planes[a, b] = np.ascontiguousarray(xp[:, :, a::sh, b::sw])
            out[:, :, u, v] = planes[a, b][:, :, r0:r0 + Ho, c0:c0 + Wo]  # (N, C, Ho, Wo)


def col2im(dcols: np.ndarray, Hp: int, Wp: int, sh=1, sw=1, dh=1, dw=1,
           crop_h=(0, 0), crop_w=(0, 0)) -> np.ndarray:
    """Adjoint of :func:`im2col`: scatter-add the columns back onto the padded input grid.

    ``gX_pad[n, c, i, j] = Σ over (u, v, o_h, o_w) with s_h·o_h + d_h·u = i, s_w·o_w + d_w·v = j
    of dcols[n, c, u, v, o_h, o_w]``

    Within one tap (u, v) the slice addresses distinct cells, so a buffered ``+=`` is exact;
    overlapping windows accumulate across taps. Cells no window reads stay 0. With a stride > 1
    the sums go into contiguous blocks of the phase planes, interleaved once at the end. The
    batch is split among the cores; ``crop_h``/``crop_w`` then remove the padding (adjoint of
    the ``pad_h``/``pad_w`` of :func:`im2col`) within each block.

    Shape: dcols (N, C, kh, kw, Ho, Wo) -> (N, C, Hp − crop, Wp − crop), C-contiguous.
    """
    N, C = dcols.shape[:2]
    out = np.empty((N, C, Hp - sum(crop_h), Wp - sum(crop_w)), dtype=dcols.dtype)

    def scatter(block):
        summed = _col2im(dcols[block], Hp, Wp, sh, sw, dh, dw)
        out[block] = crop2d(summed, crop_h, crop_w)

    parallel.over_batch(scatter, N, dcols.size)
    return out


def col2im_rows(row_columns, n: int, C: int, Hp: int, Wp: int, kh: int, kw: int, dh=1, dw=1,
                crop_h=(0, 0), crop_w=(0, 0), dtype=np.float64) -> np.ndarray:
    """:func:`col2im` for stride 1, on columns laid out over whole padded rows.

    With stride 1, tap (u, v) of output (o_h, o_w) reads the flattened padded input at
    ``(o_h + d_h·u)·Wp + o_w + d_w·v = t + off(u, v)`` with ``t = o_h·Wp + o_w``. So if the columns
    index the outputs on an Ho × Wp grid (``dcols_rows[..., u, v, t]``, zero at the Wp − Wo
    columns no output uses), each tap adds one contiguous run of Ho·Wp values at offset
    ``off(u, v) = d_h·u·Wp + d_w·v``: long runs instead of Ho runs of Wo, about twice as fast.

    ``row_columns(u)`` gives the columns of kernel row u, shape (n, C, kw, Ho·Wp), when they
    are needed, so a caller can compute them one kernel row at a time (the conv input
    gradient multiplies them out of gY here). Runs on the calling thread: callers split the
    batch. Returns (n, C, Hp − crop, Wp − crop), a view of a fresh buffer.
    """
    # the last tap's run ends d_w·(kw − 1) cells past the grid, where only zeros land
    flat = np.zeros((n, C, Hp * Wp + dw * (kw - 1)), dtype=dtype)
    for u in range(kh):
        dcols_u = row_columns(u)                                       # (n, C, kw, Ho·Wp)
        run = dcols_u.shape[-1]
        for v in range(kw):
            offset = dh * u * Wp + dw * v
            flat[:, :, offset:offset + run] += dcols_u[:, :, v]
    grid = flat[:, :, :Hp * Wp].reshape(n, C, Hp, Wp)
    return crop2d(grid, crop_h, crop_w)


def _col2im(dcols, Hp, Wp, sh, sw, dh, dw) -> np.ndarray:
    N, C, kh, kw, Ho, Wo = dcols.shape
    out = np.zeros((N, C, Hp, Wp), dtype=dcols.dtype)
    if sh == sw == 1:
        for u in range(kh):
            for v in range(kw):
                out[tap_slices(u, v, Ho, Wo, sh, sw, dh, dw)] += dcols[:, :, u, v]
        return out
    planes: dict[tuple[int, int], np.ndarray] = {}
    for u in range(kh):
        a, r0 = _phase(u, sh, dh)
        for v in range(kw):
            b, c0 = _phase(v, sw, dw)
            if (a, b) not in planes:
                planes[a, b] = np.zeros((N, C, len(range(a, Hp, sh)), len(range(b, Wp, sw))),
                                        dtype=dcols.dtype)
            planes[a, b][:, :, r0:r0 + Ho, c0:c0 + Wo] += dcols[:, :, u, v]
    for (a, b), plane in planes.items():
        out[:, :, a::sh, b::sw] = plane
    return out


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
