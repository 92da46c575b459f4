"""Export a numcnn model to ONNX by tracing one forward pass.

The model runs once (in evaluation mode) on a small random batch while every leaf module (a
module without children: ``Conv2d``, ``ReLU``, ...) records its input and output tensors
through a forward hook (so a leaf must be called as ``layer(x)``: ``layer.forward(x)`` runs no
hook, as in PyTorch).
Containers and custom models with a Python ``forward`` (``LeNet5``, ``ConvNet``) need nothing
special: whatever their ``forward`` does, the leaf calls come out in execution order, and the
tensors that link them tell how they connect. A tensor reaching a layer that no recorded layer
produced was computed in the ``forward`` itself; the autograd graph behind it is followed back
to recorded tensors, and the operations met on the way are exported too: reshapes
(``x.flatten(1)``, ``x.reshape(...)``) as ``Flatten``/``Reshape``, ``x.relu()``, ``x.tanh()``,
``x.sigmoid()``, and ``+ - * /`` (with a constant or a parameter stored as an initializer).
Anything else raises :class:`OnnxExportError` naming the operation.

With a dynamic batch (the default) the model is traced twice, with batches of 2 and 3, and
both graphs must agree: a model whose graph depends on the batch size cannot be exported with a
symbolic batch axis ``"N"``.

Layers and the ONNX operators they become:

=====================  ==========================================================
numcnn layer           ONNX operator (attributes)
=====================  ==========================================================
Conv2d                 Conv (strides, pads incl. the asymmetric 'same' pads,
                       dilations, group)
ConvTranspose2d        ConvTranspose (strides, pads, dilations, group, output_padding)
Linear                 Gemm (transB=1) on 2-D input, MatMul + Add otherwise
MaxPool2d              MaxPool (kernel_shape, strides, pads, dilations), after a Pad of
                       -inf when a pad reaches the kernel size (dilated windows)
AvgPool2d              AveragePool (kernel_shape, strides, pads, count_include_pad),
                       after a Pad for ceil_mode with count_include_pad and padding
AdaptiveAvgPool2d      GlobalAveragePool, or AveragePool when the sizes divide
BatchNorm1d/2d         BatchNormalization (running statistics, epsilon, momentum)
ReLU, LeakyReLU        Relu, LeakyRelu (alpha)
Tanh, Sigmoid          Tanh, Sigmoid
Softmax, LogSoftmax    Softmax, LogSoftmax (axis)
Flatten                Flatten (axis=1), or Reshape
Dropout                Dropout (ratio kept; the identity at inference)
Identity               nothing
=====================  ==========================================================

``ceil_mode`` is written as explicit extra padding at the end (ONNX ``ceil_mode=0``): the
output size is then the same under every reading of the ONNX rules (PyTorch drops a last window
that would start in the right padding; ONNX shape inference does not), and the file passes
``onnx.checker.check_model(..., full_check=True)``.

Parameters become initializers named after the state dict (``conv1.weight``, ``bn.running_var``),
so the file maps back onto the model (:func:`numcnn.onnx.load` reads it).
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass

import numpy as np

from .. import autograd as _autograd
from .. import nn
from .._version import __version__
from ..autograd import Tensor
from ..ops.shapes import conv_padding, pair, pool_geometry

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "SUPPORTED_LAYERS", "OnnxExportError", "export"]

#: The opset :func:`export` writes unless told otherwise.
DEFAULT_OPSET = 17
#: The oldest opset supported (``Softmax``/``LogSoftmax`` along one axis need 13).
MIN_OPSET = 13
#: Leaf layers :func:`export` converts.
SUPPORTED_LAYERS = ("Conv2d", "ConvTranspose2d", "Linear", "MaxPool2d", "AvgPool2d",
                    "AdaptiveAvgPool2d",
                    "BatchNorm1d", "BatchNorm2d", "ReLU", "LeakyReLU", "Tanh", "Sigmoid",
                    "Softmax", "LogSoftmax", "Flatten", "Dropout", "Identity")
_ELEMENTWISE = {"Relu": "Relu", "Tanh": "Tanh", "Sigmoid": "Sigmoid"}
_BINARY = ("Add", "Sub", "Mul", "Div")


class OnnxExportError(ValueError):
    """The model cannot be written as ONNX; the message names the layer or operation."""


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install 'numcnn[onnx]' "
                          "(or pip install onnx)") from None
    return onnx


# --- tracing -----------------------------------------------------------------------------------

@dataclass
class _Call:
    """One leaf module call seen while tracing."""

    name: str
    module: nn.Module
    args: tuple
    kwargs: dict
    output: object


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, module) for name, module in model.named_modules()
            if not any(child is not None for child in module._modules.values())]


def _trace(model: nn.Module, x: Tensor) -> tuple[list[_Call], object]:
    """Run ``model(x)`` in evaluation mode with autograd recording, logging each leaf call.

    A forward hook on every leaf records its calls for the duration of this run only; the
    hooks are removed and the modes restored afterwards.
    """
    calls: list[_Call] = []
    handles = []
    modes = [(module, module.training) for module in model.modules()]
    grad_was = _autograd._grad_enabled

    def recorder(name: str):
        def hook(module, args, kwargs, output):
            calls.append(_Call(name, module, args, kwargs, output))
        return hook

    try:
        model.train(False)
        for name, module in _leaves(model):
            # first in line: it records what the layer itself computed; what a user's hook
            # makes of it is then an autograd operation on that output, followed like any other
            handles.append(module.register_forward_hook(recorder(name), prepend=True,
                                                        with_kwargs=True))
        _autograd._grad_enabled = True
        output = model(x)
    finally:
        _autograd._grad_enabled = grad_was
        for handle in handles:
            handle.remove()
        for module, mode in modes:
            object.__setattr__(module, "training", mode)
    return calls, output


# --- graph building ----------------------------------------------------------------------------

class _GraphBuilder:
    """Turns one trace into ONNX nodes, initializers and value infos."""

    def __init__(self, onnx, model: nn.Module, x: Tensor, batch: int, dynamic: bool,
                 input_name: str, output_name: str):
        self.onnx, self.helper = onnx, onnx.helper
        self.batch, self.dynamic = batch, dynamic
        self.dtype = x.dtype
        self.elem = onnx.helper.np_dtype_to_tensor_dtype(x.dtype)
        self.nodes: list = []
        self.initializers: dict[str, object] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.names: set[str] = {input_name, output_name}
        self.known: dict[int, str] = {id(x): input_name}
        self.keep: list = [x]                      # keep traced tensors alive: ids stay unique
        self.input_name, self.output_name = input_name, output_name
        self.param_names = {id(p): name for name, p in model.named_parameters()}
        self.model_name = type(model).__name__

    # names and bookkeeping
    def unique(self, base: str) -> str:
        base = base or "value"
        name, k = base, 1
        while name in self.names:
            name, k = f"{base}_{k}", k + 1
        self.names.add(name)
        return name

    def initializer(self, name: str, array: np.ndarray) -> str:
        if name not in self.initializers:
            self.initializers[name] = self.onnx.numpy_helper.from_array(
                np.require(array, requirements="C"), name)
            self.names.add(name)
        return name

    def node(self, op: str, inputs: list[str], base: str, tensor, **attrs) -> str:
        """Add a node producing one output (named after ``base``), shaped like ``tensor``."""
        out = self.unique(base)
        self.nodes.append(self.helper.make_node(op, inputs, [out], name=out, **attrs))
        self.record(out, tensor)
        return out

    def record(self, name: str, tensor) -> None:
        """Remember the traced shape of value ``name`` (``tensor``: a Tensor or a shape)."""
        shape = tuple(tensor.shape) if hasattr(tensor, "shape") else tuple(tensor)
        if self.dynamic and (not shape or shape[0] != self.batch):
            raise OnnxExportError(
                f"export: the value {name!r} of {self.model_name} has shape {shape}, whose first "
                f"axis is not the batch (of size {self.batch} while tracing); only models that "
                "keep the batch axis first can be exported")
        self.shapes[name] = shape

    # values computed between layers
    def resolve(self, t, where: str) -> str:
        """The ONNX name of traced tensor ``t``, exporting the operations that made it."""
        if id(t) in self.known:
            return self.known[id(t)]
        if not isinstance(t, Tensor):
            raise OnnxExportError(f"export: {where} receives a {type(t).__name__}, not a tensor "
                                  "computed from the model input")
        op = t._op
        if not t._parents:
            raise OnnxExportError(
                f"export: {where} receives a tensor of shape {t.shape} that is not computed from "
                f"the model input (made in the forward of {self.model_name} outside autograd)")
        self.keep.append(t)
        if op == "Reshape":
            name = self.reshape(self.resolve(t._parents[0], where), t._parents[0], t, where)
        elif op in _ELEMENTWISE:
            name = self.node(_ELEMENTWISE[op], [self.resolve(t._parents[0], where)],
                             op.lower(), t)
        elif op in _BINARY and len(t._parents) == 2:
            inputs = [self.operand(p, where) for p in t._parents]
            name = self.node(op, inputs, op.lower(), t)
        else:
            raise OnnxExportError(
                f"export: the forward of {self.model_name} applies the operation {op!r} before "
                f"{where}; only reshape/flatten, relu, tanh, sigmoid and + - * / can be exported "
                "between layers (use a layer from numcnn.nn for anything else)")
        self.known[id(t)] = name
        return name

    def operand(self, t: Tensor, where: str) -> str:
        """A binary op's operand: a traced value, a parameter or a constant initializer."""
        if id(t) in self.known or t._parents:
            return self.resolve(t, where)
        self.keep.append(t)
        name = self.param_names.get(id(t)) or self.unique("constant")
        return self.initializer(name, np.asarray(t.data, dtype=self.dtype))

    def reshape(self, source: str, before: Tensor, after, where: str) -> str:
        in_shape, out_shape = tuple(before.shape), tuple(after.shape)
        if len(out_shape) == 2 and out_shape[0] == in_shape[0] == self.batch:
            return self.node("Flatten", [source], "flatten", after, axis=1)
        if out_shape and out_shape[0] == in_shape[0] == self.batch:
            target = [0] + list(out_shape[1:])       # 0: keep the (dynamic) batch size
        elif not self.dynamic:
            target = list(out_shape)
        else:
            raise OnnxExportError(
                f"export: a reshape from {in_shape} to {out_shape} before {where} mixes the batch "
                "axis with the others; export with a fixed batch_size")
        shape = self.initializer(self.unique("shape"), np.array(target, dtype=np.int64))
        return self.node("Reshape", [source, shape], "reshape", after)

    # layers
    def layer(self, call: _Call) -> None:
        module, name = call.module, call.name or type(call.module).__name__.lower()
        where = f"layer {name!r} ({type(module).__name__})"
        if len(call.args) != 1 or call.kwargs:
            raise OnnxExportError(f"export: {where} is called with {len(call.args)} positional "
                                  f"and {len(call.kwargs)} keyword arguments; only one input "
                                  "tensor per layer can be exported")
        if not isinstance(call.output, Tensor):
            raise OnnxExportError(f"export: {where} returns a {type(call.output).__name__}, not "
                                  "one tensor (MaxPool2d(return_indices=True) cannot be "
                                  "exported)")
        x = call.args[0]
        source = self.resolve(x, where)
        self.keep.append(call.output)
        convert = getattr(self, f"_{type(module).__name__}", None)
        if convert is None or type(module).__name__ not in SUPPORTED_LAYERS or \
                type(module) is not getattr(nn, type(module).__name__):
            raise OnnxExportError(
                f"export: {where} cannot be exported to ONNX; supported layers: "
                f"{', '.join(SUPPORTED_LAYERS)}")
        self.known[id(call.output)] = convert(module, name, source, x, call.output)

    def _Conv2d(self, m: nn.Conv2d, name, source, x, y):
        c = m.get_config()
        if c.get("padding_mode", "zeros") != "zeros":
            raise OnnxExportError(f"export: layer {name!r} (Conv2d) has padding_mode="
                                  f"{c['padding_mode']!r}; only 'zeros' is exported")
        (pt, pb), (pl, pr) = conv_padding(c["padding"], c["kernel_size"], c["stride"],
                                          c["dilation"])
        inputs = [source, self.initializer(f"{name}.weight", m.weight.data)]
        if m.bias is not None:
            inputs.append(self.initializer(f"{name}.bias", m.bias.data))
        return self.node("Conv", inputs, name, y, kernel_shape=list(c["kernel_size"]),
                         strides=list(c["stride"]), pads=[pt, pl, pb, pr],
                         dilations=list(c["dilation"]), group=c["groups"])

    def _ConvTranspose2d(self, m: nn.ConvTranspose2d, name, source, x, y):
        c = m.get_config()
        (ph, pw), (rh, rw) = c["padding"], c["output_padding"]
        inputs = [source, self.initializer(f"{name}.weight", m.weight.data)]
        if m.bias is not None:
            inputs.append(self.initializer(f"{name}.bias", m.bias.data))
        return self.node("ConvTranspose", inputs, name, y, kernel_shape=list(c["kernel_size"]),
                         strides=list(c["stride"]), pads=[ph, pw, ph, pw],
                         dilations=list(c["dilation"]), group=c["groups"],
                         output_padding=[rh, rw])

    def _Linear(self, m: nn.Linear, name, source, x, y):
        if x.ndim == 2:
            inputs = [source, self.initializer(f"{name}.weight", m.weight.data)]
            if m.bias is not None:
                inputs.append(self.initializer(f"{name}.bias", m.bias.data))
            return self.node("Gemm", inputs, name, y, transB=1)
        weight_t = self.initializer(f"{name}.weight_t", m.weight.data.T)
        if m.bias is None:
            return self.node("MatMul", [source, weight_t], name, y)
        product = self.node("MatMul", [source, weight_t], f"{name}.matmul", y)
        return self.node("Add", [product, self.initializer(f"{name}.bias", m.bias.data)],
                         name, y)

    def _window(self, c: dict, x):
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

    def _pad(self, name, source, x, begin, end, value) -> str:
        """A constant ``Pad`` node padding the last two axes of ``x``."""
        pads = self.initializer(self.unique(f"{name}.pads"), np.array(
            [0] * (x.ndim - 2) + list(begin) + [0] * (x.ndim - 2) + list(end), dtype=np.int64))
        fill = self.initializer(self.unique(f"{name}.pad_value"), np.array(value, self.dtype))
        shape = tuple(x.shape[:-2]) + tuple(n + b + e for n, b, e in
                                             zip(x.shape[-2:], begin, end))
        return self.node("Pad", [source, pads, fill], f"{name}.pad", shape)

    def _MaxPool2d(self, m: nn.MaxPool2d, name, source, x, y):
        c = m.get_config()
        kernel, strides, (ph, pw), (eh, ew) = self._window(c, x)
        window = {"kernel_shape": kernel, "strides": strides,
                  "dilations": list(pair(c["dilation"])), "ceil_mode": 0}
        if ph + eh < kernel[0] and pw + ew < kernel[1]:
            return self.node("MaxPool", [source], name, y, pads=[ph, pw, ph + eh, pw + ew],
                             **window)
        # pads of a kernel's size or more (dilated windows): pad with -inf first
        padded = self._pad(name, source, x, (ph, pw), (ph + eh, pw + ew), -np.inf)
        return self.node("MaxPool", [padded], name, y, pads=[0, 0, 0, 0], **window)

    def _AvgPool2d(self, m: nn.AvgPool2d, name, source, x, y):
        c = m.get_config()
        if c["divisor_override"] is not None:
            raise OnnxExportError(f"export: layer {name!r} (AvgPool2d) has divisor_override="
                                  f"{c['divisor_override']}, which ONNX AveragePool cannot "
                                  "express")
        kernel, strides, (ph, pw), (eh, ew) = self._window(c, x)
        window = {"kernel_shape": kernel, "strides": strides, "ceil_mode": 0}
        if (eh, ew) == (0, 0):
            return self.node("AveragePool", [source], name, y, pads=[ph, pw, ph, pw],
                             count_include_pad=int(c["count_include_pad"]), **window)
        if not c["count_include_pad"] or (ph, pw) == (0, 0):
            return self.node("AveragePool", [source], name, y, pads=[ph, pw, ph + eh, pw + ew],
                             count_include_pad=0, **window)
        # ceil_mode counting the padding but not the overhang: pad with zeros first, then
        # average over the windows, excluding only the overhang from the divisor
        padded = self._pad(name, source, x, (ph, pw), (ph, pw), 0.0)
        return self.node("AveragePool", [padded], name, y, pads=[0, 0, eh, ew],
                         count_include_pad=0, **window)

    def _AdaptiveAvgPool2d(self, m: nn.AdaptiveAvgPool2d, name, source, x, y):
        (H, W), (oh, ow) = x.shape[-2:], y.shape[-2:]
        if (oh, ow) == (1, 1):
            return self.node("GlobalAveragePool", [source], name, y)
        if H % oh or W % ow or x.ndim != 4:
            raise OnnxExportError(
                f"export: layer {name!r} (AdaptiveAvgPool2d) pools {H}x{W} to {oh}x{ow}; only "
                "output sizes dividing the input size (or 1) can be exported")
        kh, kw = H // oh, W // ow
        return self.node("AveragePool", [source], name, y, kernel_shape=[kh, kw],
                         strides=[kh, kw])

    def _batch_norm(self, m, name, source, x, y):
        c = m.get_config()
        if not c["track_running_stats"]:
            raise OnnxExportError(f"export: layer {name!r} ({type(m).__name__}) has "
                                  "track_running_stats=False; only running statistics export")
        n = c["num_features"]
        weight = m.weight.data if m.weight is not None else np.ones(n, self.dtype)
        bias = m.bias.data if m.bias is not None else np.zeros(n, self.dtype)
        inputs = [source, self.initializer(f"{name}.weight", weight),
                  self.initializer(f"{name}.bias", bias),
                  self.initializer(f"{name}.running_mean", m.running_mean),
                  self.initializer(f"{name}.running_var", m.running_var)]
        momentum = 0.9 if c["momentum"] is None else 1.0 - float(c["momentum"])
        return self.node("BatchNormalization", inputs, name, y, epsilon=float(c["eps"]),
                         momentum=momentum)

    _BatchNorm1d = _BatchNorm2d = _batch_norm

    def _ReLU(self, m, name, source, x, y):
        return self.node("Relu", [source], name, y)

    def _LeakyReLU(self, m, name, source, x, y):
        return self.node("LeakyRelu", [source], name, y,
                         alpha=float(m.get_config()["negative_slope"]))

    def _Tanh(self, m, name, source, x, y):
        return self.node("Tanh", [source], name, y)

    def _Sigmoid(self, m, name, source, x, y):
        return self.node("Sigmoid", [source], name, y)

    def _Softmax(self, m, name, source, x, y):
        dim = m.get_config()["dim"]
        return self.node("Softmax", [source], name, y, axis=-1 if dim is None else dim)

    def _LogSoftmax(self, m, name, source, x, y):
        dim = m.get_config()["dim"]
        return self.node("LogSoftmax", [source], name, y, axis=-1 if dim is None else dim)

    def _Flatten(self, m, name, source, x, y):
        c = m.get_config()
        if (c["start_dim"] % x.ndim, c["end_dim"] % x.ndim) == (1, x.ndim - 1):
            return self.node("Flatten", [source], name, y, axis=1)
        return self.reshape(source, x, y, f"layer {name!r} (Flatten)")

    def _Dropout(self, m, name, source, x, y):
        ratio = self.initializer(f"{name}.ratio", np.array(m.get_config()["p"], dtype=self.dtype))
        return self.node("Dropout", [source, ratio], name, y)

    def _Identity(self, m, name, source, x, y):
        return source

    # the whole graph
    def graph(self, calls: list[_Call], output) -> object:
        for call in calls:
            self.layer(call)
        if not isinstance(output, Tensor):
            raise OnnxExportError(f"export: {self.model_name} returns a "
                                  f"{type(output).__name__}; only models returning one tensor "
                                  "can be exported")
        last = self.resolve(output, "the model output")
        if last == self.input_name:
            self.nodes.append(self.helper.make_node("Identity", [last], [self.output_name],
                                                    name=self.output_name))
        else:
            for node in self.nodes:           # rename the last value to the output name
                node.output[:] = [self.output_name if o == last else o for o in node.output]
                node.input[:] = [self.output_name if i == last else i for i in node.input]
                if node.name == last:
                    node.name = self.output_name
        if last != self.input_name:
            self.shapes.pop(last, None)
        self.record(self.output_name, output)

        def value(name: str):
            shape = self.shapes[name]
            dims = ["N" if self.dynamic else shape[0]] + list(shape[1:])
            return self.helper.make_tensor_value_info(name, self.elem, dims)

        inputs = [value(self.input_name)]
        outputs = [value(self.output_name)]
        infos = [value(n) for n in self.shapes if n not in (self.input_name, self.output_name)]
        return self.helper.make_graph(self.nodes, "numcnn", inputs, outputs,
                                      list(self.initializers.values()), value_info=infos)


def _build(onnx, model, sample_shape, batch, dynamic, dtype, input_name, output_name, seed):
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal((batch,) + sample_shape).astype(dtype), requires_grad=True)
    builder = _GraphBuilder(onnx, model, x, batch, dynamic, input_name, output_name)
    builder.record(input_name, x)
    calls, output = _trace(model, x)
    return builder.graph(calls, output)


def _check_shape(input_shape, model) -> tuple[int, ...]:
    if input_shape is None:
        arch, config = getattr(model, "arch", None), getattr(model, "config", None)
        if isinstance(arch, str) and isinstance(config, dict):
            from ..models import input_size

            return tuple(input_size(arch, **config))
        raise TypeError(f"export: input_shape is needed for {type(model).__name__} (the shape "
                        "of one sample without the batch axis, e.g. (1, 28, 28))")
    shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else (input_shape,)
    if not shape or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool)
                            and d >= 1 for d in shape):
        raise ValueError(f"export: input_shape must be positive ints, the shape of one sample "
                         f"without the batch axis (e.g. (1, 28, 28)), got {input_shape!r}")
    return tuple(int(d) for d in shape)


def export(model: nn.Module, input_shape=None, path=None, opset: int = DEFAULT_OPSET, *,
           batch_size: int | None = None, dtype=None, input_name: str = "input",
           output_name: str = "output", check: bool = True):
    """Write ``model`` as an ONNX file for inference (evaluation mode).

    Parameters
    ----------
    model : numcnn.nn.Module
        Any model built from the layers in :data:`SUPPORTED_LAYERS` (custom ``forward``
        methods included; see the module docstring). Its training flags are left unchanged.
    input_shape : tuple of int, optional
        The shape of one sample, without the batch axis: ``(1, 32, 32)`` for LeNet-5. Defaults
        to the registry's input size for models with ``arch`` and ``config``.
    path : str or os.PathLike, optional
        Where to write the file; with None, only the ``onnx.ModelProto`` is returned.
    opset : int, default 17
        The ONNX opset, from 13 to the newest the installed ``onnx`` knows.
    batch_size : int, optional
        Fix the batch size; by default the batch axis is symbolic (``"N"``).
    dtype : float32 or float64, optional
        The graph's floating type; by default the model's. (ONNX Runtime's CPU convolution
        runs float32 only: export a float64 model with ``dtype=np.float32`` for it.)
    input_name, output_name : str
        Names of the graph's input and output.
    check : bool, default True
        Run ``onnx.checker.check_model`` (with full shape inference) on the result.

    Returns
    -------
    onnx.ModelProto

    Raises
    ------
    OnnxExportError
        (a ``ValueError``) naming the layer or operation that ONNX export does not support.
    ImportError
        When the ``onnx`` package is missing (``pip install 'numcnn[onnx]'``).

    Examples
    --------
    >>> from numcnn import models
    >>> from numcnn.onnx import export
    >>> proto = export(models.lenet5(), (1, 32, 32))          # doctest: +SKIP
    >>> [node.op_type for node in proto.graph.node][:3]       # doctest: +SKIP
    ['Conv', 'Tanh', 'AveragePool']
    """
    onnx = _onnx()
    if not isinstance(model, nn.Module):
        raise TypeError(f"export: model must be a numcnn.nn.Module, got {type(model).__name__}")
    sample_shape = _check_shape(input_shape, model)
    newest = onnx.defs.onnx_opset_version()
    if not isinstance(opset, (int, np.integer)) or isinstance(opset, bool) or \
            not MIN_OPSET <= opset <= newest:
        raise ValueError(f"export: opset must be an int from {MIN_OPSET} to {newest} (the "
                         f"newest the installed onnx knows), got {opset!r}")
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer))
                                   or isinstance(batch_size, bool) or batch_size < 1):
        raise ValueError(f"export: batch_size must be a positive int or None (a dynamic batch), "
                         f"got {batch_size!r}")
    if not input_name or not output_name or input_name == output_name:
        raise ValueError(f"export: input_name and output_name must be two different non-empty "
                         f"names, got {input_name!r} and {output_name!r}")
    params = [p for p in model.parameters() if np.issubdtype(p.dtype, np.floating)]
    own = params[0].dtype if params else np.dtype(np.float32)
    if dtype is None:
        dtype = own
    else:
        requested = dtype
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            dtype = None
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"export: dtype must be float32, float64 or None (the model's), "
                             f"got {requested!r}")
        if dtype != own:
            model = copy.deepcopy(model).to(dtype)
    names = (input_name, output_name)
    if batch_size is None:
        graph = _build(onnx, model, sample_shape, 2, True, dtype, *names, seed=0)
        again = _build(onnx, model, sample_shape, 3, True, dtype, *names, seed=1)
        if graph.SerializeToString() != again.SerializeToString():
            raise OnnxExportError(
                f"export: the graph of {type(model).__name__} depends on the batch size (traces "
                "with batches of 2 and 3 differ); export it with a fixed batch_size")
    else:
        graph = _build(onnx, model, sample_shape, int(batch_size), False, dtype, *names, seed=0)
    helper = onnx.helper
    opsets = [helper.make_opsetid("", int(opset))]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="numcnn",
                              ir_version=helper.find_min_ir_version_for(opsets))
    proto.producer_version = __version__
    proto.doc_string = (f"{type(model).__name__} exported by numcnn: input {input_name!r} of "
                        f"shape ({'N' if batch_size is None else batch_size}, "
                        f"{', '.join(map(str, sample_shape))}), evaluation mode")
    arch, config = getattr(model, "arch", None), getattr(model, "config", None)
    if isinstance(arch, str) and isinstance(config, dict):
        helper.set_model_props(proto, {"numcnn.arch": arch, "numcnn.config": json.dumps(config)})
    if check:
        onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        from ..atomic import write_bytes

        write_bytes(path, proto.SerializeToString())  # atomic: a full disk keeps the old file
    return proto
