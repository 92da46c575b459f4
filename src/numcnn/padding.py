"""``pad``: pad or crop the last axes of a tensor, as ``torch.nn.functional.pad``.

Re-exported as :func:`numcnn.functional.pad`. The forward is ``np.pad`` on the kept part of the
input; the backward is the adjoint of each mode, written with slices (:func:`_pad_fold`).
"""
from __future__ import annotations

import numpy as np

from .autograd import Tensor, make

__all__ = ["pad"]

_PAD_MODES = ("constant", "reflect", "replicate", "circular")
_NP_PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _pad_fold(g: np.ndarray, axis: int, before: int, after: int, n: int, mode: str) -> np.ndarray:
    """Adjoint of padding one axis of length ``n`` by ``before``/``after`` copied cells in
    ``mode``: the centre of ``g`` plus, for every padded cell, its gradient added onto the source
    cell it copied (reflect: ``i ↦ −i`` / ``2(n−1)−i``; replicate: the edge; circular: ``i mod n``)."""
    def at(s: slice) -> tuple:
        return (slice(None),) * axis + (s,)

    gx = g[at(slice(before, before + n))].copy()
    left, right = g[at(slice(0, before))], g[at(slice(before + n, None))]
    if mode == "reflect":
        gx[at(slice(1, 1 + before))] += np.flip(left, axis)
        gx[at(slice(n - 1 - after, n - 1))] += np.flip(right, axis)
    elif mode == "replicate":
        gx[at(slice(0, 1))] += left.sum(axis=axis, keepdims=True)
        gx[at(slice(n - 1, n))] += right.sum(axis=axis, keepdims=True)
    else:
        gx[at(slice(n - before, n))] += left
        gx[at(slice(0, after))] += right
    return gx


def pad(input, pad, mode="constant", value=None):
    """Pad (or, with negative amounts, crop) the last ``len(pad)//2`` axes, as
    ``torch.nn.functional.pad``.

    ``pad = (l_last, r_last, l_{last−1}, r_{last−1}, ...)`` lists (before, after) amounts starting
    from the LAST axis. On an axis of length ``n`` the output has length ``n + l + r`` and, for
    output index ``j`` with ``i = j − l``:

    - ``'constant'``: ``y[j] = x[i]`` for ``0 ≤ i < n``, else ``value`` (default 0). Any
      ``input.ndim`` and up to ``ndim`` padded axes; needs ``n + min(l, 0) + min(r, 0) ≥ 0``.
    - ``'reflect'``: ``y[j] = x[r(i)]`` with ``r(i) = −i`` (``i < 0``), ``2(n−1) − i``
      (``i ≥ n``) — mirrored without repeating the edge; needs ``l, r < n``.
    - ``'replicate'``: ``y[j] = x[clip(i, 0, n−1)]``; needs ``n ≥ 1``.
    - ``'circular'``: negative amounts crop first to ``x' = x[max(−l, 0) : n + min(r, 0)]`` of
      length ``n'``; then ``y[j] = x'[(j − max(l, 0)) mod n']``; each positive amount must be
      ``≤ n'`` (wrap at most once).

    Negative amounts crop that side (for reflect/replicate the reflection is of the uncropped
    axis, i.e. pad then crop). As torch, the non-constant modes pad the last 1, 2 or 3 axes of a
    2-D/3-D, 3-D/4-D or 4-D/5-D input respectively and take no ``value`` other than None or 0;
    reflect/replicate need padded output lengths ``≥ 0`` with at least one ``≥ 1`` (torch's rule),
    circular (and constant) only ``≥ 0``.

    Backward: constant crops the gradient (zero on cropped-away input cells); the other modes
    add each padded cell's gradient onto the input cell it copied (the adjoint, by slicing).

    Examples
    --------
    >>> import numpy as np, numcnn as nc
    >>> x = nc.tensor(np.arange(4.0).reshape(1, 4), requires_grad=True)
    >>> pad(x, (2, 1), mode="reflect").data
    array([[2., 1., 0., 1., 2., 3., 2.]])
    >>> pad(x, (2, 1), mode="reflect").sum().backward()
    >>> x.grad
    array([[1., 2., 3., 1.]])
    >>> pad(x, (-1, 2), value=9.0).data
    array([[1., 2., 3., 9., 9.]])
    """
    x = input if isinstance(input, Tensor) else Tensor(input)  # any dtype: padding copies
    k = _check_arguments(x, pad, mode, value)
    if k == 0:  # nothing padded (also the only pad of a 0-d input): a copy, as torch
        return make(x.data.copy(), (x,), lambda g: (g,), "Pad")
    axes = range(x.ndim - k, x.ndim)
    full = [(0, 0)] * x.ndim                  # (before, after) per axis; pad lists the last first
    for i in range(k):
        full[x.ndim - 1 - i] = (int(pad[2 * i]), int(pad[2 * i + 1]))
    _check_amounts(x.shape, pad, full, axes, mode)
    pos = [(max(l, 0), max(r, 0)) for l, r in full]
    # ``cut``: the kept part of an axis of length n that has -min(l,0) / -min(r,0) cropped off
    cut = [slice(-min(l, 0), n + min(r, 0)) for (l, r), n in zip(full, x.shape)]
    if mode in ("constant", "circular"):
        inner = x.data[tuple(cut)]
        if mode == "constant":
            fill = 0 if value is None else value
            out = np.pad(inner, pos, mode="constant", constant_values=fill)
        else:
            out = np.pad(inner, pos, mode="wrap")
    else:
        padded = np.pad(x.data, pos, mode=_NP_PAD_MODE[mode])
        # crop the padded array; in the backward, ``g`` fills this window of a zero array
        window = tuple(slice(-min(l, 0), m + min(r, 0)) for (l, r), m in zip(full, padded.shape))
        out, padded_shape = padded[window], padded.shape

    def backward(g):
        if mode in ("reflect", "replicate"):
            gx = np.zeros(padded_shape, dtype=g.dtype)  # adjoint of the crop, then of the pad
            gx[window] = g
            for ax in axes:
                gx = _pad_fold(gx, ax, *pos[ax], x.shape[ax], mode)
            return (gx,)
        if mode == "constant":
            g = g[tuple(slice(b, b + s.stop - s.start) for (b, _), s in zip(pos, cut))]
        else:
            for ax in axes:
                g = _pad_fold(g, ax, *pos[ax], cut[ax].stop - cut[ax].start, mode)
        gx = np.zeros(x.shape, dtype=g.dtype)  # cropped-away cells get no gradient
        gx[tuple(cut)] = g
        return (gx,)

    return make(out, (x,), backward, "Pad")


def _check_arguments(x: Tensor, pad, mode: str, value) -> int:
    """The mode, the type and length of ``pad`` and what the non-constant modes accept; returns
    the number of padded axes."""
    op = "pad"
    if mode not in _PAD_MODES:
        raise ValueError(f"{op}: mode must be one of {_PAD_MODES}, got {mode!r}")
    if not isinstance(pad, (tuple, list)) or not all(
            isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in pad):
        raise TypeError(f"{op}: pad must be a tuple or list of ints, got {pad!r}")
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"{op}: pad must have an even length <= 2·ndim = {2 * x.ndim}, got {pad!r}")
    k = len(pad) // 2
    if mode != "constant":
        if value is not None and value != 0:
            raise ValueError(f"{op}: value is only used by mode='constant', got value={value!r} "
                             f"with mode={mode!r}")
        if k not in (1, 2, 3) or x.ndim not in (k + 1, k + 2):
            raise ValueError(
                f"{op}: mode={mode!r} pads the last 1, 2 or 3 axes of a 2-D/3-D, 3-D/4-D or "
                f"4-D/5-D input (pad of length 2, 4 or 6), got a pad of length {len(pad)} for "
                f"input of shape {x.shape}")
    return k


def _check_amounts(shape: tuple, pad, full: list, axes: range, mode: str) -> None:
    """Each padded axis's amounts against the mode's rule (the docstring of :func:`pad`)."""
    op = "pad"
    for ax in axes:
        (l, r), n = full[ax], shape[ax]
        kept, size = n + min(l, 0) + min(r, 0), n + l + r
        where = f"padding ({l}, {r}) of dimension {ax} of input of shape {shape}"
        if mode in ("constant", "circular") and kept < 0:
            raise ValueError(f"{op}: {where} crops more than the whole dimension; "
                             f"expected {n} + min(left, 0) + min(right, 0) >= 0")
        if mode == "reflect" and (l >= n or r >= n):
            raise ValueError(f"{op}: {where}: reflect padding must be < the dimension size {n}")
        if mode == "replicate" and n == 0:
            raise ValueError(f"{op}: {where}: replicate padding needs a non-empty dimension")
        if mode in ("reflect", "replicate") and size < 0:
            raise ValueError(f"{op}: {where} gives output size {size}; expected >= 0")
        if mode == "circular" and max(l, r) > kept:
            raise ValueError(f"{op}: {where} wraps around more than once; expected each "
                             f"positive amount <= the (cropped) size {kept}")
    sizes = [shape[ax] + sum(full[ax]) for ax in axes]
    if mode in ("reflect", "replicate") and max(sizes) < 1:
        raise ValueError(f"{op}: pad {pad!r} gives padded output sizes {tuple(sizes)} for input of "
                         f"shape {shape}; expected at least one >= 1 (as torch)")
