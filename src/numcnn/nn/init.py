"""Weight initializers with PyTorch's names, arguments and formulas (``torch.nn.init``).

Each ``*_`` function fills its tensor (a :class:`~numcnn.nn.Parameter`, a Tensor or an
ndarray) in place, keeps its dtype, and returns it. Random ones draw from ``generator`` (a
``numpy.random.Generator``), by default numcnn's global one (:func:`numcnn.random.get_rng`), so
``numcnn.manual_seed(s)`` makes model initialization reproducible.

Fans of a weight of shape ``(out, in, *kernel)``: ``fan_in = in · prod(kernel)``,
``fan_out = out · prod(kernel)``.

* ``xavier_uniform_``: ``U(−a, a)`` with ``a = gain · √(6 / (fan_in + fan_out))``
* ``xavier_normal_``: ``N(0, std²)`` with ``std = gain · √(2 / (fan_in + fan_out))``
* ``kaiming_uniform_``: ``U(−b, b)`` with ``b = gain · √(3 / fan)``
* ``kaiming_normal_``: ``N(0, std²)`` with ``std = gain / √fan``
* ``trunc_normal_``: ``N(mean, std²)`` conditioned on ``[a, b]`` (by rejection: the same
  distribution PyTorch draws by inverting the CDF, not the same numbers)
* ``orthogonal_``: ``gain · Q`` from the QR decomposition of a normal matrix (signs fixed
  by ``diag(R)``), the weight flattened to (rows, ∏ rest)
* ``eye_``, ``dirac_``: identity matrix; identity convolution (per group)
* ``sparse_``: ``N(0, std²)`` with ``⌈sparsity · rows⌉`` zeros in every column

Examples
--------
>>> import numpy as np, numcnn as nc
>>> from numcnn.nn import init
>>> w = np.empty((256, 128), dtype=np.float32)
>>> _ = nc.manual_seed(0)
>>> init.kaiming_uniform_(w, nonlinearity='relu').dtype
dtype('float32')
>>> bool(np.abs(w).max() <= np.sqrt(2) * np.sqrt(3 / 128))
True
>>> init.calculate_gain('tanh')
1.6666666666666667
"""
from __future__ import annotations

import math

import numpy as np

from .. import random as _random
from ..autograd import Tensor
from ..validation import is_real

__all__ = [
    "calculate_gain",
    "constant_",
    "dirac_",
    "eye_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "orthogonal_",
    "sparse_",
    "trunc_normal_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]

_LINEAR = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
           "conv_transpose3d", "sigmoid")


def calculate_gain(nonlinearity: str, param=None) -> float:
    """The recommended gain for a nonlinearity, as ``torch.nn.init.calculate_gain``.

    linear, conv and sigmoid: 1; tanh: 5/3; relu: √2; leaky_relu: √(2 / (1 + slope²)) with
    slope ``param`` (default 0.01); selu: 3/4.
    """
    if nonlinearity in _LINEAR:
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif is_real(param):
            slope = float(param)
        else:
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a valid number")
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unsupported nonlinearity {nonlinearity!r}")


def _array(tensor, op: str) -> np.ndarray:
    arr = tensor.data if isinstance(tensor, Tensor) else tensor
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{op}: tensor must be a Tensor, Parameter or ndarray, "
                        f"got {type(tensor).__name__}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise TypeError(f"{op}: tensor must have a floating dtype, got {arr.dtype}")
    return arr


def _calculate_fan_in_and_fan_out(tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight shaped ``(out, in, *kernel)``; needs >= 2 dimensions."""
    shape = tensor.shape
    if len(shape) < 2:
        raise ValueError("Fan in and fan out can not be computed for tensor with fewer than 2 "
                         f"dimensions (got shape {tuple(shape)})")
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


def _calculate_correct_fan(tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _fill(tensor, values, op: str):
    arr = _array(tensor, op)
    arr[...] = values          # in place, cast to the tensor's dtype
    if isinstance(tensor, Tensor):
        tensor._version_counter.value += 1
    return tensor


def _rng(generator) -> np.random.Generator:
    return _random.get_rng() if generator is None else generator


def uniform_(tensor, a: float = 0.0, b: float = 1.0, generator=None):
    """Fill with draws from ``U(a, b)``."""
    if a > b:
        raise ValueError(f"uniform_: a must be <= b, got a={a!r}, b={b!r}")
    return _fill(tensor, _rng(generator).uniform(a, b, size=tensor.shape), "uniform_")


def normal_(tensor, mean: float = 0.0, std: float = 1.0, generator=None):
    """Fill with draws from ``N(mean, std²)``."""
    if std < 0:
        raise ValueError(f"normal_: std must be >= 0, got {std!r}")
    return _fill(tensor, _rng(generator).normal(mean, std, size=tensor.shape), "normal_")


def constant_(tensor, val: float):
    """Fill with ``val``."""
    return _fill(tensor, val, "constant_")


def ones_(tensor):
    """Fill with ones."""
    return _fill(tensor, 1, "ones_")


def zeros_(tensor):
    """Fill with zeros."""
    return _fill(tensor, 0, "zeros_")


def xavier_uniform_(tensor, gain: float = 1.0, generator=None):
    """Glorot uniform: ``U(−a, a)``, ``a = gain · √(6 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    bound = gain * math.sqrt(6.0 / float(fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain: float = 1.0, generator=None):
    """Glorot normal: ``N(0, std²)``, ``std = gain · √(2 / (fan_in + fan_out))``."""
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def kaiming_uniform_(tensor, a: float = 0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu", generator=None):
    """He uniform: ``U(−b, b)``, ``b = gain · √(3 / fan)``, ``gain = calculate_gain(
    nonlinearity, a)`` and ``fan`` the fan-in or fan-out (``mode``). An empty tensor is left
    as it is."""
    if 0 in tensor.shape:
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu", generator=None):
    """He normal: ``N(0, std²)``, ``std = gain / √fan`` (see :func:`kaiming_uniform_`)."""
    if 0 in tensor.shape:
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    std = calculate_gain(nonlinearity, a) / math.sqrt(fan)
    return normal_(tensor, 0.0, std, generator)


def default_layer_init_(weight, bias=None, generator=None):
    """PyTorch's default for Conv2d and Linear: ``kaiming_uniform_(w, a=√5)`` and the bias from
    ``U(−1/√fan_in, 1/√fan_in)`` (fan_in = input features × kernel area)."""
    kaiming_uniform_(weight, a=math.sqrt(5), generator=generator)
    if bias is not None:
        fan_in, _ = _calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        uniform_(bias, -bound, bound, generator=generator)


def trunc_normal_(tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0,
                  generator=None):
    """Fill with ``N(mean, std²)`` draws restricted to ``[a, b]`` (rejected draws are redrawn)."""
    if std < 0 or a > b:
        raise ValueError(f"trunc_normal_: need std >= 0 and a <= b, got std={std!r}, a={a!r}, "
                         f"b={b!r}")
    rng = _rng(generator)
    out = rng.normal(mean, std, size=tensor.shape)
    bad = (out < a) | (out > b)
    for _ in range(1000):                    # each round redraws only the rejected entries
        if not bad.any():
            break
        out[bad] = rng.normal(mean, std, size=int(bad.sum()))
        bad = (out < a) | (out > b)
    else:
        raise ValueError(f"trunc_normal_: [a, b] = [{a}, {b}] holds too little of "
                         f"N({mean}, {std}²) to sample by rejection")
    return _fill(tensor, out, "trunc_normal_")


def orthogonal_(tensor, gain: float = 1, generator=None):
    """Fill with a (semi-)orthogonal matrix times ``gain``, as ``torch.nn.init.orthogonal_``."""
    if len(tensor.shape) < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if 0 in tensor.shape:
        return tensor
    rows = tensor.shape[0]
    cols = math.prod(tensor.shape) // rows
    flat = _rng(generator).normal(0.0, 1.0, size=(rows, cols))
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)                 # (max, min) with orthonormal columns
    q *= np.sign(np.diag(r))                  # unique: diag(R) > 0
    if rows < cols:
        q = q.T
    return _fill(tensor, gain * q.reshape(tensor.shape), "orthogonal_")


def eye_(tensor):
    """Fill a 2-D tensor with the identity matrix (ones on the main diagonal)."""
    if len(tensor.shape) != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    return _fill(tensor, np.eye(*tensor.shape), "eye_")


def dirac_(tensor, groups: int = 1):
    """Fill a 3-, 4- or 5-D conv weight with the Dirac delta: a convolution with it keeps
    as many input channels as possible (per group), as ``torch.nn.init.dirac_``."""
    shape = tensor.shape
    if len(shape) not in (3, 4, 5):
        raise ValueError("Only tensors with 3, 4, or 5 dimensions are supported")
    if shape[0] % groups:
        raise ValueError("dim 0 must be divisible by groups")
    out_per_group = shape[0] // groups
    n = min(out_per_group, shape[1])
    values = np.zeros(shape)
    centre = tuple(k // 2 for k in shape[2:])
    d = np.arange(n)
    for g in range(groups):                   # a loop over groups: one assignment each
        values[(g * out_per_group + d, d) + centre] = 1
    return _fill(tensor, values, "dirac_")


def sparse_(tensor, sparsity: float, std: float = 0.01, generator=None):
    """Fill a 2-D tensor with ``N(0, std²)`` and zero ``⌈sparsity · rows⌉`` entries of every
    column (chosen at random), as ``torch.nn.init.sparse_``."""
    if len(tensor.shape) != 2:
        raise ValueError("Only tensors with 2 dimensions are supported")
    rows, cols = tensor.shape
    rng = _rng(generator)
    values = rng.normal(0.0, std, size=(rows, cols))
    zeros = math.ceil(sparsity * rows)
    order = np.argsort(rng.random((rows, cols)), axis=0)[:zeros]      # rows to zero, per column
    values[order, np.arange(cols)] = 0
    return _fill(tensor, values, "sparse_")
