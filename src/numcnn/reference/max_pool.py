"""Max pooling with window-local argmax, forward and backward (SPEC §5.3), as loops."""
from __future__ import annotations

import math

import numpy as np

from numcnn.ops import shapes

from ._common import expect_shape, prologue, shape4


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
    dtype, x = prologue(op, x=x)
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
    dtype, gy = prologue(op, gy=gy)
    argmax = np.asarray(argmax)
    input_shape = shape4(input_shape, "input_shape", op)
    geo = shapes.pool_geometry(input_shape, kernel_size, stride, padding, dilation, ceil_mode, op)
    expect_shape(gy, geo.output_shape, "gy", op)
    expect_shape(argmax, gy.shape, "argmax", op)
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
