"""In-place Tensor operations: ``add_``, ``sub_``, ``mul_``, ``div_``, ``clamp_``, ``fill_``,
``zero_``, ``copy_``, item assignment and the augmented assignments (``x += y`` ...).

Each one bumps the tensor's version counter (shared by the views of one array), which
``backward()`` compares with the versions the graph saved, so a tensor changed in place after
being saved gives PyTorch's error instead of a wrong gradient. :class:`numcnn.Tensor` inherits
these methods from :class:`InplaceOps`.

This module sits below :mod:`numcnn.autograd` and imports nothing of numcnn: what the methods
use of a tensor (its array, its version counter, whether it is a leaf and whether grad mode
records its ops) is the :class:`_Tensor` protocol, which ``numcnn.Tensor`` satisfies.
"""
from __future__ import annotations

import operator
from typing import Any, Protocol

import numpy as np


class _Counter(Protocol):
    value: int


class _Tensor(Protocol):
    """What the in-place methods use of the tensor they change (``numcnn.Tensor``)."""

    @property
    def data(self) -> np.ndarray: ...

    @property
    def is_leaf(self) -> bool: ...

    @property
    def _version_counter(self) -> _Counter: ...

    @property
    def _records_history(self) -> bool: ...


def _change(t: _Tensor, op: str) -> np.ndarray:
    """Check that ``op`` may change ``t`` in place, bump its version, return its array.

    As in PyTorch, a leaf that requires grad may only be changed in place under
    :class:`numcnn.no_grad`. numcnn records no history for in-place operations, so while grad
    mode is on they are refused on every tensor that requires grad (use the out-of-place form).
    """
    if t._records_history:
        if t.is_leaf:
            raise RuntimeError(f"{op}: a leaf Variable that requires grad is being used in "
                               "an in-place operation; wrap it in numcnn.no_grad()")
        raise RuntimeError(f"{op}: numcnn records no history for in-place operations on "
                           "tensors that require grad; use the out-of-place form")
    t._version_counter.value += 1
    return t.data


def _augmented(t: _Tensor, name: str, op, other) -> Any:
    """``t op= other``: in place (bumping the version) where PyTorch would be allowed to; on a
    tensor that requires grad while grad mode is on numcnn records no in-place history, so it
    computes ``t op other`` out of place and rebinds the name (same values, same gradient)."""
    if t._records_history:
        if t.is_leaf:
            _change(t, name)        # raises PyTorch's leaf error
        return op(t, other)
    return getattr(t, name)(other)


class InplaceOps:
    """The in-place methods of :class:`numcnn.Tensor` (a mixin: it holds no state).

    An operand may be a Tensor, an array or a number: ``np.asarray`` reads a Tensor's array
    (``Tensor.__array__``) without copying it. ``self: _Tensor`` tells the type checker what
    the methods use of the class that mixes this one in.
    """

    def add_(self: _Tensor, other, alpha=1):
        """``self += alpha · other`` in place."""
        o = np.asarray(other)
        data = _change(self, "add_")
        data += o if alpha == 1 else alpha * o
        return self

    def sub_(self: _Tensor, other, alpha=1):
        """``self −= alpha · other`` in place."""
        o = np.asarray(other)
        data = _change(self, "sub_")
        data -= o if alpha == 1 else alpha * o
        return self

    def mul_(self: _Tensor, other):
        o = np.asarray(other)
        data = _change(self, "mul_")
        data *= o
        return self

    def div_(self: _Tensor, other):
        o = np.asarray(other)
        data = _change(self, "div_")
        data /= o
        return self

    def clamp_(self: _Tensor, min=None, max=None):
        data = _change(self, "clamp_")
        np.clip(data, min, max, out=data)
        return self

    def fill_(self: _Tensor, value):
        _change(self, "fill_")[...] = np.asarray(value)
        return self

    def zero_(self: _Tensor):
        _change(self, "zero_")[...] = 0
        return self

    def copy_(self: _Tensor, src):
        """Copy ``src`` (broadcast) into this tensor's array, keeping its dtype."""
        o = np.asarray(src)
        _change(self, "copy_")[...] = o
        return self

    def __setitem__(self: _Tensor, index, value) -> None:
        o = np.asarray(value)
        index = np.asarray(index) if isinstance(index, InplaceOps) else index
        _change(self, "__setitem__")[index] = o

    def __iadd__(self: _Tensor, other):
        return _augmented(self, "add_", operator.add, other)

    def __isub__(self: _Tensor, other):
        return _augmented(self, "sub_", operator.sub, other)

    def __imul__(self: _Tensor, other):
        return _augmented(self, "mul_", operator.mul, other)

    def __itruediv__(self: _Tensor, other):
        return _augmented(self, "div_", operator.truediv, other)
