"""A small define-by-run autograd: :class:`Tensor`, the tape, ``backward()`` and ``no_grad()``.

Each differentiable op computes its forward with NumPy and records a closure that maps the
output gradient to one gradient per parent (None where a parent needs none). ``backward()``
walks the recorded graph once in reverse topological order (an explicit stack: deep graphs never
touch Python's recursion limit), sums the gradients reaching each node, and frees the graph.
Leaf tensors accumulate into ``.grad`` across calls, as in PyTorch.
"""
from __future__ import annotations

import contextlib
from numbers import Number

import numpy as np

from .inplace import InplaceOps

_grad_enabled = True


def is_grad_enabled() -> bool:
    """True unless inside :func:`no_grad`."""
    return _grad_enabled


class no_grad(contextlib.ContextDecorator):
    """Context manager and decorator in which no graph is recorded, like ``torch.no_grad``.

    Use it as ``with no_grad():``, ``@no_grad()`` or bare ``@no_grad``; re-entrant and nestable.

    >>> import numcnn as nc
    >>> @nc.no_grad
    ... def predict(x):
    ...     return x * 2
    >>> predict(nc.tensor([1.0], requires_grad=True)).requires_grad
    False
    """

    def __new__(cls, func=None):
        self = super().__new__(cls)
        self._previous = []
        if callable(func):                # bare ``@no_grad``: decorate right away
            return self(func)
        return self

    def __enter__(self):
        global _grad_enabled
        self._previous.append(_grad_enabled)
        _grad_enabled = False
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._previous.pop()
        return False


def _freed(_grad):
    raise RuntimeError(
        "Trying to backward through the graph a second time: its saved arrays were freed after "
        "the first backward(); call backward(retain_graph=True) the first time if you need this"
    )


class _Version:
    """A tensor's version counter, shared by the tensors that view one array (as in PyTorch)."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


def _check_saved(node) -> None:
    """Refuse a backward through ``node`` when a tensor it saved was modified in place since."""
    for t, version in node._saved:
        if t._version_counter.value != version:
            raise RuntimeError(
                "one of the variables needed for gradient computation has been modified by an "
                f"inplace operation: [tensor of shape {t.shape}, dtype {t.dtype}] is at version "
                f"{t._version_counter.value}; expected version {version} instead "
                f"(the graph saved it for the backward of {node._op})")


_REFUSED_DTYPES = (np.float16,)


def _as_data(arr: np.ndarray) -> np.ndarray:
    """float16 is refused (numcnn computes in float32 or float64); long double becomes float64."""
    if arr.dtype in _REFUSED_DTYPES:
        raise TypeError("tensor: float16 is not supported (numcnn computes in float32 or float64); "
                        "convert it first, e.g. array.astype(np.float32)")
    if arr.dtype == np.longdouble and arr.dtype != np.float64:
        arr = arr.astype(np.float64)
    return arr


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes broadcasting added or stretched, so it gets ``shape`` back.

    An axis along which a tensor was broadcast in the forward is summed in its gradient.
    """
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1
    )
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


class Tensor(InplaceOps):
    """An ndarray with a gradient slot and a link to the op that made it.

    Attributes: ``data`` (the ndarray), ``grad`` (ndarray of the same shape and dtype, or None),
    ``requires_grad``. float32 stays float32 and float64 stays float64 through every op.
    """

    __array_priority__ = 1000  # ndarray <op> Tensor defers to Tensor's reflected operators

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        data = data.data if isinstance(data, Tensor) else data
        arr = _as_data(np.asarray(data, dtype=dtype))
        if requires_grad and not np.issubdtype(arr.dtype, np.floating):
            raise TypeError(
                f"tensor: only floating-point tensors can require gradients, got dtype {arr.dtype}"
            )
        self._data = arr
        self._version_counter = _Version()
        self._saved: tuple = ()
        self.grad: np.ndarray | None = None
        self.requires_grad = bool(requires_grad)
        self._parents: tuple[Tensor, ...] = ()
        self._backward = None
        self._op = ""

    @property
    def data(self) -> np.ndarray:
        """The underlying ndarray. Writing into it (``t.data[...] = v``) is, as in PyTorch,
        not tracked: autograd does not see it and no version check catches it."""
        return self._data

    @data.setter
    def data(self, value) -> None:
        arr = _as_data(np.asarray(value.data if isinstance(value, Tensor) else value))
        if arr.shape != self._data.shape:
            raise ValueError(
                f"Tensor.data: cannot assign an array of shape {arr.shape} to a tensor of shape "
                f"{self._data.shape} (its gradient and graph have that shape); make a new tensor "
                f"with numcnn.tensor(array) instead")
        self._data = arr

    @property
    def _version(self) -> int:
        """How many in-place Tensor operations changed this tensor's array (or a view of it)."""
        return self._version_counter.value

    # --- properties ---------------------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)

    @property
    def is_leaf(self) -> bool:
        return self._backward is None

    @property
    def _records_history(self) -> bool:
        """Whether an op on this tensor is recorded now: grad mode is on and it requires grad
        (numcnn.inplace refuses to change such a tensor in place)."""
        return _grad_enabled and self.requires_grad

    def __len__(self) -> int:
        return len(self.data)

    def size(self, dim=None):
        """The shape (a tuple), or the length of axis ``dim``, as ``torch.Tensor.size``.

        Unlike NumPy's ``ndarray.size`` (the element count, here :meth:`numel`).
        """
        if dim is None:
            return self.shape
        return self.shape[_dim(dim, self.ndim, "size")]

    def numel(self) -> int:
        """The number of elements (NumPy's ``ndarray.size``)."""
        return int(self.data.size)

    def dim(self) -> int:
        """The number of axes, as ``torch.Tensor.dim``."""
        return self.data.ndim

    def __array__(self, dtype=None, copy=None):
        """NumPy functions see the data (``np.asarray(t)`` shares it, as for a torch CPU tensor)."""
        if copy:
            return np.array(self.data, dtype=dtype, copy=True)
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, separator=", ", prefix="tensor(")
        extra = f", dtype={self.dtype}" if self.dtype != np.float64 else ""
        if self._op:
            extra += f", grad_fn=<{self._op}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.data

    def item(self):
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def detach(self) -> Tensor:
        """A new tensor sharing ``data`` (and its version counter), cut from the graph."""
        out = Tensor(self.data)
        out._version_counter = self._version_counter
        return out

    def clone(self) -> Tensor:
        """A differentiable copy (its own array), as ``torch.Tensor.clone``."""
        return make(self.data.copy(), (self,), lambda g: (g,), "Clone", saved=())

    def float(self) -> Tensor:
        """Cast to float32 (differentiable), as ``torch.Tensor.float``."""
        return self if self.dtype == np.float32 else self.astype(np.float32)

    def double(self) -> Tensor:
        """Cast to float64 (differentiable), as ``torch.Tensor.double``."""
        return self if self.dtype == np.float64 else self.astype(np.float64)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if flag and not np.issubdtype(self.dtype, np.floating):
            raise TypeError(f"requires_grad_: dtype {self.dtype} cannot require gradients")
        self.requires_grad = bool(flag)
        return self

    def zero_grad(self) -> None:
        self.grad = None

    # --- the engine ---------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) · grad into every leaf's ``.grad``.

        ``grad`` defaults to 1 for a scalar; otherwise it must have this tensor's shape.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad and has no grad_fn")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward: grad can be implicitly created only for scalar outputs, "
                    f"this tensor has shape {self.shape}; pass grad=<array of that shape>"
                )
            grad = np.ones_like(self.data)
        else:
            grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.dtype)
            if grad.shape != self.shape:
                raise ValueError(
                    f"backward: grad has shape {grad.shape} but the tensor has shape {self.shape}"
                )
        order = self._topological_order()
        grads = {id(self): grad}
        for node in order:
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._backward is None:                      # a leaf: accumulate like PyTorch
                g = np.array(g, dtype=node.dtype, copy=True)
                node.grad = g if node.grad is None else node.grad + g
                continue
            if node._saved:
                _check_saved(node)
            parent_grads = node._backward(g)
            for parent, pg in zip(node._parents, parent_grads):
                if pg is None or not parent.requires_grad:
                    continue
                if pg.shape != parent.shape:
                    raise AssertionError(
                        f"{node._op} backward: gradient shape {pg.shape} != input shape {parent.shape}"
                    )
                if pg.dtype != parent.dtype:
                    pg = pg.astype(parent.dtype)
                key = id(parent)
                grads[key] = pg if key not in grads else grads[key] + pg
            if not retain_graph:
                node._backward = _freed
                node._parents = ()
                node._saved = ()

    def _topological_order(self) -> list[Tensor]:
        """Nodes that need a gradient, each after every node that consumes it (iterative DFS)."""
        post: list[Tensor] = []
        visited: set[int] = set()
        stack: list[tuple[Tensor, bool]] = [(self, False)]
        while stack:
            node, done = stack.pop()
            if done:
                post.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            for parent in node._parents:
                if parent.requires_grad and id(parent) not in visited:
                    stack.append((parent, False))
        post.reverse()
        return post

    # --- arithmetic ---------------------------------------------------------------------------
    def _lift(self, other) -> Tensor:
        """Wrap a scalar or array; Python scalars take this tensor's dtype (float32 stays)."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, Number) and np.issubdtype(self.dtype, np.floating):
            return Tensor(np.asarray(other, dtype=self.dtype))
        return Tensor(other)

    def __add__(self, other):
        a, b = self, self._lift(other)
        return make(a.data + b.data, (a, b),
                    lambda g: (unbroadcast(g, a.shape), unbroadcast(g, b.shape)), "Add", saved=())

    def __sub__(self, other):
        a, b = self, self._lift(other)
        return make(a.data - b.data, (a, b),
                    lambda g: (unbroadcast(g, a.shape), unbroadcast(-g, b.shape)), "Sub", saved=())

    def __mul__(self, other):
        a, b = self, self._lift(other)
        return make(a.data * b.data, (a, b),
                    lambda g: (unbroadcast(g * b.data, a.shape), unbroadcast(g * a.data, b.shape)), "Mul")

    def __truediv__(self, other):
        a, b = self, self._lift(other)
        out = a.data / b.data
        return make(out, (a, b),
                    lambda g: (unbroadcast(g / b.data, a.shape), unbroadcast(-g * out / b.data, b.shape)),
                    "Div", save_output=True)

    def __pow__(self, other):
        a, b = self, self._lift(other)
        out = a.data ** b.data

        def backward(g):
            ga = unbroadcast(g * b.data * a.data ** (b.data - 1), a.shape)
            gb = None
            if b.requires_grad:
                with np.errstate(divide="ignore", invalid="ignore"):
                    gb = unbroadcast(g * out * np.log(a.data), b.shape)
            return ga, gb

        return make(out, (a, b), backward, "Pow", save_output=True)

    def __matmul__(self, other):
        """Matrix product with ``np.matmul``'s (and ``torch.matmul``'s) rules.

        For matrices ``C = A B``, ``dA = G Bᵀ`` and ``dB = Aᵀ G`` (``G`` the output gradient).
        Leading axes are batch axes and broadcast; a gradient is summed over the batch axes its
        operand was broadcast along. A 1-D left operand ``a`` (k,) is the row ``(1, k)`` and a 1-D
        right operand ``b`` (k,) the column ``(k, 1)``; the added axis is removed from the result
        (so 1-D @ 1-D is the 0-d dot product ``Σ a_i b_i``) and put back into ``G`` for backward.

        Examples
        --------
        >>> import numpy as np, numcnn as nc
        >>> v = nc.tensor(np.array([1.0, 2.0]), requires_grad=True)
        >>> m = nc.tensor(np.array([[1.0, 0.0], [0.0, 3.0]]), requires_grad=True)
        >>> (v @ v).shape, (v @ m).shape, (m @ v).shape
        ((), (2,), (2,))
        >>> (v @ m @ v).backward()
        >>> v.grad    # (M + Mᵀ) v
        array([ 2., 12.])
        """
        a, b = self, self._lift(other)
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: operands must be at least 1-D (multiply by a scalar with "
                             f"*), got shapes {a.shape} @ {b.shape}")
        k_left, k_right = a.shape[-1], b.shape[-2 if b.ndim > 1 else 0]
        if k_left != k_right:
            right_axis = "second-to-last" if b.ndim > 1 else "only"
            raise ValueError(f"matmul: inner dimensions differ in {a.shape} @ {b.shape}: the last "
                             f"axis of the left ({k_left}) must equal the {right_axis} axis of the "
                             f"right ({k_right})")
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(f"matmul: batch dimensions {a.shape[:-2]} and {b.shape[:-2]} do not "
                             f"broadcast, got shapes {a.shape} @ {b.shape}") from None
        # 1-D operands as matrices: a row on the left, a column on the right
        A = a.data[None, :] if a.ndim == 1 else a.data
        B = b.data[:, None] if b.ndim == 1 else b.data

        def backward(g):
            # give G the matrix axes the 1-D operands dropped from the output: (..., n, m)
            if b.ndim == 1:
                g = g[..., None]
            if a.ndim == 1:
                g = np.expand_dims(g, -2)
            ga = gb = None
            if a.requires_grad:
                ga = unbroadcast(g @ np.swapaxes(B, -1, -2), A.shape).reshape(a.shape)
            if b.requires_grad:
                gb = unbroadcast(np.swapaxes(A, -1, -2) @ g, B.shape).reshape(b.shape)
            return ga, gb

        return make(np.matmul(a.data, b.data), (a, b), backward, "MatMul")

    def __neg__(self):
        return make(-self.data, (self,), lambda g: (-g,), "Neg", saved=())

    def __radd__(self, other):
        return self._lift(other) + self

    def __rsub__(self, other):
        return self._lift(other) - self

    def __rmul__(self, other):
        return self._lift(other) * self

    def __rtruediv__(self, other):
        return self._lift(other) / self

    def __rpow__(self, other):
        return self._lift(other) ** self

    def __rmatmul__(self, other):
        return self._lift(other) @ self

    # comparisons give plain boolean arrays (not differentiable)
    def __eq__(self, other):
        return self.data == (other.data if isinstance(other, Tensor) else other)

    def __ne__(self, other):
        return self.data != (other.data if isinstance(other, Tensor) else other)

    def __lt__(self, other):
        return self.data < (other.data if isinstance(other, Tensor) else other)

    def __le__(self, other):
        return self.data <= (other.data if isinstance(other, Tensor) else other)

    def __gt__(self, other):
        return self.data > (other.data if isinstance(other, Tensor) else other)

    def __ge__(self, other):
        return self.data >= (other.data if isinstance(other, Tensor) else other)

    __hash__ = object.__hash__

    # --- reductions ---------------------------------------------------------------------------
    def sum(self, axis=None, keepdims: bool = False):
        x = self

        def backward(g):
            if not keepdims and axis is not None:
                g = np.expand_dims(g, axis)
            return (np.broadcast_to(g, x.shape),)

        return make(np.sum(x.data, axis=axis, keepdims=keepdims), (x,), backward, "Sum", saved=())

    def mean(self, axis=None, keepdims: bool = False):
        total = self.sum(axis, keepdims)  # NumPy checks the axes first (AxisError naming them)
        axes = range(self.ndim) if axis is None else np.atleast_1d(axis)
        count = int(np.prod([self.shape[a] for a in axes]))
        return total / count

    def max(self, axis=None, keepdims: bool = False):
        """Maximum; the gradient is shared equally among tied maxima."""
        x = self
        out = np.max(x.data, axis=axis, keepdims=True)

        def backward(g):
            if not keepdims and axis is not None:
                g = np.expand_dims(g, axis)
            mask = x.data == out
            return (mask * (g / mask.sum(axis=axis, keepdims=True)),)

        value = out if keepdims else (np.squeeze(out, axis=axis) if axis is not None else out.reshape(()))
        return make(value, (x,), backward, "Max")

    def min(self, axis=None, keepdims: bool = False):
        """Minimum: ``−max(−x)``; the gradient is shared equally among tied minima."""
        return -((-self).max(axis, keepdims))

    def argmax(self, dim=None, keepdim: bool = False, *, axis=None) -> Tensor:
        """Indices (int64 tensor) of the maxima along ``dim`` (of the flattened tensor when
        None), as ``torch.argmax``; ties give the first index. ``axis`` is NumPy's name."""
        dim = axis if dim is None else dim
        if dim is None:
            out = np.argmax(self.data)
            shape = (1,) * self.ndim if keepdim else ()
            return Tensor(np.asarray(out, dtype=np.int64).reshape(shape))
        d = _dim(dim, self.ndim, "argmax")
        return Tensor(np.argmax(self.data, axis=d, keepdims=keepdim).astype(np.int64, copy=False))

    def softmax(self, dim):
        """``exp(x) / Σ exp(x)`` along ``dim``, as ``torch.Tensor.softmax`` (and
        :func:`numcnn.functional.softmax`). Backward: ``s·(g − Σ g·s)``."""
        e = np.exp(self.data - self.data.max(axis=dim, keepdims=True))
        s = e / e.sum(axis=dim, keepdims=True)
        return make(s, (self,), lambda g: (s * (g - (g * s).sum(axis=dim, keepdims=True)),),
                    "Softmax", saved=(), save_output=True)

    def log_softmax(self, dim):
        """``x − logsumexp(x)`` along ``dim``, computed stably, as ``torch.Tensor.log_softmax``
        (and :func:`numcnn.functional.log_softmax`). Backward: ``g − softmax·Σg``."""
        shifted = self.data - self.data.max(axis=dim, keepdims=True)
        out = shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))

        def backward(g):
            return (g - np.exp(out) * g.sum(axis=dim, keepdims=True),)

        return make(out, (self,), backward, "LogSoftmax", saved=(), save_output=True)

    # --- shape ----------------------------------------------------------------------------
    def reshape(self, *shape):
        shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
        x = self
        return make(x.data.reshape(shape), (x,), lambda g: (g.reshape(x.shape),), "Reshape",
                    saved=())

    view = reshape

    def view_as(self, other):
        """Reshape to ``other``'s shape, as ``torch.Tensor.view_as``."""
        return self.reshape(other.shape)

    def eq(self, other) -> Tensor:
        """Elementwise ``==`` as a bool Tensor, as ``torch.Tensor.eq`` (``==`` itself gives a
        NumPy bool array here)."""
        return Tensor(self.data == (other.data if isinstance(other, Tensor) else other))

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        """Merge axes start_dim..end_dim into one, as ``torch.flatten``."""
        ndim = max(self.ndim, 1)  # a 0-d tensor takes dims -1 and 0, as in PyTorch
        for name, dim in (("start_dim", start_dim), ("end_dim", end_dim)):
            if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool) \
                    or not -ndim <= dim < ndim:
                raise IndexError(f"flatten: {name} must be an int in {-ndim}..{ndim - 1} for a "
                                 f"{self.ndim}-D tensor of shape {self.shape}, got {dim!r}")
        if self.ndim == 0:
            return self.reshape(1)
        start, end = start_dim % self.ndim, end_dim % self.ndim
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
        shape = self.shape[:start] + (-1,) + self.shape[end + 1:]
        return self.reshape(shape)

    def permute(self, *dims):
        dims = tuple(dims[0]) if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims
        inverse = tuple(np.argsort(dims))
        return make(self.data.transpose(dims), (self,), lambda g: (g.transpose(inverse),),
                    "Permute", saved=())

    def transpose(self, dim0: int = -2, dim1: int = -1):
        """Swap two axes, as ``torch.transpose``."""
        return make(np.swapaxes(self.data, dim0, dim1), (self,),
                    lambda g: (np.swapaxes(g, dim0, dim1),), "Transpose", saved=())

    @property
    def T(self):
        return self.permute(tuple(reversed(range(self.ndim))))

    def __getitem__(self, index):
        x = self
        index = index.data if isinstance(index, Tensor) else index

        def backward(g):
            gx = np.zeros_like(x.data)
            np.add.at(gx, index, g)  # repeated fancy indices must add up
            return (gx,)

        return make(x.data[index], (x,), backward, "Index", saved=())

    def astype(self, dtype):
        x = self
        return make(_as_data(x.data.astype(dtype)), (x,), lambda g: (g.astype(x.dtype),), "Cast",
                    saved=())

    # --- elementwise functions ------------------------------------------------------------
    def exp(self):
        out = np.exp(self.data)
        return make(out, (self,), lambda g: (g * out,), "Exp", saved=(), save_output=True)

    def log(self):
        x = self
        return make(np.log(x.data), (x,), lambda g: (g / x.data,), "Log")

    def sqrt(self):
        out = np.sqrt(self.data)
        return make(out, (self,), lambda g: (g / (2 * out),), "Sqrt", saved=(),
                    save_output=True)

    def tanh(self):
        out = np.tanh(self.data)
        return make(out, (self,), lambda g: (g * (1 - out * out),), "Tanh", saved=(),
                    save_output=True)

    def sigmoid(self):
        out = _sigmoid(self.data)
        return make(out, (self,), lambda g: (g * out * (1 - out),), "Sigmoid", saved=(),
                    save_output=True)

    def relu(self):
        mask = self.data > 0
        return make(self.data * mask, (self,), lambda g: (g * mask,), "Relu", saved=())

    def abs(self):
        x = self
        return make(np.abs(x.data), (x,), lambda g: (g * np.sign(x.data),), "Abs")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """1/(1+e^-x) without overflow for large |x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def _dim(dim, ndim: int, op: str) -> int:
    """A dimension index in ``[-ndim, ndim)`` as a non-negative int (PyTorch's message)."""
    lo, hi = -max(ndim, 1), max(ndim, 1) - 1
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    if not lo <= dim <= hi:
        raise IndexError(f"{op}: Dimension out of range (expected to be in range of "
                         f"[{lo}, {hi}], but got {dim})")
    return int(dim) % max(ndim, 1)


def make(data, parents: tuple, backward, op: str, saved=None, save_output: bool = False) -> Tensor:
    """Wrap an op's result; record ``backward`` only when a parent needs a gradient.

    ``saved``: the tensors whose values ``backward`` reads (default: every parent), and
    ``save_output`` when it reads the result; their versions are checked at backward. A result
    that views its only parent's array shares that parent's version counter.
    """
    out = Tensor.__new__(Tensor)
    out._data = np.asarray(data)
    out.grad = None
    out._op = ""
    out._parents = ()
    out._backward = None
    out._saved = ()
    if (len(parents) == 1 and out._data.base is not None
            and np.may_share_memory(out._data, parents[0]._data)):
        out._version_counter = parents[0]._version_counter
    else:
        out._version_counter = _Version()
    out.requires_grad = _grad_enabled and any(p.requires_grad for p in parents)
    if out.requires_grad:
        out._parents = parents
        out._backward = backward
        out._op = op
        keep = parents if saved is None else saved
        out._saved = tuple((t, t._version_counter.value) for t in keep) + (
            ((out, out._version_counter.value),) if save_output else ())
    return out


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """A tensor holding a copy of ``data``, as ``torch.tensor`` (:func:`from_numpy` shares).

    float32 stays float32 and float64 stays float64; Python floats give float64 (NumPy's rule;
    PyTorch would give float32), so ``dtype=np.float32`` makes the PyTorch default explicit.
    """
    data = data.data if isinstance(data, Tensor) else data
    return Tensor(np.array(data, dtype=dtype, copy=True), requires_grad=requires_grad)


def zeros(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    dims = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(np.zeros(dims, dtype=dtype), requires_grad=requires_grad)


def ones(*shape, dtype=np.float32, requires_grad: bool = False) -> Tensor:
    dims = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(np.ones(dims, dtype=dtype), requires_grad=requires_grad)
