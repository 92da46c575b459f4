"""Reference implementations: every op as plain nested loops over the spec's index formulas.

These functions are the test oracle for the vectorized kernels of :mod:`numcnn.ops` and the
speed baseline they are measured against. They are written to be read next to SPEC-math:
each docstring quotes the formula it implements (with its section number) and the innermost
loop body is that formula. Scalar loops are the point here; they are orders of magnitude
slower than the vectorized kernels, so keep shapes tiny.

Index names are the spec's::

    n       batch index                   q       output channel
    c       input channel                 cp      c', the input channel inside its group
    gamma   group index (the spec's γ)    u, v    kernel offsets (rows, columns)
    o_h     output row                    o_w     output column
    i       input row                     j       input column

Dimension legend: N batch, C_in/C_out channels, H/W input size, kh/kw kernel, sh/sw stride,
dh/dw dilation, H_out/W_out output size, ke_h/ke_w effective kernel d(k-1)+1, g groups.
Arrays are ``x, w, b, y`` and their gradients ``gx, gw, gb, gy``; ``w`` is the spec's
weight ``W[q, c', u, v]`` (``W`` alone always means the input width).

Conventions: 4-D NCHW arrays only (no unbatched form); float32 or float64 in. Every sum is
accumulated in float64 and the result is returned in the floating dtype of the array
arguments (``np.result_type``), i.e. float32 in, float32 out.

Modules, one per op family: :mod:`.conv` (conv2d and its backward in index form),
:mod:`.conv_inserted` (the seed's inserted-grad and Rot180 forms of the backward),
:mod:`.conv_transpose`, :mod:`.avg_pool`, :mod:`.max_pool`, :mod:`.adaptive`, :mod:`.linear`
and :mod:`.loss`; :mod:`._common` holds the validation prologue they all start with.
"""
from __future__ import annotations

from .adaptive import adaptive_avg_pool2d, adaptive_avg_pool2d_backward
from .avg_pool import avg_pool2d, avg_pool2d_backward
from .conv import conv2d, conv2d_backward
from .conv_inserted import conv2d_input_inserted, conv2d_weight_rot180
from .conv_transpose import conv_transpose2d, conv_transpose2d_backward
from .linear import linear
from .loss import cross_entropy
from .max_pool import max_pool2d, max_pool2d_backward

__all__ = [
    "adaptive_avg_pool2d",
    "adaptive_avg_pool2d_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "conv2d",
    "conv2d_backward",
    "conv2d_input_inserted",
    "conv2d_weight_rot180",
    "conv_transpose2d",
    "conv_transpose2d_backward",
    "cross_entropy",
    "linear",
    "max_pool2d",
    "max_pool2d_backward",
]
