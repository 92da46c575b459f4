"""Gradient clipping, as ``torch.nn.utils``: ``clip_grad_norm_`` and ``clip_grad_value_``.

Both change the ``.grad`` arrays of the given parameters in place (after ``backward()``,
before ``optimizer.step()``); parameters without a gradient are skipped.
"""
from __future__ import annotations

import math

import numpy as np

from ..autograd import Tensor
from ..validation import is_real

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters) -> list[np.ndarray]:
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False,
                    foreach=None) -> Tensor:
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    ``total = ‖(‖g₁‖, ‖g₂‖, ...)‖_p`` over every gradient (``p = norm_type``, ``inf`` the
    largest absolute entry); each ``g ← g · min(1, max_norm / (total + 1e−6))``. Returns the
    total norm (before clipping) as a 0-d float Tensor, as PyTorch does.

    Raises
    ------
    RuntimeError
        With ``error_if_nonfinite=True`` when the total norm is nan or inf.
    """
    for name, v in (("max_norm", max_norm), ("norm_type", norm_type)):
        if not is_real(v):
            raise TypeError(f"clip_grad_norm_: {name} must be a number, got {v!r}")
    grads = _grads(parameters)
    if not grads:
        return Tensor(np.asarray(0.0, dtype=np.float32))
    p = float(norm_type)
    if math.isinf(p):
        norms = [np.abs(g).max(initial=0) for g in grads]
        total = max(norms)
    else:
        norms = [np.sum(np.abs(g.astype(np.float64, copy=False)) ** p) ** (1.0 / p) for g in grads]
        total = float(np.sum(np.asarray(norms) ** p) ** (1.0 / p))
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} for gradients "
                           "from `parameters` is non-finite, so it cannot be clipped. To "
                           "disable this error and scale the gradients by the non-finite norm "
                           "anyway, set `error_if_nonfinite=False`")
    coef = float(max_norm) / (total + 1e-6)
    if coef < 1:                                     # PyTorch clamps the coefficient at 1
        for g in grads:
            g *= g.dtype.type(coef)
    return Tensor(np.asarray(total, dtype=grads[0].dtype))


def clip_grad_value_(parameters, clip_value, foreach=None) -> None:
    """Clip every gradient entry to ``[−clip_value, clip_value]`` in place."""
    if not is_real(clip_value):
        raise TypeError(f"clip_grad_value_: clip_value must be a number, got {clip_value!r}")
    bound = float(clip_value)
    for g in _grads(parameters):
        np.clip(g, -bound, bound, out=g)
