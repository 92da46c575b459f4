"""Pooling layers: ``MaxPool2d``, ``AvgPool2d``, ``AdaptiveAvgPool2d`` (as in ``torch.nn``).

Output size per axis: ``H_out = ⌊(H + 2p − d(k − 1) − 1) / s⌋ + 1`` (⌈·⌉ with ``ceil_mode``);
the stride defaults to the kernel size.
"""
from __future__ import annotations

from .. import functional as F
from ..ops.shapes import pair
from ..validation import check_bool, check_int, check_pair
from .module import Module, config_repr

__all__ = ["AdaptiveAvgPool2d", "AvgPool2d", "MaxPool2d", "MaxUnpool2d"]


def _check_window(op: str, kernel_size, stride, padding, dilation=1):
    """Validate a pooling window; return ``(kernel_size, stride, padding)`` as given (the stride
    defaulting to the kernel size)."""
    kernel_size = check_pair(kernel_size, "kernel_size", op, minimum=1)
    stride = kernel_size if stride is None or (isinstance(stride, (tuple, list)) and not stride) \
        else check_pair(stride, "stride", op, minimum=1)
    padding = check_pair(padding, "padding", op, minimum=0)
    check_pair(dilation, "dilation", op, minimum=1)
    for axis, p, k in zip(("height", "width"), pair(padding), pair(kernel_size)):
        if 2 * p > k:
            raise ValueError(f"{op}: padding {p} on the {axis} axis must be at most half the "
                             f"kernel size {k} (padding <= {k // 2})")
    return kernel_size, stride, padding


class MaxPool2d(Module):
    """2-D max pooling over (N, C, H, W) windows; ties go to the first maximum.

    Examples
    --------
    >>> import numpy as np
    >>> from numcnn import nn
    >>> pool = nn.MaxPool2d(2)
    >>> pool
    MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)
    >>> pool(np.zeros((1, 3, 28, 28), dtype=np.float32)).shape
    (1, 3, 14, 14)
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        op = "MaxPool2d"
        self.kernel_size, self.stride, self.padding = _check_window(
            op, kernel_size, stride, padding, dilation)
        self.dilation = check_pair(dilation, "dilation", op, minimum=1)
        self.return_indices = check_bool(return_indices, "return_indices", op)
        self.ceil_mode = check_bool(ceil_mode, "ceil_mode", op)

    def forward(self, input):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            ceil_mode=self.ceil_mode, return_indices=self.return_indices)

    def get_config(self) -> dict:
        return {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding,
                "dilation": self.dilation, "return_indices": self.return_indices,
                "ceil_mode": self.ceil_mode}

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, " \
               f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"


class AvgPool2d(Module):
    """2-D average pooling over (N, C, H, W) windows.

    ``count_include_pad`` counts padded zeros in the divisor; ``divisor_override`` replaces the
    divisor.

    Examples
    --------
    >>> import numpy as np
    >>> from numcnn import nn
    >>> pool = nn.AvgPool2d(2)
    >>> pool
    AvgPool2d(kernel_size=2, stride=2, padding=0)
    >>> pool(np.ones((1, 6, 28, 28), dtype=np.float32)).shape
    (1, 6, 14, 14)
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True, divisor_override=None):
        super().__init__()
        op = "AvgPool2d"
        self.kernel_size, self.stride, self.padding = _check_window(
            op, kernel_size, stride, padding)
        self.ceil_mode = check_bool(ceil_mode, "ceil_mode", op)
        self.count_include_pad = check_bool(count_include_pad, "count_include_pad", op)
        if divisor_override is not None and check_int(divisor_override, "divisor_override", op,
                                                       minimum=-(2 ** 63)) == 0:
            raise ValueError(f"{op}: divisor must be not zero (divisor_override=0)")
        self.divisor_override = divisor_override

    def forward(self, input):
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad, self.divisor_override)

    def get_config(self) -> dict:
        return {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding,
                "ceil_mode": self.ceil_mode, "count_include_pad": self.count_include_pad,
                "divisor_override": self.divisor_override}

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed (H_out, W_out) whatever the input size; ``output_size=1`` is
    global average pooling. ``None`` in a pair keeps that input size.

    Examples
    --------
    >>> import numpy as np
    >>> from numcnn import nn
    >>> nn.AdaptiveAvgPool2d(1)(np.ones((2, 8, 7, 7), dtype=np.float32)).shape
    (2, 8, 1, 1)
    """

    def __init__(self, output_size):
        super().__init__()
        op = "AdaptiveAvgPool2d"
        sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size,)
        if isinstance(output_size, (tuple, list)) and len(output_size) != 2:
            raise TypeError(f"{op}: output_size must be an int or a pair, got {output_size!r}")
        for size in sizes:
            if size is not None:
                check_int(size, "output_size", op, minimum=0)
        self.output_size = tuple(output_size) if isinstance(output_size, list) else output_size

    def forward(self, input):
        return F.adaptive_avg_pool2d(input, self.output_size)

    def get_config(self) -> dict:
        return {"output_size": self.output_size}

    def extra_repr(self) -> str:
        return config_repr(self.get_config())


class MaxUnpool2d(Module):
    """The partial inverse of :class:`MaxPool2d`: ``forward(input, indices, output_size=None)``
    puts each value back at its index, zeros elsewhere (see
    :func:`numcnn.functional.max_unpool2d`).

    Examples
    --------
    >>> import numpy as np
    >>> from numcnn import nn
    >>> pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
    >>> y, idx = pool(np.arange(16.0).reshape(1, 1, 4, 4))
    >>> unpool(y, idx).data[0, 0]
    array([[ 0.,  0.,  0.,  0.],
           [ 0.,  5.,  0.,  7.],
           [ 0.,  0.,  0.,  0.],
           [ 0., 13.,  0., 15.]])
    """

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        op = "MaxUnpool2d"
        self.kernel_size = check_pair(kernel_size, "kernel_size", op, minimum=1)
        self.stride = self.kernel_size if stride is None else check_pair(stride, "stride", op,
                                                                          minimum=1)
        self.padding = check_pair(padding, "padding", op, minimum=0)

    def forward(self, input, indices, output_size=None):
        return F.max_unpool2d(input, indices, self.kernel_size, self.stride, self.padding,
                              output_size)

    def get_config(self) -> dict:
        return {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding}

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
