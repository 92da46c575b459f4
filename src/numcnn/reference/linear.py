"""The fully connected layer as loops."""
from __future__ import annotations

import numpy as np

from ._common import expect_shape, prologue


def linear(x, w, b=None) -> np.ndarray:
    """Fully connected layer ``y = x wᵀ + b``.

    ::

        y[n, k] = b[k] + Σ_f x[n, f] · w[k, f]

    Parameters
    ----------
    x : ndarray, shape (N, F_in)
    w : ndarray, shape (F_out, F_in)
    b : ndarray, shape (F_out,), optional

    Returns
    -------
    y : ndarray, shape (N, F_out)
    """
    op = "reference.linear"
    dtype, x, w, b = prologue(op, ndim=2, x=x, weight=w, bias=b)
    N, F_in = x.shape
    F_out = w.shape[0]
    if w.shape[1] != F_in:
        raise ValueError(f"{op}: x has {F_in} features but weight {w.shape} expects {w.shape[1]}")
    expect_shape(b, (F_out,), "bias", op)

    y = np.zeros((N, F_out))
    for n in range(N):
        for k in range(F_out):
            acc = 0.0 if b is None else b[k]
            for f in range(F_in):
                acc += x[n, f] * w[k, f]
            y[n, k] = acc
    return y.astype(dtype)
