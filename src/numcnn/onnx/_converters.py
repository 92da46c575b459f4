"""The converter of each ONNX operator :func:`numcnn.onnx.load` turns into a layer.

:data:`CONVERTERS` maps an op type to a function ``(chain, node) -> None`` that appends the
node's layer to the chain (or, for a Pad or Identity, only moves the chain on). Every converter
checks the node's attributes and constants and refuses, naming the node, what the layer cannot
represent. Convolutions and pools have their own modules; the rest are here.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .. import nn
from ._chain import Chain, build
from ._convolution import convert_conv, convert_conv_transpose
from ._graph import Shape, attributes, fail, short_float
from ._pooling import (
    convert_average_pool,
    convert_global_average_pool,
    convert_max_pool,
    convert_pad,
)
from ._shapes import Dim

if TYPE_CHECKING:
    from onnx import NodeProto

__all__ = ["CONVERTERS", "Converter"]

Converter = Callable[[Chain, "NodeProto"], None]


# --- Linear -------------------------------------------------------------------------------------

def _linear_bias(node: NodeProto, bias: np.ndarray, outputs: int, dtype: np.dtype) -> np.ndarray:
    """``bias`` with one value per output (a single value is broadcast, as ONNX does)."""
    bias = np.asarray(bias)
    if bias.size == 1:
        bias = np.full(outputs, bias.reshape(()), dtype=dtype)
    if bias.size != outputs:
        fail(node, f"the bias of shape {bias.shape} does not fit {outputs} outputs")
    return bias


def _add_linear(chain: Chain, node: NodeProto, weight: np.ndarray, bias: np.ndarray | None,
                output: str) -> None:
    """Append a Linear of ``weight`` (out, in) and ``bias``, whose output is ``output``."""
    outputs, dtype = weight.shape[0], chain.graph.dtype
    layer = build(node, nn.Linear, in_features=weight.shape[1], out_features=outputs,
                  bias=bias is not None, dtype=dtype)
    if bias is not None:
        bias = _linear_bias(node, bias, outputs, dtype)
    chain.add_weighted(layer, weight, bias, output)


def _gemm(chain: Chain, node: NodeProto) -> None:
    attrs = attributes(node)
    if attrs.get("transA", 0):
        fail(node, "transA=1 is not supported (the input must be (N, in))")
    b = chain.graph.const(node, 1, "B")
    c = chain.graph.optional_const(node, 2, "C")
    weight = (b if attrs.get("transB", 0) else b.T) * attrs.get("alpha", 1.0)
    bias = None if c is None else c * attrs.get("beta", 1.0)
    if bias is not None and bias.ndim == 2 and bias.shape[0] != 1:
        fail(node, f"a C of shape {bias.shape} (a per-row bias) is not supported")
    _add_linear(chain, node, weight, bias, node.output[0])


def _matmul(chain: Chain, node: NodeProto) -> None:
    # the walk has checked that the input comes first: x @ W
    b = chain.graph.const(node, 1, "weight")
    if b.ndim != 2:
        fail(node, f"the weight must be 2-D (in, out), got shape {b.shape}")
    found = chain.next_bias_add(((b.shape[1],), (1, b.shape[1])))
    bias, output = found if found is not None else (None, node.output[0])
    _add_linear(chain, node, b.T, bias, output)


def _add(chain: Chain, node: NodeProto) -> None:
    # the Adds numcnn reads are biases, taken by the Conv or MatMul before them
    fail(node, "an Add is supported only as the bias right after a Conv or a MatMul")


# --- normalization and activations --------------------------------------------------------------

def _batch_norm(chain: Chain, node: NodeProto) -> None:
    graph, attrs = chain.graph, attributes(node)
    if attrs.get("training_mode", 0) or len([o for o in node.output if o]) > 1:
        fail(node, "only inference mode (one output, training_mode=0) is supported")
    if not attrs.get("spatial", 1):     # before opset 9
        fail(node, "spatial=0 (statistics per activation, not per channel) is not supported")
    scale, bias, mean, var = (graph.const(node, k, what) for k, what in
                              enumerate(("scale", "B", "mean", "var"), start=1))
    rank = graph.rank(chain.current)
    if rank not in (None, 2, 3, 4):
        fail(node, f"input of rank {rank} is not supported")
    # ONNX's momentum weighs the running statistic, PyTorch's the new batch statistic
    momentum = round(1.0 - short_float(attrs.get("momentum", 0.9)), 12)
    layer = build(node, nn.BatchNorm1d if rank in (2, 3) else nn.BatchNorm2d,
                  num_features=scale.size, eps=short_float(attrs.get("epsilon", 1e-5)),
                  momentum=min(max(momentum, 0.0), 1.0), dtype=graph.dtype)
    layer.running_mean[...] = graph.param(mean)
    layer.running_var[...] = graph.param(var)
    chain.add_weighted(layer, scale, bias, node.output[0])


def _leaky_relu(chain: Chain, node: NodeProto) -> None:
    alpha = short_float(attributes(node).get("alpha", 0.01))
    chain.add(build(node, nn.LeakyReLU, negative_slope=alpha), node.output[0])


def _layer_without_attributes(layer: type[nn.Module]) -> Converter:
    def convert(chain: Chain, node: NodeProto) -> None:
        chain.add(layer(), node.output[0])

    return convert


def _softmax_of(layer: type[nn.Softmax | nn.LogSoftmax]) -> Converter:
    def convert(chain: Chain, node: NodeProto) -> None:
        opset, rank = chain.graph.opset, chain.graph.rank(chain.current)
        axis = int(attributes(node).get("axis", -1 if opset >= 13 else 1))
        if rank is not None and not -rank <= axis < rank:
            fail(node, f"attribute 'axis' is {axis}, expected -{rank} to {rank - 1} for a "
                       f"rank-{rank} input")
        # before opset 13, Softmax normalized over all axes from `axis` on
        if opset < 13 and rank is not None and axis % rank != rank - 1:
            fail(node, f"before opset 13, axis={axis} on a rank-{rank} input normalizes over "
                       "several axes, which is not supported")
        if opset < 13 and rank is None and axis != 1:
            fail(node, f"before opset 13, axis={axis} needs a known input rank")
        chain.add(layer(dim=axis), node.output[0])

    return convert


# --- shape and regularization -------------------------------------------------------------------

def _flatten(chain: Chain, node: NodeProto) -> None:
    axis = int(attributes(node).get("axis", 1))
    rank = chain.graph.rank(chain.current)
    if axis != 1 and not (rank is not None and axis == 1 - rank):
        fail(node, f"only axis=1 (keeping the batch axis) is supported, got {axis}")
    chain.add(nn.Flatten(), node.output[0])


def _keeps_batch_and_flattens(target: list[int], shape_in: Shape | None) -> bool:
    """Whether reshaping a value of shape ``shape_in`` to ``target`` is ``(N, -1)``."""
    rest = batch = None
    if shape_in is not None:
        batch = shape_in[0]
        sizes = [d for d in shape_in[1:] if d is not None]
        if len(sizes) == len(shape_in) - 1:
            rest = math.prod(sizes)
    return len(target) == 2 and (target[1] == -1 or target[1] == rest) and (
        target[0] == 0 or (batch is not None and target[0] == batch)
        or (target[0] == -1 and rest is not None and target[1] == rest))


def _reshape(chain: Chain, node: NodeProto) -> None:
    shape_value = chain.shape_values.get(node.input[1]) if len(node.input) > 1 else None
    if shape_value is None:
        fail(node, "the target shape must be a constant or computed from shapes")
    if attributes(node).get("allowzero", 0) and 0 in shape_value.items:
        fail(node, f"with allowzero=1 the 0 of the target shape {shape_value.items} is a size "
                   "of zero, not the input's size, which is not supported")
    # a size read from the input's own batch axis is the same as 0 (keep that size)
    items: list[Dim] = [0 if item == ("dim", chain.current, 0) else item
                        for item in shape_value.items]
    target = [item for item in items if isinstance(item, int)]
    if len(target) != len(items):
        fail(node, f"the target shape {items} depends on sizes known only at run time other "
                   "than the batch size")
    shape_in = chain.graph.shapes.get(chain.current)
    if not _keeps_batch_and_flattens(target, shape_in):
        fail(node, f"only a reshape to (N, -1) (a flatten keeping the batch axis) is supported, "
                   f"got shape {target} for an input of shape "
                   f"{'unknown' if shape_in is None else shape_in}")
    chain.add(nn.Flatten(), node.output[0])


def _dropout(chain: Chain, node: NodeProto) -> None:
    ratio = chain.graph.optional_const(node, 1, "ratio")      # an attribute before opset 12
    p = short_float(np.reshape(ratio, -1)[0] if ratio is not None
                    else attributes(node).get("ratio", 0.5))
    training = chain.graph.optional_const(node, 2, "training_mode")
    if training is not None and bool(training):
        fail(node, "training_mode=True is not supported")
    chain.add(build(node, nn.Dropout, p=p), node.output[0])


def _identity(chain: Chain, node: NodeProto) -> None:
    chain.current = node.output[0]


#: op type -> its converter. The walk evaluates Constant nodes and shape computations itself.
CONVERTERS: dict[str, Converter] = {
    "Conv": convert_conv, "ConvTranspose": convert_conv_transpose,
    "Gemm": _gemm, "MatMul": _matmul, "Add": _add,
    "MaxPool": convert_max_pool, "AveragePool": convert_average_pool,
    "GlobalAveragePool": convert_global_average_pool, "Pad": convert_pad,
    "BatchNormalization": _batch_norm,
    "Relu": _layer_without_attributes(nn.ReLU), "LeakyRelu": _leaky_relu,
    "Tanh": _layer_without_attributes(nn.Tanh), "Sigmoid": _layer_without_attributes(nn.Sigmoid),
    "Softmax": _softmax_of(nn.Softmax), "LogSoftmax": _softmax_of(nn.LogSoftmax),
    "Flatten": _flatten, "Reshape": _reshape, "Dropout": _dropout, "Identity": _identity,
}
