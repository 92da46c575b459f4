"""Converters of ``MaxPool``, ``AveragePool``, ``GlobalAveragePool`` and ``Pad`` nodes.

numcnn's pools pad symmetrically; ONNX pools may pad more at the end, and exporters (numcnn's
own among them) write ``ceil_mode`` that way, or as a separate ``Pad`` node. Such padding is
turned back into the symmetric padding and ``ceil_mode`` that give the same output sizes, when
there are some. A constant ``Pad`` waits in the chain for the Conv or pool after it to fold it in.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import nn
from ..ops.shapes import pool_output_size
from ._chain import Chain, PendingPad, build
from ._graph import Graph, attributes, fail, pads_attribute, text_attribute

if TYPE_CHECKING:
    from onnx import NodeProto

__all__ = ["convert_average_pool", "convert_global_average_pool", "convert_max_pool",
           "convert_pad"]


@dataclass(frozen=True)
class _Pool:
    """A pool node's attributes."""

    is_max: bool
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    #: begin h, w, end h, w
    pads: tuple[int, ...]
    ceil_mode: bool
    count_include_pad: bool


def _read_pool(node: NodeProto, is_max: bool) -> _Pool:
    attrs = attributes(node)
    auto_pad = text_attribute(attrs, "auto_pad", "NOTSET")
    if auto_pad not in ("NOTSET", "VALID"):
        fail(node, f"auto_pad={auto_pad!r} is not supported (give explicit pads)")
    if is_max and len(node.output) > 1 and node.output[1]:
        fail(node, "the Indices output is not supported")
    kernel = tuple(int(k) for k in attrs["kernel_shape"])
    if len(kernel) != 2:
        fail(node, f"only 2-D pooling is supported, got kernel_shape {list(kernel)}")
    stride = tuple(int(v) for v in attrs.get("strides", (1, 1)))
    dilation = tuple(int(v) for v in attrs.get("dilations", (1, 1)))
    if not is_max and dilation != (1, 1):
        fail(node, "dilated average pooling is not supported")
    pads = pads_attribute(node, attrs) if auto_pad == "NOTSET" else (0, 0, 0, 0)
    return _Pool(is_max, kernel, stride, dilation, pads, ceil_mode=bool(attrs.get("ceil_mode", 0)),
                 count_include_pad=bool(attrs.get("count_include_pad", 0)))


def _build(node: NodeProto, pool: _Pool, padding: tuple[int, ...], ceil_mode: bool,
           count_include_pad: bool) -> nn.Module:
    if pool.is_max:
        return build(node, nn.MaxPool2d, kernel_size=pool.kernel, stride=pool.stride,
                     padding=padding, ceil_mode=ceil_mode, dilation=pool.dilation)
    return build(node, nn.AvgPool2d, kernel_size=pool.kernel, stride=pool.stride,
                 padding=padding, ceil_mode=ceil_mode, count_include_pad=count_include_pad)


def _begin_end(node: NodeProto, pool: _Pool,
               pad: PendingPad | None) -> tuple[list[int], list[int], bool]:
    """All padding before and after, per axis, and the layer's ``count_include_pad``."""
    pre, pads = (pad.pads if pad else (0, 0, 0, 0)), pool.pads
    if pool.is_max:                      # a Pad of -inf and the pool's own padding are alike
        return [pre[i] + pads[i] for i in (0, 1)], [pre[i] + pads[i] for i in (2, 3)], False
    if pad is None:
        begin, end = list(pads[:2]), list(pads[2:])
        return begin, end, pool.count_include_pad and begin != [0, 0]
    # the zeros of a Pad count in the average: only the pool's end padding may be left out
    if pads[:2] != (0, 0) or pre[:2] != pre[2:] or (pool.count_include_pad and pads[2:] != (0, 0)):
        fail(node, f"a Pad of {list(pre)} then pads {list(pads)} (with "
                   f"count_include_pad={int(pool.count_include_pad)}) is not supported")
    return list(pre[:2]), [pre[i] + pads[i] for i in (2, 3)], True


def _with_explicit_padding(chain: Chain, node: NodeProto, pool: _Pool,
                           pad: PendingPad | None) -> nn.Module:
    """The pool equal to asymmetric pads, or to a Pad node first: the padding before, with
    ceil_mode when the extra padding after makes the same output sizes."""
    if pool.ceil_mode:
        fail(node, f"pads {list(pool.pads)} with ceil_mode=1 are not supported")
    shape = chain.graph.shapes.get(pad.source if pad else chain.current)
    if shape is None or len(shape) != 4 or None in shape[2:]:
        fail(node, "asymmetric or separate padding needs the input height and width, which "
                   "shape inference could not find")
    size = [n for n in shape[2:] if n is not None]
    begin, end, count_include_pad = _begin_end(node, pool, pad)
    geometry = list(zip(size, begin, end, pool.kernel, pool.stride, pool.dilation))
    wanted = [(n + b + e - d * (k - 1) - 1) // s + 1 for n, b, e, k, s, d in geometry]
    # ceil_mode's last window may overhang the end; where padding counts, it must not
    counted_overhang = not pool.is_max and pad is None and pool.count_include_pad and begin != end
    for ceil_mode in (False, True):
        got = [pool_output_size(n, k, s, b, d, ceil_mode) for n, b, _, k, s, d in geometry]
        if got == wanted and not (ceil_mode and counted_overhang):
            return _build(node, pool, tuple(begin), ceil_mode, count_include_pad)
    fail(node, f"pads {begin} before and {end} after (input {size}) match no symmetric "
               "padding, with or without ceil_mode")


def _convert_pool(chain: Chain, node: NodeProto, is_max: bool) -> None:
    pool = _read_pool(node, is_max)
    pad = chain.take_pad(node, -np.inf if is_max else 0.0)
    if pad is None and pool.pads[:2] == pool.pads[2:]:
        layer = _build(node, pool, pool.pads[:2], pool.ceil_mode, pool.count_include_pad)
    else:
        layer = _with_explicit_padding(chain, node, pool, pad)
    chain.add(layer, node.output[0])


def convert_max_pool(chain: Chain, node: NodeProto) -> None:
    _convert_pool(chain, node, is_max=True)


def convert_average_pool(chain: Chain, node: NodeProto) -> None:
    _convert_pool(chain, node, is_max=False)


def convert_global_average_pool(chain: Chain, node: NodeProto) -> None:
    if chain.graph.rank(chain.current) not in (None, 4):
        fail(node, "only 4-D (N, C, H, W) input is supported")
    chain.add(nn.AdaptiveAvgPool2d(1), node.output[0])


def _pad_inputs(graph: Graph, node: NodeProto) -> tuple[list[int], Any, np.ndarray | None]:
    """``(pads, value, axes)`` of a Pad: inputs since opset 11, attributes before."""
    if graph.opset >= 11:
        pads = [int(v) for v in graph.const(node, 1, "pads").reshape(-1)]
        return (pads, graph.optional_const(node, 2, "constant_value"),
                graph.optional_const(node, 3, "axes"))
    attrs = attributes(node)
    return [int(v) for v in attrs.get("pads", ())], attrs.get("value", 0.0), None


def _pads_of_every_axis(node: NodeProto, pads: list[int], axes: np.ndarray,
                        rank: int | None) -> list[int]:
    """The pads of a Pad given for some ``axes``, as ONNX's begins-then-ends of every axis."""
    if rank is None:
        fail(node, "a Pad with axes needs a known input rank")
    full = [0] * (2 * rank)
    for j, axis in enumerate(int(v) % rank for v in np.reshape(axes, -1)):
        full[axis], full[rank + axis] = pads[j], pads[len(pads) // 2 + j]
    return full


def convert_pad(chain: Chain, node: NodeProto) -> None:
    mode = text_attribute(attributes(node), "mode", "constant")
    if mode != "constant":
        fail(node, f"only mode='constant' is supported, got {mode!r}")
    pads, value, axes = _pad_inputs(chain.graph, node)
    if axes is not None:
        pads = _pads_of_every_axis(node, pads, axes, chain.graph.rank(chain.current))
    if len(pads) != 8 or any(pads[j] for j in (0, 1, 4, 5)) or min(pads) < 0:
        fail(node, f"only non-negative padding of the height and width of a 4-D input is "
                   f"supported, got pads {pads}")
    fill = 0.0 if value is None else float(np.reshape(value, -1)[0])
    chain.pending_pad = PendingPad((pads[2], pads[3], pads[6], pads[7]), chain.current, fill,
                                   node)
    chain.current = node.output[0]
