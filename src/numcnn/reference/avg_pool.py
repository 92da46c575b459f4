"""Average pooling forward and backward (SPEC §5.2) as loops."""
from __future__ import annotations

from numbers import Integral

import numpy as np

from numcnn.ops import shapes

from ._common import expect_shape, prologue, shape4


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
    dtype, x = prologue(op, x=x)
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
    dtype, gy = prologue(op, gy=gy)
    _check_divisor_override(divisor_override, op)
    input_shape = shape4(input_shape, "input_shape", op)
    geo = shapes.pool_geometry(input_shape, kernel_size, stride, padding, 1, ceil_mode, op)
    expect_shape(gy, geo.output_shape, "gy", op)
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
