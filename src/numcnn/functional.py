"""Functions on tensors with the names, arguments and defaults of ``torch.nn.functional``.

Each function validates its arguments once, runs a NumPy kernel forward and records the matching
hand-written backward. Convolution and pooling kernels live in :mod:`numcnn.ops`. GELU, SiLU,
Softplus, ``dropout2d``, ``max_unpool2d`` and ``interpolate`` live in
:mod:`numcnn._functional_ext`, ``pad`` in :mod:`numcnn.padding`; both are re-exported here.
"""
from __future__ import annotations

import numpy as np

from . import random as _random
from ._functional_ext import (
    _batched,
    _single,
    _tensor,
    dropout2d,
    gelu,
    interpolate,
    max_unpool2d,
    silu,
    softplus,
)
from .autograd import Tensor, is_grad_enabled, make
from .ops import conv as _conv
from .ops import engine as _engine
from .ops import pool as _pool
from .ops import transpose as _transpose
from .ops.shapes import conv_geometry, pair, pool_geometry
from .padding import pad

__all__ = [
    "adaptive_avg_pool2d",
    "avg_pool2d",
    "batch_norm",
    "conv1d",
    "conv2d",
    "conv_transpose2d",
    "cross_entropy",
    "dropout",
    "dropout2d",
    "flatten",
    "gelu",
    "interpolate",
    "leaky_relu",
    "linear",
    "log_softmax",
    "max_pool2d",
    "max_unpool2d",
    "mse_loss",
    "nll_loss",
    "pad",
    "relu",
    "sigmoid",
    "silu",
    "softmax",
    "softplus",
    "tanh",
]

_REDUCTIONS = ("mean", "sum", "none")


def _same_dtype(op: str, **tensors) -> None:
    dtypes = {name: t.dtype for name, t in tensors.items() if t is not None}
    if len(set(dtypes.values())) > 1:
        listed = ", ".join(f"{k} is {v}" for k, v in dtypes.items())
        raise TypeError(f"{op}: all floating inputs must share one dtype, but {listed}")



# --- convolution and pooling ---------------------------------------------------------------------

def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, method="auto"):
    """2-D cross-correlation, as ``torch.nn.functional.conv2d``.

    ``Y[n,q,o_h,o_w] = b[q] + Σ_{c',u,v} W[q,c',u,v]·X̃[n, γ(q)·C_in/g + c', s_h·o_h + d_h·u − p_h,
    s_w·o_w + d_w·v − p_w]``

    Parameters
    ----------
    input : Tensor, shape (N, C_in, H, W) or (C_in, H, W)
    weight : Tensor, shape (C_out, C_in/groups, kh, kw)
    bias : Tensor, shape (C_out,), optional
    stride, dilation : int or (int, int)
    padding : int, (int, int), ``'same'`` or ``'valid'``
    groups : int, divides C_in and C_out
    method : ``'auto'`` (default: the faster exact form per gradient), ``'gemm'`` (im2col GEMM +
        col2im) or ``'inserted'`` (the seed's zero-inserted gradient correlated with the flipped
        kernel); all give the same gradients.

    Returns
    -------
    Tensor, shape (N, C_out, Ho, Wo) (or (C_out, Ho, Wo) for an unbatched input).

    Examples
    --------
    >>> import numpy as np, numcnn as nc
    >>> x = nc.tensor(np.ones((1, 1, 5, 5)), requires_grad=True)
    >>> w = nc.tensor(np.ones((1, 1, 3, 3)), requires_grad=True)
    >>> y = conv2d(x, w, stride=2)
    >>> y.shape
    (1, 1, 2, 2)
    >>> y.sum().backward()
    >>> x.grad[0, 0, 2]
    array([2., 2., 4., 2., 2.])
    """
    op = "conv2d"
    x = _tensor(input, "input", op)
    w = _tensor(weight, "weight", op)
    b = None if bias is None else _tensor(bias, "bias", op)
    _same_dtype(op, input=x, weight=w, bias=b)
    if method not in _engine.METHODS:
        raise ValueError(f"{op}: method must be one of {_engine.METHODS}, got {method!r}")
    x4, unbatch = _batched(x, op)
    geo = conv_geometry(x4.shape, w.shape, stride, padding, dilation, groups, op)
    if b is not None and b.shape != (geo.C_out,):
        raise ValueError(f"{op}: bias must have shape ({geo.C_out},), got {b.shape}")
    keep_cols = is_grad_enabled() and w.requires_grad and method != "inserted"
    y, cols = _engine.conv_forward(x4.data, w.data, None if b is None else b.data, geo, keep_cols)

    def backward(gy):
        gx, gw = _engine.conv_backward(x4.data, w.data, gy, geo, cols, x4.requires_grad,
                                       w.requires_grad, method)
        gb = _conv.grad_bias(gy) if b is not None and b.requires_grad else None
        return gx, gw, gb

    parents = (x4, w) if b is None else (x4, w, b)
    return unbatch(make(y, parents, backward, "Conv2d"))


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D cross-correlation, as ``torch.nn.functional.conv1d``: (N, C_in, L) or (C_in, L)
    with weight (C_out, C_in/groups, k).

    It is :func:`conv2d` on the views (N, C_in, 1, L) and (C_out, C_in/groups, 1, k), stride
    (1, s), padding (0, p) and dilation (1, d): the 2-D kernels run with H = 1, no copy of the
    data and no second implementation.
    """
    op = "conv1d"
    x, w = _tensor(input, "input", op), _tensor(weight, "weight", op)
    if x.ndim not in (2, 3):
        raise ValueError(f"{op}: input must be 3-D (N, C_in, L) or 2-D unbatched (C_in, L), got "
                         f"shape {x.shape}")
    if w.ndim != 3:
        raise ValueError(f"{op}: weight must be 3-D (C_out, C_in/groups, k), got shape {w.shape}")
    s, d = _single(stride, "stride", op), _single(dilation, "dilation", op)
    pad = padding if isinstance(padding, str) else (0, _single(padding, "padding", op))
    x4 = x.reshape(x.shape[:-1] + (1, x.shape[-1]))                 # (N, C_in, 1, L)
    w4 = w.reshape(w.shape[:2] + (1, w.shape[2]))                    # (C_out, C_in/g, 1, k)
    y = conv2d(x4, w4, bias, (1, s), pad, (1, d), groups)         # (N, C_out, 1, Lo)
    return y.reshape(y.shape[:-2] + (y.shape[-1],))


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """2-D transposed convolution, as ``torch.nn.functional.conv_transpose2d``.

    The adjoint of :func:`conv2d` with the same weight: every input pixel adds a
    kernel-weighted copy of W into the output, ``Y[n, o, s·i + d·u − p, s·j + d·v − p] +=
    X[n, c, i, j]·W[c, o', u, v]`` (c in the group of o), plus the bias. It equals conv2d's
    input gradient with x in the place of gY (the seed's zero-inserted gradient correlated with
    the rotated kernel). Backward: ``gX = conv2d(gY, W)``, ``gW`` = conv2d's weight gradient
    with gY as the input and x as the output gradient, ``gb = Σ gY`` (docs/math.md §11).

    Parameters
    ----------
    input : Tensor, shape (N, C_in, H, W) or (C_in, H, W)
    weight : Tensor, shape (C_in, C_out/groups, kh, kw)
    bias : Tensor, shape (C_out,), optional
    stride, padding, output_padding, dilation : int or (int, int); output_padding must be
        smaller than stride or dilation (on each axis)
    groups : int, divides C_in

    Returns
    -------
    Tensor, shape (N, C_out, Ho, Wo) (or (C_out, Ho, Wo)),
    ``Ho = (H − 1)·s − 2p + d(k − 1) + output_padding + 1``.

    Examples
    --------
    >>> import numpy as np, numcnn as nc
    >>> x = nc.tensor(np.ones((1, 1, 2, 2)), requires_grad=True)
    >>> w = nc.tensor(np.ones((1, 1, 3, 3)), requires_grad=True)
    >>> y = conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)
    >>> y.shape
    (1, 1, 4, 4)
    >>> y.data[0, 0]
    array([[1., 2., 1., 1.],
           [2., 4., 2., 2.],
           [1., 2., 1., 1.],
           [1., 2., 1., 1.]])
    >>> y.sum().backward()
    >>> x.grad[0, 0]              # pixel (0, 0) lands half outside (padding 1): 4 of 9 taps
    array([[4., 6.],
           [6., 9.]])
    """
    op = "conv_transpose2d"
    x = _tensor(input, "input", op)
    w = _tensor(weight, "weight", op)
    b = None if bias is None else _tensor(bias, "bias", op)
    _same_dtype(op, input=x, weight=w, bias=b)
    x4, unbatch = _batched(x, op)
    geo = _transpose.conv_transpose_geometry(x4.shape, w.shape, stride, padding, output_padding,
                                             groups, dilation, op)
    if b is not None and b.shape != (geo.C_out,):
        raise ValueError(f"{op}: bias must have shape ({geo.C_out},) (C_out = weight.shape[1]"
                         f" * groups), got {b.shape}")
    y = _transpose.forward(x4.data, w.data, None if b is None else b.data, geo)

    def backward(gy):
        if x4.requires_grad and w.requires_grad:  # one gather of gY's columns for both
            gx, gw = _transpose.grad_input_and_weight(x4.data, gy, w.data, geo)
        else:
            gx = _transpose.grad_input(gy, w.data, geo) if x4.requires_grad else None
            gw = _transpose.grad_weight(x4.data, gy, geo) if w.requires_grad else None
        gb = _transpose.grad_bias(gy) if b is not None and b.requires_grad else None
        return gx, gw, gb

    parents = (x4, w) if b is None else (x4, w, b)
    return unbatch(make(y, parents, backward, "ConvTranspose2d"))


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """2-D average pooling, as ``torch.nn.functional.avg_pool2d``.

    ``Y[n,c,o_h,o_w] = (1/D[o_h,o_w]) Σ_{window} X[n,c,i,j]``, D the window size (SPEC §5.2).
    Shape: (N, C, H, W) -> (N, C, Ho, Wo); stride defaults to kernel_size.

    Examples
    --------
    >>> import numpy as np, numcnn as nc
    >>> x = nc.tensor(np.arange(16.0).reshape(1, 1, 4, 4), requires_grad=True)
    >>> avg_pool2d(x, 2).data[0, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    >>> avg_pool2d(x, 2).sum().backward()
    >>> x.grad[0, 0, 0]
    array([0.25, 0.25, 0.25, 0.25])
    """
    op = "avg_pool2d"
    x = _tensor(input, "input", op)
    if divisor_override is not None and (not isinstance(divisor_override, (int, np.integer))
                                         or isinstance(divisor_override, bool)):
        raise TypeError(f"{op}: divisor_override must be an int, got {divisor_override!r}")
    if divisor_override == 0:   # PyTorch refuses only zero (a negative divisor flips the sign)
        raise ValueError(f"{op}: divisor must be not zero (divisor_override=0)")
    x4, unbatch = _batched(x, op)
    geo = pool_geometry(x4.shape, kernel_size, stride, padding, 1, ceil_mode, op)
    y = _engine.avg_pool_forward(x4.data, geo, count_include_pad, divisor_override)
    return unbatch(make(y, (x4,), lambda g: (
        _engine.avg_pool_backward(g, geo, count_include_pad, divisor_override),), "AvgPool2d"))


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max pooling, as ``torch.nn.functional.max_pool2d``; ties go to the first maximum.

    With ``return_indices=True`` also returns PyTorch's flat input indices ``i·W + j`` (int64).

    Examples
    --------
    >>> import numpy as np, numcnn as nc
    >>> x = nc.tensor(np.array([[[[1., 3.], [3., 0.]]]]), requires_grad=True)
    >>> max_pool2d(x, 2).sum().backward()
    >>> x.grad[0, 0]
    array([[0., 1.],
           [0., 0.]])
    """
    op = "max_pool2d"
    x = _tensor(input, "input", op)
    x4, unbatch = _batched(x, op)
    geo = pool_geometry(x4.shape, kernel_size, stride, padding, dilation, ceil_mode, op)
    y, argmax = _engine.max_pool_forward(x4.data, geo)
    out = unbatch(make(y, (x4,), lambda g: (_engine.max_pool_backward(g, argmax, geo),), "MaxPool2d"))
    if return_indices:
        idx = _pool.argmax_to_flat_index(argmax, geo)
        return out, (idx if x.ndim == 4 else idx[0])
    return out


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to a fixed output size, as ``torch.nn.functional.adaptive_avg_pool2d``.

    Output cell o averages input rows ``⌊o·H/O⌋ .. ⌈(o+1)·H/O⌉ − 1`` (likewise for columns);
    ``output_size=1`` is global average pooling. ``None`` in a pair keeps that input size.
    """
    op = "adaptive_avg_pool2d"
    x = _tensor(input, "input", op)
    x4, unbatch = _batched(x, op)
    if isinstance(output_size, (tuple, list)):
        output_size = tuple(x4.shape[2 + i] if o is None else o for i, o in enumerate(output_size))
    out_hw = pair(output_size, "output_size", op, minimum=0, single=False)
    if 0 in out_hw:   # PyTorch allows an empty output
        return unbatch(make(np.zeros(x4.shape[:2] + out_hw, x4.dtype), (x4,),
                            lambda g: (np.zeros_like(x4.data),), "AdaptiveAvgPool2d", saved=()))
    y = _pool.adaptive_avg_pool_forward(x4.data, out_hw)
    return unbatch(make(y, (x4,), lambda g: (_pool.adaptive_avg_pool_backward(g, x4.shape),),
                        "AdaptiveAvgPool2d"))


# --- dense layers and activations -----------------------------------------------------------

def linear(input, weight, bias=None):
    """``y = x Wᵀ + b`` as ``torch.nn.functional.linear``. Shape: (..., in) -> (..., out)."""
    op = "linear"
    x, w = _tensor(input, "input", op), _tensor(weight, "weight", op)
    b = None if bias is None else _tensor(bias, "bias", op)
    _same_dtype(op, input=x, weight=w, bias=b)
    if w.ndim != 2 or x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"{op}: input has {x.shape[-1] if x.ndim else 'no'} features (shape {x.shape}) but "
            f"weight expects {w.shape[1] if w.ndim == 2 else '?'} (weight shape {w.shape})"
        )
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"{op}: bias must have shape ({w.shape[0]},), got {b.shape}")
    x2 = x.data.reshape(-1, x.shape[-1])                               # (M, in)
    y = _engine.matmul(x2, w.data.T).reshape(x.shape[:-1] + (w.shape[0],))
    if b is not None:
        y += b.data

    def backward(g):
        g2 = g.reshape(-1, g.shape[-1])                                # (M, out)
        gx = _engine.matmul(g2, w.data).reshape(x.shape) if x.requires_grad else None  # (..., in)
        gw = _engine.matmul(g2.T, x2) if w.requires_grad else None     # (out, in)
        gb = g2.sum(axis=0) if b is not None and b.requires_grad else None
        return gx, gw, gb

    return make(y, (x, w) if b is None else (x, w, b), backward, "Linear")


def relu(input):
    """max(x, 0); the gradient at 0 is 0, as in PyTorch."""
    return _tensor(input, "input", "relu").relu()


def leaky_relu(input, negative_slope=0.01):
    """x if x > 0 else negative_slope·x."""
    x = _tensor(input, "input", "leaky_relu")
    slope = np.where(x.data > 0, 1, negative_slope).astype(x.dtype)
    return make(x.data * slope, (x,), lambda g: (g * slope,), "LeakyRelu")


def tanh(input):
    return _tensor(input, "input", "tanh").tanh()


def sigmoid(input):
    return _tensor(input, "input", "sigmoid").sigmoid()


def log_softmax(input, dim=-1):
    """``x − logsumexp(x)`` along ``dim``, computed stably (:meth:`Tensor.log_softmax`)."""
    return _tensor(input, "input", "log_softmax").log_softmax(dim)


def softmax(input, dim=-1):
    """``exp(x) / Σ exp(x)`` along ``dim`` (:meth:`Tensor.softmax`)."""
    return _tensor(input, "input", "softmax").softmax(dim)


# --- losses ---------------------------------------------------------------------------------

def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _class_targets(target, n: int, num_classes: int, op: str) -> np.ndarray:
    t = np.asarray(target.data if isinstance(target, Tensor) else target)
    if not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"{op}: target must hold integer class indices, got dtype {t.dtype}")
    if t.shape != (n,):
        raise ValueError(f"{op}: target must have shape ({n},) to match the input, got {t.shape}")
    if t.size and (t.min() < 0 or t.max() >= num_classes):
        bad = t[(t < 0) | (t >= num_classes)][0]
        raise ValueError(f"{op}: target {bad} is out of range for {num_classes} classes")
    return t.astype(np.int64, copy=False)


def nll_loss(input, target, reduction="mean"):
    """``loss_n = −input[n, target_n]`` (input holds log-probabilities), shape (N, C)."""
    op = "nll_loss"
    logp = _tensor(input, "input", op)
    if logp.ndim != 2:
        raise ValueError(f"{op}: input must be 2-D (N, C), got shape {logp.shape}")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    t = _class_targets(target, logp.shape[0], logp.shape[1], op)
    rows = np.arange(logp.shape[0])

    def backward(g):
        gx = np.zeros_like(logp.data)
        gx[rows, t] = -g
        return (gx,)

    picked = make(-logp.data[rows, t], (logp,), backward, "NLLLoss")
    return _reduce(picked, reduction, op)


def cross_entropy(input, target, reduction="mean", label_smoothing=0.0):
    """Softmax cross-entropy on logits (N, C) with integer targets (N,), numerically stable.

    ``loss_n = −(1−ε)·log p[n, t_n] − (ε/C)·Σ_c log p[n, c]`` with ``log p = log_softmax(x)``.

    Examples
    --------
    >>> import numpy as np, numcnn as nc
    >>> logits = nc.tensor(np.array([[1000.0, 0.0]]), requires_grad=True)
    >>> float(cross_entropy(logits, np.array([0])).item())
    0.0
    """
    op = "cross_entropy"
    x = _tensor(input, "input", op)
    if x.ndim != 2:
        raise ValueError(f"{op}: input must be 2-D logits (N, C), got shape {x.shape}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    logp = log_softmax(x, dim=1)
    loss = nll_loss(logp, target, reduction="none")
    if label_smoothing:
        loss = loss * (1.0 - label_smoothing) - logp.mean(axis=1) * label_smoothing
    return _reduce(loss, reduction, op)


def mse_loss(input, target, reduction="mean"):
    """``(input − target)²``, reduced; shapes must match."""
    op = "mse_loss"
    x = _tensor(input, "input", op)
    t = _tensor(target, "target", op)
    if x.shape != t.shape:
        raise ValueError(f"{op}: input shape {x.shape} and target shape {t.shape} must match")
    diff = x - t
    return _reduce(diff * diff, reduction, op)


# --- regularization, shape helpers ------------------------------------------------------------

def dropout(input, p=0.5, training=True, rng=None):
    """Zero each element with probability p and scale the rest by 1/(1−p) (inverted dropout)."""
    x = _tensor(input, "input", "dropout")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p!r}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    rng = _random.get_rng() if rng is None else rng
    mask = (rng.random(x.shape) >= p).astype(x.dtype) / x.dtype.type(1.0 - p)
    return make(x.data * mask, (x,), lambda g: (g * mask,), "Dropout")


def flatten(input, start_dim=0, end_dim=-1):
    """Merge axes start_dim..end_dim, as ``torch.flatten``."""
    return _tensor(input, "input", "flatten", floating=False).flatten(start_dim, end_dim)


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalization over axis 1 of (N, C) or (N, C, H, W), as ``F.batch_norm``.

    Training: normalize with the batch mean and biased variance, and update the running
    statistics in place (``running = (1−momentum)·running + momentum·batch``, unbiased variance).
    Eval: normalize with the running statistics.
    ``y = (x − μ)/√(σ² + ε) · γ + β``; backward (training):
    ``gx = (γ/σ̂)·(g − mean(g) − x̂·mean(g·x̂))`` over the reduced axes.
    """
    op = "batch_norm"
    x = _tensor(input, "input", op)
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"{op}: input must be (N, C), (N, C, L) or (N, C, H, W), got {x.shape}")
    C = x.shape[1]
    axes = (0,) + tuple(range(2, x.ndim))
    bshape = (1, C) + (1,) * (x.ndim - 2)
    gamma = None if weight is None else _tensor(weight, "weight", op)
    beta = None if bias is None else _tensor(bias, "bias", op)
    for name, t in (("weight", gamma), ("bias", beta)):
        if t is not None and t.shape != (C,):
            raise ValueError(f"{op}: {name} must have shape ({C},), got {t.shape}")
    if training:
        count = x.numel() // C
        if count < 2:
            raise ValueError(f"{op}: expected more than 1 value per channel when training, got input {x.shape}")
        mean = x.data.mean(axis=axes)
        var = x.data.var(axis=axes)
        if running_mean is not None:
            running_mean *= 1 - momentum
            running_mean += momentum * mean
        if running_var is not None:
            running_var *= 1 - momentum
            running_var += momentum * var * count / (count - 1)
    else:
        if running_mean is None or running_var is None:
            raise ValueError(f"{op}: running_mean and running_var are required when training=False")
        mean, var = np.asarray(running_mean), np.asarray(running_var)
    inv_std = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
    xhat = (x.data - mean.reshape(bshape).astype(x.dtype)) * inv_std.reshape(bshape)
    g_arr = np.ones(C, x.dtype) if gamma is None else gamma.data
    y = xhat * g_arr.reshape(bshape)
    if beta is not None:
        y = y + beta.data.reshape(bshape)

    def backward(g):
        gx = None
        if x.requires_grad:
            gxhat = g * g_arr.reshape(bshape)
            if training:
                gx = inv_std.reshape(bshape) * (
                    gxhat - gxhat.mean(axis=axes, keepdims=True)
                    - xhat * (gxhat * xhat).mean(axis=axes, keepdims=True))
            else:
                gx = gxhat * inv_std.reshape(bshape)
        grads = [gx]
        if gamma is not None:
            grads.append((g * xhat).sum(axis=axes) if gamma.requires_grad else None)
        if beta is not None:
            grads.append(g.sum(axis=axes) if beta.requires_grad else None)
        return grads

    parents = tuple(t for t in (x, gamma, beta) if t is not None)
    return make(y.astype(x.dtype, copy=False), parents, backward, "BatchNorm")

