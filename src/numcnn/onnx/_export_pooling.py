"""The ONNX nodes :func:`numcnn.onnx.export` writes for ``MaxPool2d``, ``AvgPool2d`` and
``AdaptiveAvgPool2d``.

``ceil_mode`` becomes explicit extra padding at the end (ONNX ``ceil_mode=0``), and a padding
ONNX's pools cannot express becomes a ``Pad`` node before the pool.
"""
from __future__ import annotations

import numpy as np

from .. import nn
from ..autograd import Tensor
from ..ops.shapes import pair, pool_geometry
from ._export_graph import GraphBuilder, OnnxExportError

__all__ = ["adaptive_avg_pool2d", "avg_pool2d", "max_pool2d"]


def _window(c: dict, x: Tensor):
    """Kernel, strides, begin pads and the extra end pads of ``ceil_mode`` (zero without),
    from a pooling layer's config."""
    kh, kw = pair(c["kernel_size"])
    sh, sw = pair(c["stride"])
    ph, pw = pair(c["padding"])
    shape4 = tuple(x.shape) if x.ndim == 4 else (1,) + tuple(x.shape)
    geo = pool_geometry(shape4, (kh, kw), (sh, sw), (ph, pw), pair(c.get("dilation", 1)),
                        c["ceil_mode"])
    extra = (geo.eh, geo.ew) if c["ceil_mode"] else (0, 0)
    return [kh, kw], [sh, sw], (ph, pw), extra


def _pad(g: GraphBuilder, name: str, source: str, x: Tensor, begin, end, value) -> str:
    """A constant ``Pad`` node padding the last two axes of ``x``."""
    pads = g.initializer(g.unique(f"{name}.pads"), np.array(
        [0] * (x.ndim - 2) + list(begin) + [0] * (x.ndim - 2) + list(end), dtype=np.int64))
    fill = g.initializer(g.unique(f"{name}.pad_value"), np.array(value, g.dtype))
    shape = tuple(x.shape[:-2]) + tuple(n + b + e for n, b, e in
                                         zip(x.shape[-2:], begin, end))
    return g.node("Pad", [source, pads, fill], f"{name}.pad", shape)


def max_pool2d(g: GraphBuilder, m: nn.MaxPool2d, name: str, source: str, x: Tensor,
               y: Tensor) -> str:
    c = m.get_config()
    kernel, strides, (ph, pw), (eh, ew) = _window(c, x)
    window = {"kernel_shape": kernel, "strides": strides,
              "dilations": list(pair(c["dilation"])), "ceil_mode": 0}
    if ph + eh < kernel[0] and pw + ew < kernel[1]:
        return g.node("MaxPool", [source], name, y, pads=[ph, pw, ph + eh, pw + ew], **window)
    # pads of a kernel's size or more (dilated windows): pad with -inf first
    padded = _pad(g, name, source, x, (ph, pw), (ph + eh, pw + ew), -np.inf)
    return g.node("MaxPool", [padded], name, y, pads=[0, 0, 0, 0], **window)


def avg_pool2d(g: GraphBuilder, m: nn.AvgPool2d, name: str, source: str, x: Tensor,
               y: Tensor) -> str:
    c = m.get_config()
    if c["divisor_override"] is not None:
        raise OnnxExportError(f"export: layer {name!r} (AvgPool2d) has divisor_override="
                              f"{c['divisor_override']}, which ONNX AveragePool cannot express")
    kernel, strides, (ph, pw), (eh, ew) = _window(c, x)
    window = {"kernel_shape": kernel, "strides": strides, "ceil_mode": 0}
    if (eh, ew) == (0, 0):
        return g.node("AveragePool", [source], name, y, pads=[ph, pw, ph, pw],
                      count_include_pad=int(c["count_include_pad"]), **window)
    if not c["count_include_pad"] or (ph, pw) == (0, 0):
        return g.node("AveragePool", [source], name, y, pads=[ph, pw, ph + eh, pw + ew],
                      count_include_pad=0, **window)
    # ceil_mode counting the padding but not the overhang: pad with zeros first, then
    # average over the windows, excluding only the overhang from the divisor
    padded = _pad(g, name, source, x, (ph, pw), (ph, pw), 0.0)
    return g.node("AveragePool", [padded], name, y, pads=[0, 0, eh, ew],
                  count_include_pad=0, **window)


def adaptive_avg_pool2d(g: GraphBuilder, m: nn.AdaptiveAvgPool2d, name: str, source: str,
                        x: Tensor, y: Tensor) -> str:
    (H, W), (oh, ow) = x.shape[-2:], y.shape[-2:]
    if (oh, ow) == (1, 1):
        return g.node("GlobalAveragePool", [source], name, y)
    if H % oh or W % ow or x.ndim != 4:
        raise OnnxExportError(
            f"export: layer {name!r} (AdaptiveAvgPool2d) pools {H}x{W} to {oh}x{ow}; only "
            "output sizes dividing the input size (or 1) can be exported")
    kh, kw = H // oh, W // ow
    return g.node("AveragePool", [source], name, y, kernel_shape=[kh, kw], strides=[kh, kw])
