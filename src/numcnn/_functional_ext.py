"""More of ``torch.nn.functional``: GELU, SiLU, Softplus, ``dropout2d``, ``max_unpool2d`` and
``interpolate``; re-exported by :mod:`numcnn.functional`.

The math lives in :mod:`numcnn.ops.activations`, :mod:`numcnn.ops.unpool` and
:mod:`numcnn.ops.resize`; these wrappers validate arguments and record the backward. The
argument helpers of the functional ops (:func:`_tensor`, :func:`_batched`, :func:`_single`)
live here too, below :mod:`numcnn.functional`, which imports them: this module needs nothing
of it.
"""
from __future__ import annotations

import math
import warnings
from numbers import Integral, Real

import numpy as np

from . import random as _random
from .autograd import Tensor, make
from .ops import activations as _act
from .ops import resize as _resize
from .ops import unpool as _unpool
from .ops.shapes import check_input_rank, pair

__all__ = ["dropout2d", "gelu", "interpolate", "max_unpool2d", "silu", "softplus"]


# --- the argument helpers of the functional ops -------------------------------------------------

def _tensor(x, name: str, op: str, floating: bool = True) -> Tensor:
    if not isinstance(x, Tensor):
        x = Tensor(x)
    if floating and not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{op}: {name} must have a floating dtype (float32 or float64), got {x.dtype}")
    return x


def _batched(x: Tensor, op: str):
    """Accept (N, C, H, W) or unbatched (C, H, W); return the 4-D tensor and an un-batcher."""
    check_input_rank(x.shape, "input", op)
    if x.ndim == 4:
        return x, lambda y: y
    return x.reshape((1,) + x.shape), lambda y: y.reshape(y.shape[1:])


def _single(value, name: str, op: str):
    """An int or a 1-element tuple/list (PyTorch's ``_single``) as an int."""
    if isinstance(value, (tuple, list)) and len(value) == 1:
        value = value[0]
    if isinstance(value, Integral) and not isinstance(value, bool):
        return int(value)
    raise TypeError(f"{op}: expected {name} to be a single integer value or a list of 1 "
                    f"values to match the convolution dimensions, but got {name}={value!r}")


# --- activations --------------------------------------------------------------------------------

def gelu(input, approximate="none"):
    """``x·Φ(x)`` (``approximate='none'``, exact erf) or its tanh approximation
    (``'tanh'``), as ``torch.nn.functional.gelu``; formulas in :mod:`numcnn.ops.activations`."""
    x = _tensor(input, "input", "gelu")
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return make(_act.gelu_forward(x.data, approximate), (x,),
                lambda g: (_act.gelu_backward(x.data, g, approximate),), "Gelu")


def silu(input, inplace=False):
    """``x·σ(x)`` (swish), as ``torch.nn.functional.silu``; ``inplace`` only for
    compatibility (computed out of place)."""
    x = _tensor(input, "input", "silu")
    return make(_act.silu_forward(x.data), (x,), lambda g: (_act.silu_backward(x.data, g),),
                "Silu")


def softplus(input, beta=1.0, threshold=20.0):
    """``(1/β)·log(1 + e^{βx})``, linear where ``βx > threshold``, as
    ``torch.nn.functional.softplus``."""
    x = _tensor(input, "input", "softplus")
    for name, v in (("beta", beta), ("threshold", threshold)):
        if not isinstance(v, Real) or isinstance(v, bool):
            raise TypeError(f"softplus: {name} must be a number, got {v!r}")
    return make(_act.softplus_forward(x.data, beta, threshold), (x,),
                lambda g: (_act.softplus_backward(x.data, g, beta, threshold),), "Softplus")


# --- channel dropout ----------------------------------------------------------------------------

def dropout2d(input, p=0.5, training=True, inplace=False):
    """Zero whole channels with probability ``p`` and scale the rest by ``1/(1 − p)``, as
    ``torch.nn.functional.dropout2d``: one draw per (n, c) of an (N, C, H, W) input.

    A 3-D input is read as (N, C, L) with one draw per (n, c), which is what PyTorch does today
    (with a warning that this will change); other ranks are refused.
    """
    x = _tensor(input, "input", "dropout2d")
    if not isinstance(p, Real) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout2d: dropout probability has to be between 0 and 1, but got {p!r}")
    if x.ndim not in (3, 4):
        raise ValueError(f"dropout2d: expected a 4-D (N, C, H, W) or 3-D input, got shape "
                         f"{x.shape}; use dropout for other ranks")
    if x.ndim == 3:
        warnings.warn("dropout2d: a 3-D input is read as (N, C, L), one draw per channel of "
                      "each sample, as PyTorch does today", UserWarning, stacklevel=2)
    if not training or p == 0.0:
        return x
    keep = _random.get_rng().random(x.shape[:2]) >= p                   # (N, C)
    scale = 0.0 if p == 1.0 else 1.0 / (1.0 - p)
    mask = (keep * scale).astype(x.dtype).reshape(x.shape[:2] + (1,) * (x.ndim - 2))
    return make(x.data * mask, (x,), lambda g: (g * mask,), "Dropout2d", saved=())


# --- max unpooling ------------------------------------------------------------------------------

def _unpool_size(in_hw, kernel, stride, padding, output_size):
    default = tuple((i - 1) * s - 2 * p + k for i, s, p, k in zip(in_hw, stride, padding, kernel))
    if output_size is None:
        return default
    size = tuple(output_size)
    if len(size) == 4:
        size = size[2:]
    if len(size) != 2 or not all(isinstance(v, Integral) for v in size):
        raise ValueError(f"max_unpool2d: output_size must have 2 or 4 elements (ints), got "
                         f"{output_size!r}")
    for d in range(2):
        lo, hi = default[d] - stride[d], default[d] + stride[d]
        if not lo < size[d] < hi:
            raise ValueError(f'max_unpool2d: invalid output_size "{tuple(output_size)}" '
                             f"(dim {d} must be between {lo} and {hi})")
    return tuple(int(v) for v in size)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Put each value back where :func:`max_pool2d` (``return_indices=True``) found it, zeros
    elsewhere, as ``torch.nn.functional.max_unpool2d``.

    Output size per axis: ``(H − 1)·stride − 2·padding + kernel_size`` unless ``output_size``
    says otherwise (within one stride of it). Backward: ``gX = gY`` gathered at ``indices``.
    """
    op = "max_unpool2d"
    x = _tensor(input, "input", op)
    idx = np.asarray(indices.data if hasattr(indices, "data") else indices)
    if idx.dtype != np.int64:
        raise TypeError(f"{op}: expected indices to have dtype int64, got {idx.dtype}")
    if idx.shape != x.shape:
        raise ValueError(f"{op}: expected shape of indices to be the input's {x.shape}, "
                         f"got {idx.shape}")
    x4, unbatch = _batched(x, op)
    kernel = pair(kernel_size, "kernel_size", op, minimum=1)
    stride = kernel if stride is None or stride == () else pair(stride, "stride", op, minimum=1)
    padding = pair(padding, "padding", op, minimum=0)
    out_hw = _unpool_size(x4.shape[2:], kernel, stride, padding, output_size)
    if min(out_hw) < 1:
        raise ValueError(f"{op}: output size {out_hw} is empty for input {x.shape}")
    idx4 = idx.reshape(x4.shape)
    if idx4.size and (idx4.min() < 0 or idx4.max() >= out_hw[0] * out_hw[1]):
        bad = idx4[(idx4 < 0) | (idx4 >= out_hw[0] * out_hw[1])].flat[0]
        raise ValueError(f"{op}: Found an invalid max index: {bad} (output volumes are of size "
                         f"{out_hw[0]}x{out_hw[1]})")
    y = _unpool.max_unpool2d_forward(x4.data, idx4, out_hw)
    return unbatch(make(y, (x4,), lambda g: (_unpool.max_unpool2d_backward(g, idx4),),
                        "MaxUnpool2d", saved=()))


# --- interpolation ------------------------------------------------------------------------------

_MODES = {3: ("nearest", "nearest-exact", "linear"), 4: ("nearest", "nearest-exact", "bilinear")}


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize the spatial axes, as ``torch.nn.functional.interpolate``.

    Modes: ``'nearest'``, ``'nearest-exact'`` for (N, C, L) and (N, C, H, W) input,
    ``'linear'`` for (N, C, L) and ``'bilinear'`` for (N, C, H, W) (``align_corners`` only with
    these two). Give ``size`` (int or tuple) or ``scale_factor`` (float or tuple), not both; the
    output size is then ``⌊in · scale_factor⌋``, and the source coordinates use
    ``1/scale_factor`` unless ``recompute_scale_factor=True``. Coordinates and weights as
    PyTorch computes them (see :mod:`numcnn.ops.resize`); the backward is the adjoint
    ``gX = A_hᵀ gY A_w``. ``'bicubic'``, ``'area'``, ``'trilinear'`` and ``antialias=True``
    are not implemented and are refused.

    Examples
    --------
    >>> import numpy as np, numcnn as nc
    >>> x = nc.tensor(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    >>> interpolate(x, scale_factor=2, mode="bilinear", align_corners=True).data[0, 0, 0]
    array([1.        , 1.33333333, 1.66666667, 2.        ])
    """
    op = "interpolate"
    x = _tensor(input, "input", op)
    if x.ndim not in _MODES:
        raise NotImplementedError(f"{op}: input must be 3-D (N, C, L) or 4-D (N, C, H, W), got "
                                  f"{x.ndim}-D input of shape {x.shape}")
    if mode not in _MODES[x.ndim]:
        other = {"linear": 3, "bilinear": 4}.get(mode)
        if other is not None:
            raise NotImplementedError(f"{op}: Got {x.ndim}D input, but {mode} mode needs "
                                      f"{other}D input")
        raise NotImplementedError(f"{op}: mode {mode!r} is not supported for {x.ndim}-D input; "
                                  f"expected one of {_MODES[x.ndim]}")
    linear = mode in ("linear", "bilinear")
    if align_corners is not None and not linear:
        raise ValueError(f"{op}: align_corners option can only be set with the interpolating "
                         f"modes: linear | bilinear | bicubic | trilinear")
    if antialias:
        raise NotImplementedError(f"{op}: antialias=True is not supported")
    spatial = x.ndim - 2
    in_sizes = x.shape[2:]
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: " + ("only one of size or scale_factor should be defined"
                                      if size is not None else
                                      "either size or scale_factor should be defined"))
    if size is not None:
        sizes = tuple(size) if isinstance(size, (tuple, list)) else (size,) * spatial
        if len(sizes) != spatial or not all(isinstance(s, Integral) and not isinstance(s, bool)
                                            for s in sizes):
            raise ValueError(f"{op}: Input and output must have the same number of spatial "
                             f"dimensions, but got input with spatial dimensions of "
                             f"{list(in_sizes)} and output size of {size!r}")
        if min(sizes) < 1:
            raise ValueError(f"{op}: output size must be positive, got {size!r}")
        scales = (None,) * spatial
    else:
        scales = tuple(scale_factor) if isinstance(scale_factor, (tuple, list)) \
            else (scale_factor,) * spatial
        if len(scales) != spatial or not all(isinstance(s, Real) and not isinstance(s, bool)
                                             for s in scales):
            raise ValueError(f"{op}: Input and scale_factor must have the same number of "
                             f"spatial dimensions, but got input with spatial dimensions of "
                             f"{list(in_sizes)} and scale_factor of shape {scale_factor!r}")
        sizes = tuple(math.floor(float(n) * float(s)) for n, s in zip(in_sizes, scales))
        if min(sizes) < 1:
            raise ValueError(f"{op}: scale_factor {scale_factor!r} gives output size "
                             f"{sizes} for input size {tuple(in_sizes)}; expected >= 1")
        if recompute_scale_factor:
            scales = (None,) * spatial
    x4 = x if spatial == 2 else x.reshape(x.shape[:2] + (1,) + x.shape[2:])   # (N, C, 1, L)
    in_hw, out_hw = x4.shape[2:], ((1,) + sizes if spatial == 1 else sizes)
    scales_hw = ((None,) + scales) if spatial == 1 else scales
    corners = bool(align_corners)
    mats = [_resize.interpolation_matrix(i, o, mode, corners, s, x.dtype)
            for i, o, s in zip(in_hw, out_hw, scales_hw)]
    idx = None
    if not linear:
        idx = tuple(_resize.nearest_indices(i, o, s, mode == "nearest-exact")
                    for i, o, s in zip(in_hw, out_hw, scales_hw))
    y = _resize.resize_forward(x4.data, *mats, idx=idx)
    out = make(y, (x4,), lambda g: (_resize.resize_backward(g, *mats),),
               "Upsample" + ("Bilinear" if linear else "Nearest"), saved=())
    return out if spatial == 2 else out.reshape(out.shape[:2] + out.shape[3:])
