"""Mean cross-entropy of integer targets as loops, computed stably."""
from __future__ import annotations

import math

import numpy as np

from ._common import prologue


def cross_entropy(logits, target):
    """Mean cross-entropy of integer targets, computed stably.

    ::

        loss = (1/N) Σ_n ( log Σ_k exp(z[n,k]) − z[n, t_n] )
        log Σ_k exp(z[n,k]) = m_n + log Σ_k exp(z[n,k] − m_n),    m_n = max_k z[n,k]

    Parameters
    ----------
    logits : ndarray, shape (N, K)
        Unnormalized scores ``z``.
    target : ndarray of ints, shape (N,)
        Class indices ``t_n`` in ``0..K-1``.

    Returns
    -------
    loss : numpy scalar of the logits' dtype
    """
    op = "reference.cross_entropy"
    dtype, z = prologue(op, ndim=2, logits=logits)
    target = np.asarray(target)
    N, K = z.shape
    if target.shape != (N,) or not np.issubdtype(target.dtype, np.integer):
        raise ValueError(f"{op}: target must be {N} integer class indices, got {target!r}")

    total = 0.0
    for n in range(N):
        t_n = int(target[n])
        if not 0 <= t_n < K:
            raise ValueError(f"{op}: target {t_n} is out of range for {K} classes")
        m_n = max(z[n, k] for k in range(K))
        log_sum_exp = m_n + math.log(sum(math.exp(z[n, k] - m_n) for k in range(K)))
        total += log_sum_exp - z[n, t_n]
    return dtype.type(total / N)
