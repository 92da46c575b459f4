"""Dense and shape layers: ``Linear``, ``Flatten``, ``Identity`` (as in ``torch.nn``)."""
from __future__ import annotations

from numbers import Integral

import numpy as np

from .. import functional as F
from ..validation import check_int
from . import init
from .module import Module, config_repr
from .parameter import add_weight_and_bias

__all__ = ["Flatten", "Identity", "Linear"]


class Linear(Module):
    """``y = x Wᵀ + b`` with W of shape (out_features, in_features); (..., in) -> (..., out).

    Parameters
    ----------
    in_features, out_features : int
    bias : bool, default True
    device : None or ``'cpu'``
    dtype : float32 (default) or float64

    Weights start as ``kaiming_uniform_(w, a=√5)``, the bias as ``U(±1/√in_features)``,
    PyTorch's defaults.

    Examples
    --------
    >>> import numpy as np
    >>> from numcnn import nn
    >>> fc = nn.Linear(400, 120)
    >>> fc
    Linear(in_features=400, out_features=120, bias=True)
    >>> fc(np.ones((3, 400), dtype=np.float32)).shape
    (3, 120)
    """

    def __init__(self, in_features, out_features, bias=True, device=None, dtype=np.float32):
        super().__init__()
        op = "Linear"
        self.in_features = check_int(in_features, "in_features", op)
        self.out_features = check_int(out_features, "out_features", op)
        add_weight_and_bias(self, (self.out_features, self.in_features), self.out_features, bias,
                            device, dtype, op)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: ``kaiming_uniform_(w, a=√5)``, bias ``U(±1/√fan_in)``."""
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def get_config(self) -> dict:
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.bias is not None}

    def extra_repr(self) -> str:
        return config_repr(self.get_config())


class Flatten(Module):
    """Merge axes ``start_dim..end_dim`` into one: (N, C, H, W) -> (N, C·H·W) by default.

    Examples
    --------
    >>> import numpy as np
    >>> from numcnn import nn
    >>> nn.Flatten()(np.zeros((2, 16, 5, 5), dtype=np.float32)).shape
    (2, 400)
    """

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        for name, value in (("start_dim", start_dim), ("end_dim", end_dim)):
            if not isinstance(value, Integral) or isinstance(value, bool):
                raise TypeError(f"Flatten: {name} must be an int, got {value!r}")
        self.start_dim, self.end_dim = int(start_dim), int(end_dim)

    def forward(self, input):
        return F.flatten(input, self.start_dim, self.end_dim)

    def get_config(self) -> dict:
        return {"start_dim": self.start_dim, "end_dim": self.end_dim}

    def extra_repr(self) -> str:
        return config_repr(self.get_config())


class Identity(Module):
    """Return the input unchanged; any constructor arguments are ignored (as in PyTorch)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input

    def get_config(self) -> dict:
        return {}                    # the arguments were ignored: nothing to rebuild
