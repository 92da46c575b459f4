"""Adaptive average pooling forward and backward (PyTorch's window rule) as loops."""
from __future__ import annotations

import numpy as np

from numcnn.ops import shapes

from ._common import expect_shape, prologue, shape4


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
    dtype, x = prologue(op, x=x)
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
    dtype, gy = prologue(op, gy=gy)
    N, C, H, W = shape4(input_shape, "input_shape", op)
    H_out, W_out = _adaptive_output_size(output_size, H, W, op)
    expect_shape(gy, (N, C, H_out, W_out), "gy", op)

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
