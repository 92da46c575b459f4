"""``Conv2d``: a 2-D convolution layer holding its weight and bias, as ``torch.nn.Conv2d``."""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .._functional_ext import _single
from ..ops.shapes import conv_padding, pair
from . import init
from ._checks import check_bool, check_device, check_float_dtype, check_int
from .module import Module
from .parameter import Parameter

__all__ = ["Conv1d", "Conv2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _check_padding_mode(padding_mode, op: str) -> str:
    if padding_mode not in _PADDING_MODES:
        raise ValueError(f"{op}: padding_mode must be one of {list(_PADDING_MODES)}, but got "
                         f"padding_mode={padding_mode!r}")
    return padding_mode


class Conv2d(Module):
    """2-D cross-correlation of (N, C_in, H, W) input with a learned (C_out, C_in/groups, kh, kw)
    kernel plus bias (see :func:`numcnn.functional.conv2d` for the formula).

    Output size per axis: ``H_out = ⌊(H + 2p − d(k − 1) − 1) / s⌋ + 1``.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (int, int)
    stride, dilation : int or (int, int), default 1
    padding : int, (int, int), ``'same'`` or ``'valid'``, default 0
    groups : int, default 1; must divide both channel counts
    bias : bool, default True
    padding_mode : ``'zeros'`` (default), ``'reflect'``, ``'replicate'`` or ``'circular'``;
        the last three pad with :func:`numcnn.functional.pad` first, then convolve unpadded
    device : None or ``'cpu'``
    dtype : float32 (default) or float64, the dtype of the parameters

    Weights start as ``kaiming_uniform_(w, a=√5)`` and the bias as
    ``U(−1/√fan_in, 1/√fan_in)``, PyTorch's defaults (:meth:`reset_parameters`).

    Examples
    --------
    >>> import numpy as np
    >>> from numcnn import nn
    >>> conv = nn.Conv2d(1, 6, kernel_size=5)
    >>> conv
    Conv2d(1, 6, kernel_size=(5, 5), stride=(1, 1))
    >>> conv.weight.shape, conv.bias.shape, conv.weight.dtype
    ((6, 1, 5, 5), (6,), dtype('float32'))
    >>> conv(np.zeros((8, 1, 32, 32), dtype=np.float32)).shape
    (8, 6, 28, 28)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=np.float32):
        super().__init__()
        op = "Conv2d"
        self.in_channels = check_int(in_channels, "in_channels", op)
        self.out_channels = check_int(out_channels, "out_channels", op)
        self.kernel_size = pair(kernel_size, "kernel_size", op, minimum=1)
        self.stride = pair(stride, "stride", op, minimum=1)
        self.dilation = pair(dilation, "dilation", op, minimum=1)
        if isinstance(padding, str):
            conv_padding(padding, self.kernel_size, self.stride, self.dilation, op)
            self.padding = padding
        else:
            self.padding = pair(padding, "padding", op, minimum=0)
        self.groups = check_int(groups, "groups", op)
        for name, channels in (("in_channels", self.in_channels),
                               ("out_channels", self.out_channels)):
            if channels % self.groups:
                raise ValueError(f"{op}: {name}={channels} must be divisible by "
                                 f"groups={self.groups}")
        check_bool(bias, "bias", op)
        self.padding_mode = _check_padding_mode(padding_mode, op)
        check_device(device, op)
        dt = check_float_dtype(dtype, op)
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dt))
        if bias:
            self.bias = Parameter(np.empty(self.out_channels, dtype=dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: ``kaiming_uniform_(w, a=√5)``, bias ``U(±1/√fan_in)``."""
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, input):
        if self.padding_mode != "zeros":
            (t, b), (l, r) = conv_padding(self.padding, self.kernel_size, self.stride,
                                          self.dilation, "Conv2d")
            return F.conv2d(F.pad(input, (l, r, t, b), mode=self.padding_mode), self.weight,
                            self.bias, self.stride, 0, self.dilation, self.groups)
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
            f"stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(Module):
    """1-D cross-correlation of (N, C_in, L) input with a learned (C_out, C_in/groups, k) kernel
    plus bias, as ``torch.nn.Conv1d``; computed by :func:`numcnn.functional.conv1d`, i.e. the
    2-D kernels on (N, C_in, 1, L) views.

    Arguments as :class:`Conv2d`, with an int (or 1-tuple) ``kernel_size``, ``stride``,
    ``padding`` (or ``'same'``/``'valid'``) and ``dilation``. Output length
    ``L_out = ⌊(L + 2p − d(k − 1) − 1) / s⌋ + 1``.

    Examples
    --------
    >>> import numpy as np
    >>> from numcnn import nn
    >>> conv = nn.Conv1d(4, 8, 3, padding=1, padding_mode="circular")
    >>> conv(np.zeros((2, 4, 10), dtype=np.float32)).shape
    (2, 8, 10)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=np.float32):
        super().__init__()
        op = "Conv1d"
        self.in_channels = check_int(in_channels, "in_channels", op)
        self.out_channels = check_int(out_channels, "out_channels", op)
        self.kernel_size = (check_int(_single(kernel_size, "kernel_size", op), "kernel_size", op),)
        self.stride = (check_int(_single(stride, "stride", op), "stride", op),)
        self.dilation = (check_int(_single(dilation, "dilation", op), "dilation", op),)
        if isinstance(padding, str):
            conv_padding(padding, (1,) + self.kernel_size, (1,) + self.stride,
                         (1,) + self.dilation, op)
            self.padding = padding
        else:
            self.padding = (check_int(_single(padding, "padding", op), "padding", op, minimum=0),)
        self.groups = check_int(groups, "groups", op)
        for name, channels in (("in_channels", self.in_channels),
                               ("out_channels", self.out_channels)):
            if channels % self.groups:
                raise ValueError(f"{op}: {name}={channels} must be divisible by "
                                 f"groups={self.groups}")
        check_bool(bias, "bias", op)
        self.padding_mode = _check_padding_mode(padding_mode, op)
        check_device(device, op)
        dt = check_float_dtype(dtype, op)
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dt))
        if bias:
            self.bias = Parameter(np.empty(self.out_channels, dtype=dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: ``kaiming_uniform_(w, a=√5)``, bias ``U(±1/√fan_in)``."""
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, input):
        padding = self.padding
        if self.padding_mode != "zeros":
            _, (l, r) = conv_padding(self.padding, (1,) + self.kernel_size, (1,) + self.stride,
                                     (1,) + self.dilation, "Conv1d")
            input, padding = F.pad(input, (l, r), mode=self.padding_mode), 0
        return F.conv1d(input, self.weight, self.bias, self.stride, padding, self.dilation,
                        self.groups)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
            f"stride={self.stride}"
        if self.padding != (0,):
            s += f", padding={self.padding}"
        if self.dilation != (1,):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s
