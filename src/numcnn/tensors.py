"""Tensor factories and joins with PyTorch's names: ``from_numpy``, ``randn``, ``arange``,
``cat`` and ``stack`` (``tensor``, ``zeros`` and ``ones`` live beside :class:`Tensor`).

Random draws come from numcnn's global generator, so :func:`numcnn.manual_seed` makes them
reproducible.
"""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from . import random as _random
from .autograd import Tensor, _dim, make
from .validation import is_int

__all__ = ["arange", "cat", "from_numpy", "randn", "stack"]


def from_numpy(ndarray: np.ndarray) -> Tensor:
    """A tensor sharing ``ndarray``'s memory, as ``torch.from_numpy`` (changes show in both)."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected np.ndarray (got {type(ndarray).__name__})")
    return Tensor(ndarray)


def _shape(size, op: str) -> tuple[int, ...]:
    size = size[0] if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
    if not all(is_int(n) and n >= 0 for n in size):
        raise TypeError(f"{op}: size must be non-negative ints, got {tuple(size)!r}")
    return tuple(int(n) for n in size)


def randn(*size, generator=None, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    """Standard normal draws of shape ``size`` (float32 by default, as PyTorch)."""
    rng = _random.get_rng() if generator is None else generator
    data = rng.standard_normal(_shape(size, "randn")).astype(dtype, copy=False)
    return Tensor(data, requires_grad=requires_grad)


def arange(start, end=None, step=1, *, dtype=None, requires_grad: bool = False) -> Tensor:
    """``[start, end)`` in steps of ``step``, as ``torch.arange``: int64 when every argument is
    an int, float32 otherwise (unless ``dtype`` says)."""
    if end is None:
        start, end = 0, start
    for name, v in (("start", start), ("end", end), ("step", step)):
        if not isinstance(v, Real) or isinstance(v, bool):
            raise TypeError(f"arange: {name} must be a number, got {v!r}")
    if step == 0:
        raise ValueError("arange: step must be nonzero")
    if (end - start) * step < 0:
        raise ValueError(f"arange: upper bound and larger bound inconsistent with step sign "
                         f"(start={start}, end={end}, step={step})")
    if dtype is None:
        ints = all(isinstance(v, Integral) for v in (start, end, step))
        dtype = np.int64 if ints else np.float32
    return Tensor(np.arange(start, end, step).astype(dtype), requires_grad=requires_grad)


def _tensors(tensors, op: str) -> list[Tensor]:
    if isinstance(tensors, (Tensor, np.ndarray)) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{op}: tensors must be a list or tuple of tensors, got "
                        f"{type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{op}: expected a non-empty list of tensors")
    out = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    dtypes = {t.dtype for t in out}
    if len(dtypes) > 1:
        raise TypeError(f"{op}: all tensors must share one dtype, got {sorted(map(str, dtypes))}")
    return out


def cat(tensors, dim: int = 0) -> Tensor:
    """Join tensors along an existing axis, as ``torch.cat``.

    Backward: the output gradient split back along ``dim`` at the input boundaries.

    >>> import numcnn as nc
    >>> nc.cat([nc.zeros(2, 3), nc.ones(1, 3)]).shape
    (3, 3)
    """
    ts = _tensors(tensors, "cat")
    ndim = ts[0].ndim
    if any(t.ndim != ndim for t in ts) or ndim == 0:
        raise ValueError(f"cat: tensors must have the same number of dimensions (>= 1), got "
                         f"shapes {[t.shape for t in ts]}")
    d = _dim(dim, ndim, "cat")
    for i, t in enumerate(ts):
        if t.shape[:d] + t.shape[d + 1:] != ts[0].shape[:d] + ts[0].shape[d + 1:]:
            raise ValueError(f"cat: sizes of tensors must match except in dimension {d}; "
                             f"tensor 0 has shape {ts[0].shape}, tensor {i} has {t.shape}")
    bounds = np.cumsum([t.shape[d] for t in ts])[:-1]

    def backward(g):
        return tuple(np.split(g, bounds, axis=d))

    return make(np.concatenate([t.data for t in ts], axis=d), tuple(ts), backward, "Cat",
                saved=())


def stack(tensors, dim: int = 0) -> Tensor:
    """Join same-shaped tensors along a new axis ``dim``, as ``torch.stack``.

    Backward: the output gradient indexed along ``dim``.
    """
    ts = _tensors(tensors, "stack")
    if any(t.shape != ts[0].shape for t in ts):
        raise ValueError(f"stack: expects each tensor to be equal size, got shapes "
                         f"{[t.shape for t in ts]}")
    d = _dim(dim, ts[0].ndim + 1, "stack")

    def backward(g):
        return tuple(np.take(g, i, axis=d) for i in range(len(ts)))

    return make(np.stack([t.data for t in ts], axis=d), tuple(ts), backward, "Stack", saved=())
