"""Converters of ``Conv`` and ``ConvTranspose`` nodes to :class:`~numcnn.nn.Conv2d` and
:class:`~numcnn.nn.ConvTranspose2d`.

A Conv folds in the zero ``Pad`` before it; both fold in the ``Add`` of a per-channel constant
after them as their bias (PyTorch's exporter writes the bias that way for some models).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .. import nn
from ..ops.shapes import Pair, conv_padding
from ._chain import Chain, build
from ._graph import attributes, fail, pads_attribute, text_attribute

if TYPE_CHECKING:
    from onnx import NodeProto

__all__ = ["convert_conv", "convert_conv_transpose"]

#: What nn.Conv2d's ``padding`` takes: a pair, 0 or "same".
Padding = Pair | int | str


def _check_kernel(node: NodeProto, attrs: dict[str, Any], weight: np.ndarray,
                  kind: str) -> None:
    """A 4-D ``weight`` whose kernel agrees with the ``kernel_shape`` attribute, if any."""
    if weight.ndim != 4:
        fail(node, f"only 2-D {kind} are supported (weight of shape {weight.shape})")
    kernel = tuple(weight.shape[2:])
    if tuple(attrs.get("kernel_shape", kernel)) != kernel:
        fail(node, f"kernel_shape {attrs['kernel_shape']} does not match the weight shape "
                   f"{weight.shape}")


def _bias_and_output(chain: Chain, node: NodeProto, bias: np.ndarray | None,
                     channels: int) -> tuple[np.ndarray | None, str]:
    """The layer's bias and output: the node's own, or those of the bias Add after it."""
    if bias is None:
        # a constant of shape (C,) would broadcast along the width, not the channels
        found = chain.next_bias_add(((channels, 1, 1), (1, channels, 1, 1)))
        if found is not None:
            return found
    return bias, node.output[0]


def _pair_attribute(node: NodeProto, attrs: dict[str, Any], name: str) -> Pair:
    """A per-axis attribute of a 2-D convolution (strides, dilations), (1, 1) by default."""
    value = [int(v) for v in attrs.get(name, (1, 1))]
    if len(value) != 2:
        fail(node, f"{name} {value} must have 2 values, one per axis")
    return value[0], value[1]


def _padding(node: NodeProto, auto_pad: str, pads: tuple[int, ...], kernel: Pair,
             stride: Pair, dilation: Pair) -> Padding:
    """Conv2d's ``padding`` for ONNX's ``auto_pad`` and ``pads`` (begin h, w, end h, w)."""
    same = conv_padding("same", kernel, (1, 1), dilation) if stride == (1, 1) else None
    if auto_pad == "VALID":
        return 0
    if auto_pad == "SAME_UPPER" and same is not None:
        return "same"
    if auto_pad != "NOTSET":
        fail(node, f"auto_pad={auto_pad!r} is supported only as VALID, or SAME_UPPER with "
                   "stride 1")
    if pads[0] == pads[2] and pads[1] == pads[3]:
        return pads[0], pads[1]
    if same is not None and ((pads[0], pads[2]), (pads[1], pads[3])) == same:
        return "same"
    fail(node, f"asymmetric pads {list(pads)} are supported only as the 'same' padding of a "
               "stride-1 convolution")


def convert_conv(chain: Chain, node: NodeProto) -> None:
    graph, attrs = chain.graph, attributes(node)
    weight = graph.const(node, 1, "weight")
    bias = graph.optional_const(node, 2, "bias")
    _check_kernel(node, attrs, weight, "convolutions")
    c_out, c_in_per_group, kh, kw = weight.shape
    stride, dilation = (_pair_attribute(node, attrs, name) for name in ("strides", "dilations"))
    groups = int(attrs.get("group", 1))
    auto_pad = text_attribute(attrs, "auto_pad", "NOTSET")
    pads: tuple[int, ...] = pads_attribute(node, attrs)
    pad = chain.take_pad(node, 0.0)
    if pad is not None:
        if auto_pad != "NOTSET":
            fail(node, f"a Pad before a convolution with auto_pad={auto_pad!r} is not supported")
        pads = tuple(p + q for p, q in zip(pads, pad.pads))
    padding = _padding(node, auto_pad, pads, (kh, kw), stride, dilation)
    bias, output = _bias_and_output(chain, node, bias, c_out)
    layer = build(node, nn.Conv2d, in_channels=c_in_per_group * groups, out_channels=c_out,
                  kernel_size=(kh, kw), stride=stride, padding=padding, dilation=dilation,
                  groups=groups, bias=bias is not None, dtype=graph.dtype)
    chain.add_weighted(layer, weight, bias, output)


def convert_conv_transpose(chain: Chain, node: NodeProto) -> None:
    graph, attrs = chain.graph, attributes(node)
    weight = graph.const(node, 1, "weight")
    bias = graph.optional_const(node, 2, "bias")
    _check_kernel(node, attrs, weight, "transposed convolutions")
    c_in, c_out_per_group, kh, kw = weight.shape
    auto_pad = text_attribute(attrs, "auto_pad", "NOTSET")
    if auto_pad not in ("NOTSET", "VALID") or "output_shape" in attrs:
        fail(node, "output_shape and auto_pad SAME_* are not supported (give explicit pads and "
                   "output_padding)")
    pads = pads_attribute(node, attrs) if auto_pad == "NOTSET" else (0, 0, 0, 0)
    if pads[:2] != pads[2:]:
        fail(node, f"asymmetric pads {list(pads)} are not supported")
    groups = int(attrs.get("group", 1))
    bias, output = _bias_and_output(chain, node, bias, c_out_per_group * groups)
    layer = build(node, nn.ConvTranspose2d, in_channels=c_in,
                  out_channels=c_out_per_group * groups, kernel_size=(kh, kw),
                  stride=tuple(attrs.get("strides", (1, 1))), padding=pads[:2],
                  output_padding=tuple(attrs.get("output_padding", (0, 0))), groups=groups,
                  bias=bias is not None, dilation=tuple(attrs.get("dilations", (1, 1))),
                  dtype=graph.dtype)
    chain.add_weighted(layer, weight, bias, output)
