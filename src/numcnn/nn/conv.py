"""``Conv2d`` and ``ConvTranspose2d``: 2-D convolution layers holding their weight and bias, as
``torch.nn.Conv2d`` and ``torch.nn.ConvTranspose2d``."""
from __future__ import annotations

import numpy as np

from .. import functional as F
from .._functional_ext import _single
from ..ops.shapes import check_input_rank, conv_padding, pair
from ..ops.transpose import conv_transpose_args, conv_transpose_geometry, output_padding_for
from ..validation import check_int
from . import init
from .module import Module
from .parameter import add_weight_and_bias

__all__ = ["Conv1d", "Conv2d", "ConvTranspose2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _check_groups(in_channels: int, out_channels: int, groups: int, op: str) -> None:
    """Both channel counts must split into ``groups`` equal groups."""
    for name, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
        if channels % groups:
            raise ValueError(f"{op}: {name}={channels} must be divisible by groups={groups}")


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
        _check_groups(self.in_channels, self.out_channels, self.groups, op)
        self.padding_mode = _check_padding_mode(padding_mode, op)
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        add_weight_and_bias(self, shape, self.out_channels, bias, device, dtype, op)
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

    def get_config(self) -> dict:
        # padding_mode came after the first saved files: listed only when it is not 'zeros',
        # so that a zero-padded conv is described exactly as before
        config = {"in_channels": self.in_channels, "out_channels": self.out_channels,
                  "kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding,
                  "dilation": self.dilation, "groups": self.groups, "bias": self.bias is not None}
        if self.padding_mode != "zeros":
            config["padding_mode"] = self.padding_mode
        return config

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
        _check_groups(self.in_channels, self.out_channels, self.groups, op)
        self.padding_mode = _check_padding_mode(padding_mode, op)
        shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        add_weight_and_bias(self, shape, self.out_channels, bias, device, dtype, op)
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

    def get_config(self) -> dict:
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding,
                "dilation": self.dilation, "groups": self.groups, "bias": self.bias is not None,
                "padding_mode": self.padding_mode}

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


class ConvTranspose2d(Module):
    """2-D transposed convolution (the adjoint of a conv2d, "deconvolution"), as
    ``torch.nn.ConvTranspose2d``: upsamples (N, C_in, H, W) with a learned
    (C_in, C_out/groups, kh, kw) kernel plus bias (see
    :func:`numcnn.functional.conv_transpose2d` for the formula).

    Output size per axis: ``H_out = (H − 1)·s − 2p + d(k − 1) + output_padding + 1``.
    ``forward(input, output_size=None)``: with ``output_size`` (H_out, W_out) (or the whole
    output shape), the output_padding giving that size is used instead, as in PyTorch: a
    stride-2 conv maps both 7 and 8 rows to 4, and ``output_size`` picks which one to undo.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size : int or (int, int)
    stride, dilation : int or (int, int), default 1
    padding : int or (int, int), default 0 (the padding of the conv this one transposes:
        ``d(k − 1) − p`` rows are added, in effect)
    output_padding : int or (int, int), default 0; smaller than stride or dilation
    groups : int, default 1; must divide both channel counts
    bias : bool, default True
    padding_mode : ``'zeros'`` (the only mode supported, as in PyTorch)
    device : None or ``'cpu'``
    dtype : float32 (default) or float64, the dtype of the parameters

    Weights start as ``kaiming_uniform_(w, a=√5)`` and the bias as
    ``U(−1/√fan_in, 1/√fan_in)`` with fan_in = weight.shape[1]·kh·kw = (C_out/groups)·kh·kw,
    PyTorch's defaults (:meth:`reset_parameters`).

    Examples
    --------
    >>> import numpy as np
    >>> from numcnn import nn
    >>> up = nn.ConvTranspose2d(16, 8, kernel_size=4, stride=2, padding=1)
    >>> up
    ConvTranspose2d(16, 8, kernel_size=(4, 4), stride=(2, 2), padding=(1, 1))
    >>> up.weight.shape, up.bias.shape
    ((16, 8, 4, 4), (8,))
    >>> up(np.zeros((2, 16, 7, 7), dtype=np.float32)).shape
    (2, 8, 14, 14)
    >>> down = nn.Conv2d(8, 16, 3, stride=2, padding=1)
    >>> nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1)(down(np.zeros((1, 8, 8, 8),
    ...     dtype=np.float32)), output_size=(8, 8)).shape
    (1, 8, 8, 8)
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=np.float32):
        super().__init__()
        op = "ConvTranspose2d"
        self.in_channels = check_int(in_channels, "in_channels", op)
        self.out_channels = check_int(out_channels, "out_channels", op)
        self.kernel_size = pair(kernel_size, "kernel_size", op, minimum=1)
        (self.stride, self.padding, self.output_padding, self.dilation,
         self.groups) = conv_transpose_args(stride, padding, output_padding, dilation,
                                            check_int(groups, "groups", op), op)
        _check_groups(self.in_channels, self.out_channels, self.groups, op)
        if padding_mode != "zeros":
            raise ValueError(f"{op}: only padding_mode='zeros' is supported, got {padding_mode!r}")
        self.padding_mode = padding_mode
        shape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        add_weight_and_bias(self, shape, self.out_channels, bias, device, dtype, op)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default: ``kaiming_uniform_(w, a=√5)``, bias ``U(±1/√fan_in)``, where the
        fans are read from the (C_in, C_out/groups, kh, kw) weight as for any conv weight."""
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, input, output_size=None):
        output_padding = self.output_padding
        if output_size is not None:
            op = "ConvTranspose2d"
            shape = tuple(input.shape)
            check_input_rank(shape, "input", op)
            size = tuple(output_size)
            if len(size) not in (2, len(shape)):
                raise ValueError(f"{op}: for {len(shape)}-D input, output_size must have 2 or "
                                 f"{len(shape)} elements, got {output_size!r}")
            x4 = shape if len(shape) == 4 else (1,) + shape
            smallest = conv_transpose_geometry(x4, self.weight.shape, self.stride, self.padding,
                                               0, self.groups, self.dilation, op)
            output_padding = output_padding_for(size, smallest, op)
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  output_padding, self.groups, self.dilation)

    def get_config(self) -> dict:
        # no padding_mode: 'zeros' is the only one
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding,
                "output_padding": self.output_padding, "groups": self.groups,
                "bias": self.bias is not None, "dilation": self.dilation}

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, " \
            f"stride={self.stride}"
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.output_padding != (0, 0):
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
