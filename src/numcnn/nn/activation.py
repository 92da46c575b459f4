"""Elementwise activation layers: ``ReLU``, ``LeakyReLU``, ``Tanh``, ``Sigmoid``, and
``Softmax``/``LogSoftmax`` along one axis (as in ``torch.nn``).

``inplace=True`` is accepted for compatibility with PyTorch code; the result is the same, only
computed out of place (autograd keeps the input). ``get_config()`` lists ``inplace`` only when it
is set, so the configuration of a default layer is the one earlier versions wrote.
"""
from __future__ import annotations

from numbers import Integral, Real

from .. import functional as F
from ..validation import check_bool
from .module import Module, config_repr

__all__ = ["GELU", "LeakyReLU", "LogSoftmax", "ReLU", "SiLU", "Sigmoid", "Softmax", "Softplus",
           "Tanh"]


class ReLU(Module):
    """``max(x, 0)`` elementwise.

    Examples
    --------
    >>> import numpy as np
    >>> from numcnn import nn
    >>> nn.ReLU()(np.array([-1.0, 2.0])).data
    array([0., 2.])
    """

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = check_bool(inplace, "inplace", "ReLU")

    def forward(self, input):
        return F.relu(input)

    def get_config(self) -> dict:
        return {"inplace": True} if self.inplace else {}

    def extra_repr(self) -> str:
        return config_repr(self.get_config())


class LeakyReLU(Module):
    """``x`` if ``x > 0`` else ``negative_slope · x``."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        if not isinstance(negative_slope, Real) or isinstance(negative_slope, bool):
            raise TypeError(f"LeakyReLU: negative_slope must be a number, got {negative_slope!r}")
        self.negative_slope = negative_slope
        self.inplace = check_bool(inplace, "inplace", "LeakyReLU")

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope)

    def get_config(self) -> dict:
        return {"negative_slope": self.negative_slope} | (
            {"inplace": True} if self.inplace else {})

    def extra_repr(self) -> str:
        return config_repr(self.get_config())


class Tanh(Module):
    """``tanh(x)`` elementwise (LeNet-5's squashing function)."""

    def forward(self, input):
        return F.tanh(input)


class Sigmoid(Module):
    """``1 / (1 + e^{−x})`` elementwise."""

    def forward(self, input):
        return F.sigmoid(input)


def _check_dim(dim, op: str):
    if dim is not None and (not isinstance(dim, Integral) or isinstance(dim, bool)):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    return dim


class Softmax(Module):
    """``exp(x) / Σ exp(x)`` along ``dim`` (the last axis when ``dim`` is None)."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = _check_dim(dim, "Softmax")

    def forward(self, input):
        return F.softmax(input, -1 if self.dim is None else self.dim)

    def get_config(self) -> dict:
        return {"dim": self.dim}

    def extra_repr(self) -> str:
        return config_repr(self.get_config())


class LogSoftmax(Module):
    """``x − logsumexp(x)`` along ``dim`` (the last axis when ``dim`` is None)."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = _check_dim(dim, "LogSoftmax")

    def forward(self, input):
        return F.log_softmax(input, -1 if self.dim is None else self.dim)

    def get_config(self) -> dict:
        return {"dim": self.dim}

    def extra_repr(self) -> str:
        return config_repr(self.get_config())


class GELU(Module):
    """``x·Φ(x)`` (``approximate='none'``) or its tanh approximation (``'tanh'``)."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, approximate=self.approximate)

    def get_config(self) -> dict:
        return {"approximate": self.approximate}

    def extra_repr(self) -> str:
        return config_repr(self.get_config())


class SiLU(Module):
    """``x·σ(x)`` (swish)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = check_bool(inplace, "inplace", "SiLU")

    def forward(self, input):
        return F.silu(input)

    def get_config(self) -> dict:
        return {"inplace": True} if self.inplace else {}

    def extra_repr(self) -> str:
        return config_repr(self.get_config())


class Softplus(Module):
    """``(1/β)·log(1 + e^{βx})``, linear where ``βx > threshold``."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        for name, v in (("beta", beta), ("threshold", threshold)):
            if not isinstance(v, Real) or isinstance(v, bool):
                raise TypeError(f"Softplus: {name} must be a number, got {v!r}")
        self.beta, self.threshold = beta, threshold

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def get_config(self) -> dict:
        return {"beta": self.beta, "threshold": self.threshold}

    def extra_repr(self) -> str:
        return config_repr(self.get_config())
