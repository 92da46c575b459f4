"""The ONNX nodes :func:`numcnn.onnx.export` writes for each supported layer.

:data:`CONVERTERS` maps a layer class to a function ``(builder, layer, name, source, x, y) ->
value`` that adds the layer's nodes (``name``: the layer's name in the model, ``source``: the
ONNX name of its input, ``x``/``y``: its traced input and output) and returns the ONNX name of
its output. Only these exact classes convert: a subclass may compute something else. Pools have
their own module; the rest are here.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .. import nn
from ..autograd import Tensor
from ..ops.shapes import conv_padding
from ._export_graph import GraphBuilder, OnnxExportError
from ._export_pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from ._export_trace import LayerCall

__all__ = ["CONVERTERS", "SUPPORTED_LAYERS", "LayerConverter", "convert_layer"]

LayerConverter = Callable[[GraphBuilder, Any, str, str, Tensor, Tensor], str]


def _weight_and_bias(g: GraphBuilder, m: Any, name: str, source: str) -> list[str]:
    """``source`` followed by the layer's weight and, when it has one, its bias."""
    inputs = [source, g.initializer(f"{name}.weight", m.weight.data)]
    if m.bias is not None:
        inputs.append(g.initializer(f"{name}.bias", m.bias.data))
    return inputs


def _conv2d(g: GraphBuilder, m: nn.Conv2d, name: str, source: str, x: Tensor, y: Tensor) -> str:
    c = m.get_config()
    if c.get("padding_mode", "zeros") != "zeros":
        raise OnnxExportError(f"export: layer {name!r} (Conv2d) has padding_mode="
                              f"{c['padding_mode']!r}; only 'zeros' is exported")
    (pt, pb), (pl, pr) = conv_padding(c["padding"], c["kernel_size"], c["stride"],
                                      c["dilation"])
    return g.node("Conv", _weight_and_bias(g, m, name, source), name, y,
                  kernel_shape=list(c["kernel_size"]), strides=list(c["stride"]),
                  pads=[pt, pl, pb, pr], dilations=list(c["dilation"]), group=c["groups"])


def _conv_transpose2d(g: GraphBuilder, m: nn.ConvTranspose2d, name: str, source: str,
                      x: Tensor, y: Tensor) -> str:
    c = m.get_config()
    (ph, pw), (rh, rw) = c["padding"], c["output_padding"]
    return g.node("ConvTranspose", _weight_and_bias(g, m, name, source), name, y,
                  kernel_shape=list(c["kernel_size"]), strides=list(c["stride"]),
                  pads=[ph, pw, ph, pw], dilations=list(c["dilation"]), group=c["groups"],
                  output_padding=[rh, rw])


def _linear(g: GraphBuilder, m: nn.Linear, name: str, source: str, x: Tensor, y: Tensor) -> str:
    if x.ndim == 2:
        return g.node("Gemm", _weight_and_bias(g, m, name, source), name, y, transB=1)
    weight_t = g.initializer(f"{name}.weight_t", m.weight.data.T)
    if m.bias is None:
        return g.node("MatMul", [source, weight_t], name, y)
    product = g.node("MatMul", [source, weight_t], f"{name}.matmul", y)
    return g.node("Add", [product, g.initializer(f"{name}.bias", m.bias.data)], name, y)


def _batch_norm(g: GraphBuilder, m: Any, name: str, source: str, x: Tensor, y: Tensor) -> str:
    c = m.get_config()
    if not c["track_running_stats"]:
        raise OnnxExportError(f"export: layer {name!r} ({type(m).__name__}) has "
                              "track_running_stats=False; only running statistics export")
    n = c["num_features"]
    weight = m.weight.data if m.weight is not None else np.ones(n, g.dtype)
    bias = m.bias.data if m.bias is not None else np.zeros(n, g.dtype)
    inputs = [source, g.initializer(f"{name}.weight", weight),
              g.initializer(f"{name}.bias", bias),
              g.initializer(f"{name}.running_mean", m.running_mean),
              g.initializer(f"{name}.running_var", m.running_var)]
    momentum = 0.9 if c["momentum"] is None else 1.0 - float(c["momentum"])
    return g.node("BatchNormalization", inputs, name, y, epsilon=float(c["eps"]),
                  momentum=momentum)


def _elementwise(op: str) -> LayerConverter:
    """The converter of a layer that is the ONNX operator ``op`` without attributes."""
    def convert(g: GraphBuilder, m: Any, name: str, source: str, x: Tensor, y: Tensor) -> str:
        return g.node(op, [source], name, y)
    return convert


def _leaky_relu(g: GraphBuilder, m: nn.LeakyReLU, name: str, source: str, x: Tensor,
                y: Tensor) -> str:
    return g.node("LeakyRelu", [source], name, y, alpha=float(m.get_config()["negative_slope"]))


def _softmax(op: str) -> LayerConverter:
    """The converter of ``Softmax`` or ``LogSoftmax`` (ONNX ``op``) along the layer's ``dim``."""
    def convert(g: GraphBuilder, m: Any, name: str, source: str, x: Tensor, y: Tensor) -> str:
        dim = m.get_config()["dim"]
        return g.node(op, [source], name, y, axis=-1 if dim is None else dim)
    return convert


def _flatten(g: GraphBuilder, m: nn.Flatten, name: str, source: str, x: Tensor,
             y: Tensor) -> str:
    c = m.get_config()
    if (c["start_dim"] % x.ndim, c["end_dim"] % x.ndim) == (1, x.ndim - 1):
        return g.node("Flatten", [source], name, y, axis=1)
    return g.reshape(source, x, y, f"layer {name!r} (Flatten)")


def _dropout(g: GraphBuilder, m: nn.Dropout, name: str, source: str, x: Tensor,
             y: Tensor) -> str:
    ratio = g.initializer(f"{name}.ratio", np.array(m.get_config()["p"], dtype=g.dtype))
    return g.node("Dropout", [source, ratio], name, y)


def _identity(g: GraphBuilder, m: nn.Identity, name: str, source: str, x: Tensor,
              y: Tensor) -> str:
    return source


#: The converter of each layer class, in the order :data:`SUPPORTED_LAYERS` lists them.
CONVERTERS: dict[type[nn.Module], LayerConverter] = {
    nn.Conv2d: _conv2d, nn.ConvTranspose2d: _conv_transpose2d, nn.Linear: _linear,
    nn.MaxPool2d: max_pool2d, nn.AvgPool2d: avg_pool2d, nn.AdaptiveAvgPool2d: adaptive_avg_pool2d,
    nn.BatchNorm1d: _batch_norm, nn.BatchNorm2d: _batch_norm, nn.ReLU: _elementwise("Relu"),
    nn.LeakyReLU: _leaky_relu, nn.Tanh: _elementwise("Tanh"), nn.Sigmoid: _elementwise("Sigmoid"),
    nn.Softmax: _softmax("Softmax"), nn.LogSoftmax: _softmax("LogSoftmax"), nn.Flatten: _flatten,
    nn.Dropout: _dropout, nn.Identity: _identity,
}
#: Leaf layers :func:`numcnn.onnx.export` converts.
SUPPORTED_LAYERS = tuple(layer.__name__ for layer in CONVERTERS)


def convert_layer(g: GraphBuilder, call: LayerCall) -> None:
    """Add the nodes of one traced layer call, after those of the values it receives."""
    module, name = call.module, call.name or type(call.module).__name__.lower()
    where = f"layer {name!r} ({type(module).__name__})"
    if len(call.args) != 1 or call.kwargs:
        raise OnnxExportError(f"export: {where} is called with {len(call.args)} positional "
                              f"and {len(call.kwargs)} keyword arguments; only one input "
                              "tensor per layer can be exported")
    if not isinstance(call.output, Tensor):
        raise OnnxExportError(f"export: {where} returns a {type(call.output).__name__}, not "
                              "one tensor (MaxPool2d(return_indices=True) cannot be exported)")
    x = call.args[0]
    source = g.resolve(x, where)
    g.keep.append(call.output)
    convert = CONVERTERS.get(type(module))
    if convert is None:
        raise OnnxExportError(
            f"export: {where} cannot be exported to ONNX; supported layers: "
            f"{', '.join(SUPPORTED_LAYERS)}")
    g.known[id(call.output)] = convert(g, module, name, source, x, call.output)
