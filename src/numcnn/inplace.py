"""In-place Tensor operations: ``add_``, ``sub_``, ``mul_``, ``div_``, ``clamp_``, ``fill_``,
``zero_``, ``copy_``, item assignment and the augmented assignments (``x += y`` ...).

Each one bumps the tensor's version counter (shared by the views of one array), which
``backward()`` compares with the versions the graph saved, so a tensor changed in place after
being saved gives PyTorch's error instead of a wrong gradient. :class:`numcnn.Tensor` inherits
these methods from :class:`InplaceOps`.
"""
from __future__ import annotations

import numpy as np

from . import autograd as _ag


class InplaceOps:
    """The in-place methods of :class:`numcnn.Tensor` (a mixin: it holds no state)."""

    def _inplace(self, op: str) -> np.ndarray:
        """Check that ``op`` may change this tensor in place, bump its version, return its array.

        As in PyTorch, a leaf that requires grad may only be changed in place under
        :class:`no_grad`. numcnn records no history for in-place operations, so while grad mode
        is on they are refused on every tensor that requires grad (use the out-of-place form).
        """
        if _ag.is_grad_enabled() and self.requires_grad:
            if self.is_leaf:
                raise RuntimeError(f"{op}: a leaf Variable that requires grad is being used in "
                                   "an in-place operation; wrap it in numcnn.no_grad()")
            raise RuntimeError(f"{op}: numcnn records no history for in-place operations on "
                               "tensors that require grad; use the out-of-place form")
        self._version_counter.value += 1
        return self.data

    def _operand(self, other) -> np.ndarray:
        return other.data if isinstance(other, _ag.Tensor) else np.asarray(other)

    def add_(self, other, alpha=1) -> InplaceOps:
        """``self += alpha · other`` in place."""
        o = self._operand(other)
        data = self._inplace("add_")
        data += o if alpha == 1 else alpha * o
        return self

    def sub_(self, other, alpha=1) -> InplaceOps:
        """``self −= alpha · other`` in place."""
        o = self._operand(other)
        data = self._inplace("sub_")
        data -= o if alpha == 1 else alpha * o
        return self

    def mul_(self, other) -> InplaceOps:
        o = self._operand(other)
        data = self._inplace("mul_")
        data *= o
        return self

    def div_(self, other) -> InplaceOps:
        o = self._operand(other)
        data = self._inplace("div_")
        data /= o
        return self

    def clamp_(self, min=None, max=None) -> InplaceOps:
        data = self._inplace("clamp_")
        np.clip(data, min, max, out=data)
        return self

    def fill_(self, value) -> InplaceOps:
        self._inplace("fill_")[...] = self._operand(value)
        return self

    def zero_(self) -> InplaceOps:
        return self.fill_(0)

    def copy_(self, src) -> InplaceOps:
        """Copy ``src`` (broadcast) into this tensor's array, keeping its dtype."""
        o = self._operand(src)
        self._inplace("copy_")[...] = o
        return self

    def __setitem__(self, index, value) -> None:
        o = self._operand(value)
        index = index.data if isinstance(index, _ag.Tensor) else index
        self._inplace("__setitem__")[index] = o

    def _augmented(self, name: str, op, other):
        """``x op= y``: in place (bumping the version) where PyTorch would be allowed to; on a
        tensor that requires grad while grad mode is on numcnn records no in-place history, so
        it computes ``x op y`` out of place and rebinds the name (same values, same gradient)."""
        if _ag.is_grad_enabled() and self.requires_grad:
            if self.is_leaf:
                self._inplace(name)        # raises PyTorch's leaf error
            return op(self, other)
        return getattr(self, name)(other)

    def __iadd__(self, other):
        return self._augmented("add_", _ag.Tensor.__add__, other)

    def __isub__(self, other):
        return self._augmented("sub_", _ag.Tensor.__sub__, other)

    def __imul__(self, other):
        return self._augmented("mul_", _ag.Tensor.__mul__, other)

    def __itruediv__(self, other):
        return self._augmented("div_", _ag.Tensor.__truediv__, other)
