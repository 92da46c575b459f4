"""The ``key=value`` form of ``numcnn explain``: one conv or pooling configuration, every axis.

``conv2d N=2 C_in=4 C_out=6 H=7 W=6 k=3x2 s=2x1 p=1x0 d=1x2 g=2`` becomes an ``nn.Conv2d`` and
an input shape; the explanation is that layer's detail block (per-axis quantities, tensors).
``convtranspose2d`` takes the conv's keys and ``r`` (its ``output_padding``).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..ops.shapes import pair
from .parse import check_layer_size
from .plan import ExplainError

if TYPE_CHECKING:
    from ..nn import Module


def _axb(value) -> str:
    return "x".join(str(v) for v in pair(value))


def layer_from_config(op: str, params: dict) -> tuple[Module, tuple[int, int, int, int], str]:
    """-> (layer, input shape (N, C, H, W), title line). ``params`` as from parse_key_values."""
    from .. import nn

    c = dict(params)
    layer: Module
    N, H, W, k = c.get("N", 1), c["H"], c["W"], c["k"]
    try:
        if op == "conv2d":
            C_in, C_out = c.get("C_in", 1), c.get("C_out", 1)
            s, p, d, g = c.get("s", 1), c.get("p", 0), c.get("d", 1), c.get("g", 1)
            check_layer_size(nn.Conv2d, "Conv2d", (C_in, C_out, k), {"groups": g}, 8)
            layer = nn.Conv2d(C_in, C_out, k, stride=s, padding=p, dilation=d, groups=g,
                              bias=c.get("bias", True), dtype=np.float64)
            title = (f"numcnn explain conv2d N={N} C_in={C_in} C_out={C_out} H={H} W={W} "
                     f"k={_axb(k)} s={_axb(s)} p={_axb(p)} d={_axb(d)} g={g}")
            return layer, (N, C_in, H, W), title
        if op == "convtranspose2d":
            C_in, C_out = c.get("C_in", 1), c.get("C_out", 1)
            s, p, r = c.get("s", 1), c.get("p", 0), c.get("r", 0)
            d, g = c.get("d", 1), c.get("g", 1)
            check_layer_size(nn.ConvTranspose2d, "ConvTranspose2d", (C_in, C_out, k),
                             {"groups": g}, 8)
            layer = nn.ConvTranspose2d(C_in, C_out, k, stride=s, padding=p, output_padding=r,
                                       groups=g, bias=c.get("bias", True), dilation=d,
                                       dtype=np.float64)
            title = (f"numcnn explain convtranspose2d N={N} C_in={C_in} C_out={C_out} H={H} "
                     f"W={W} k={_axb(k)} s={_axb(s)} p={_axb(p)} r={_axb(r)} d={_axb(d)} g={g}")
            return layer, (N, C_in, H, W), title
        C, s, p = c.get("C", 1), c.get("s", k), c.get("p", 0)
        ceil = c.get("ceil_mode", False)
        if op == "avgpool2d":
            cip = c.get("count_include_pad", True)
            layer = nn.AvgPool2d(k, stride=s, padding=p, ceil_mode=ceil, count_include_pad=cip)
            extra = f" ceil_mode={ceil} count_include_pad={cip}"
        else:
            d = c.get("d", 1)
            layer = nn.MaxPool2d(k, stride=s, padding=p, dilation=d, ceil_mode=ceil)
            extra = f" d={_axb(d)} ceil_mode={ceil}"
    except (ValueError, TypeError) as err:
        raise ExplainError(str(err)) from None
    title = (f"numcnn explain {op} N={N} C={C} H={H} W={W} k={_axb(k)} s={_axb(s)} "
             f"p={_axb(p)}{extra}")
    return layer, (N, C, H, W), title
