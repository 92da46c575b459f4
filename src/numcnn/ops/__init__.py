"""Pure-NumPy kernels: forward and hand-derived backward of conv2d, conv_transpose2d and pooling
(no Tensor).

The math is in :mod:`.conv`, :mod:`.pool`, :mod:`.windows` and :mod:`.transpose` (single-threaded
functions on whole arrays, as SPEC-math writes them); :mod:`.engine` runs them on batch chunks and
blocks, on the kernel threads (:mod:`.parallel`), keeping the columns the backward needs in the
:mod:`.workspace`.
"""
from .engine import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    conv2d_bias,
    conv2d_forward,
    conv2d_forward_and_weight,
    conv2d_input,
    conv2d_weight,
    max_pool2d_backward,
    max_pool2d_forward,
)
from .pool import adaptive_avg_pool_backward, adaptive_avg_pool_forward
from .transpose import (
    conv_transpose2d_bias,
    conv_transpose2d_forward,
    conv_transpose2d_input,
    conv_transpose2d_weight,
)
from .workspace import release as release_workspace

__all__ = [
    "adaptive_avg_pool_backward",
    "adaptive_avg_pool_forward",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "conv2d_bias",
    "conv2d_forward",
    "conv2d_forward_and_weight",
    "conv2d_input",
    "conv2d_weight",
    "conv_transpose2d_bias",
    "conv_transpose2d_forward",
    "conv_transpose2d_input",
    "conv_transpose2d_weight",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "release_workspace",
]
