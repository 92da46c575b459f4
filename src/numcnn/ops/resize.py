"""Nearest and (bi)linear resizing as matrix products, on ndarrays (``F.interpolate``).

Resizing is separable: ``Y = A_h · X · A_wᵀ`` for each (n, c) plane, with one interpolation
matrix per axis, ``A`` of shape (out, in): row ``o`` holds the weights output index ``o``
gives to the input indices. The backward is the adjoint, ``gX = A_hᵀ · gY · A_w``, exact and
free of scatter loops. Nearest modes gather in the forward (a row of ``A`` is one-hot).

Source coordinates follow PyTorch (ATen ``UpSample.h``), with ``scale`` = ``1/scale_factor``
when a scale factor is used and ``in/out`` otherwise:

* ``nearest``: ``i = min(⌊o · scale⌋, in − 1)`` (computed in float32, as PyTorch does);
* ``nearest-exact``: ``i = min(⌊(o + ½) · scale⌋, in − 1)``;
* linear, ``align_corners=True``: ``s = o · (in − 1)/(out − 1)`` (0 when out = 1);
  ``align_corners=False``: ``s = max(scale · (o + ½) − ½, 0)``; then ``i₀ = ⌊s⌋``,
  ``i₁ = min(i₀ + 1, in − 1)``, weights ``1 − λ`` and ``λ = s − i₀``.
"""
from __future__ import annotations

import numpy as np

__all__ = ["interpolation_matrix", "nearest_indices", "resize_backward", "resize_forward"]


def _scale(n_in: int, n_out: int, scale_factor, dtype) -> np.floating:
    """PyTorch's ``compute_scales_value``: 1/scale_factor if given (> 0), else in/out."""
    if scale_factor is not None and scale_factor > 0:
        return dtype(1.0 / scale_factor)
    return dtype(n_in) / dtype(n_out)


def nearest_indices(n_in: int, n_out: int, scale_factor, exact: bool) -> np.ndarray:
    """Source index of each output index for the nearest modes, int64 of shape (out,)."""
    if not exact and n_out == n_in:           # PyTorch's special cases, free of rounding
        return np.arange(n_out, dtype=np.int64)
    if not exact and n_out == 2 * n_in:
        return np.arange(n_out, dtype=np.int64) >> 1
    o = np.arange(n_out, dtype=np.float32)
    scale = _scale(n_in, n_out, scale_factor, np.float32)
    src = np.floor((o + np.float32(0.5)) * scale if exact else o * scale)
    return np.minimum(src.astype(np.int64), n_in - 1)


def interpolation_matrix(n_in: int, n_out: int, mode: str, align_corners: bool, scale_factor,
                         dtype) -> np.ndarray:
    """``A`` (out, in) with ``y = A x`` along one axis, for the mode (see the module notes)."""
    A = np.zeros((n_out, n_in), dtype=dtype)
    rows = np.arange(n_out)
    if mode in ("nearest", "nearest-exact"):
        A[rows, nearest_indices(n_in, n_out, scale_factor, mode == "nearest-exact")] = 1
        return A
    t = np.dtype(dtype).type                 # PyTorch's opmath type: float32 for float32 input
    o = np.arange(n_out).astype(dtype)
    if align_corners:
        scale = t(n_in - 1) / t(n_out - 1) if n_out > 1 else t(0)
        src = scale * o
    else:
        src = np.maximum(_scale(n_in, n_out, scale_factor, t) * (o + t(0.5)) - t(0.5), t(0))
    i0 = np.minimum(src.astype(np.int64), n_in - 1)   # src >= 0: truncation is the floor
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = np.clip(src - i0.astype(dtype), 0, 1).astype(dtype)
    np.add.at(A, (rows, i0), 1 - lam)        # i1 == i0 at the last input cell: weights add
    np.add.at(A, (rows, i1), lam)
    return A


def resize_forward(x: np.ndarray, A_h: np.ndarray, A_w: np.ndarray, idx=None) -> np.ndarray:
    """``Y = A_h X A_wᵀ`` per plane: (N, C, H, W) -> (N, C, Ho, Wo). With ``idx = (ih, iw)``
    (nearest modes) the same result by gathering ``X[:, :, ih][:, :, :, iw]``."""
    if idx is not None:
        ih, iw = idx
        return x[:, :, ih[:, None], iw[None, :]]              # (N, C, Ho, Wo)
    t = np.matmul(x, A_w.T)                                  # (N, C, H, Wo)
    return np.matmul(A_h, t)                                 # (N, C, Ho, Wo)


def resize_backward(gy: np.ndarray, A_h: np.ndarray, A_w: np.ndarray) -> np.ndarray:
    """``gX = A_hᵀ gY A_w``: (N, C, Ho, Wo) -> (N, C, H, W)."""
    t = np.matmul(A_h.T, gy)                                 # (N, C, H, Wo)
    return np.matmul(t, A_w)                                 # (N, C, H, W)
