"""Pure-NumPy kernels: forward and hand-derived backward of conv2d, conv_transpose2d and pooling
(no Tensor)."""
from .conv import conv2d_bias, conv2d_forward, conv2d_input, conv2d_weight
from .pool import (
    adaptive_avg_pool_backward,
    adaptive_avg_pool_forward,
    avg_pool2d_backward,
    avg_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
)
from .transpose import (
    conv_transpose2d_bias,
    conv_transpose2d_forward,
    conv_transpose2d_input,
    conv_transpose2d_weight,
)

__all__ = [
    "adaptive_avg_pool_backward",
    "adaptive_avg_pool_forward",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "conv2d_bias",
    "conv2d_forward",
    "conv2d_input",
    "conv2d_weight",
    "conv_transpose2d_bias",
    "conv_transpose2d_forward",
    "conv_transpose2d_input",
    "conv_transpose2d_weight",
    "max_pool2d_backward",
    "max_pool2d_forward",
]
