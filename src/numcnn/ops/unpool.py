"""Max unpooling on ndarrays: the partial inverse of max pooling (``torch.nn.MaxUnpool2d``).

Dimension legend: N batch, C channels, H/W pooled size, Ho/Wo unpooled size. ``indices`` are
PyTorch's flat positions ``i·Wo + j`` within each (n, c) plane of the output.
"""
from __future__ import annotations

import numpy as np

__all__ = ["max_unpool2d_backward", "max_unpool2d_forward"]


def max_unpool2d_forward(x: np.ndarray, indices: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """``Y[n, c].flat[I[n, c, h, w]] = X[n, c, h, w]``, every other output cell 0.

    A scatter into each plane (one ``put_along_axis``, no loop). Where several inputs name the
    same cell one of them wins, as in PyTorch (which leaves the choice unspecified).
    """
    N, C = x.shape[:2]
    y = np.zeros((N, C, out_hw[0] * out_hw[1]), dtype=x.dtype)        # (N, C, Ho·Wo)
    np.put_along_axis(y, indices.reshape(N, C, -1), x.reshape(N, C, -1), axis=2)
    return y.reshape(N, C, *out_hw)


def max_unpool2d_backward(gy: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """``gX[n, c, h, w] = gY[n, c].flat[I[n, c, h, w]]``: the adjoint scatter is a gather."""
    N, C = gy.shape[:2]
    gx = np.take_along_axis(gy.reshape(N, C, -1), indices.reshape(N, C, -1), axis=2)
    return gx.reshape(indices.shape)
