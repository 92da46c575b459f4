"""Import an ONNX CNN as a numcnn :class:`~numcnn.nn.Sequential`, to run, inspect or fine-tune.

The graph must be a chain: one input, one output, and every operator consumes the previous
operator's output plus constants (initializers or ``Constant`` nodes). Supported operators and
the layers they become:

=========================  ===================================================================
ONNX operator              numcnn layer
=========================  ===================================================================
Conv (2-D)                 Conv2d (symmetric pads, or the asymmetric pads of 'same'; auto_pad
                           VALID or SAME_UPPER at stride 1); a constant Add right after it
                           becomes its bias
ConvTranspose (2-D)        ConvTranspose2d (symmetric pads, output_padding, group, dilations;
                           no output_shape or auto_pad other than VALID)
Gemm                       Linear (transB 0 or 1, alpha and beta folded into the weights)
MatMul (+ Add)             Linear (the Add of a constant right after it becomes the bias)
MaxPool                    MaxPool2d (kernel_shape, strides, pads, dilations, ceil_mode)
AveragePool                AvgPool2d (kernel_shape, strides, pads, ceil_mode,
                           count_include_pad)
Pad (constant)             folded into the Conv (zeros), AveragePool (zeros) or MaxPool
                           (-inf) right after it; extra end padding of a pool becomes
                           ``ceil_mode=True`` when the output sizes say so
GlobalAveragePool          AdaptiveAvgPool2d(1)
BatchNormalization         BatchNorm2d (4-D input) or BatchNorm1d, in inference mode
Relu, LeakyRelu            ReLU, LeakyReLU(alpha)
Tanh, Sigmoid              Tanh, Sigmoid
Softmax, LogSoftmax        Softmax, LogSoftmax (axis)
Flatten (axis=1)           Flatten
Reshape to (N, -1)         Flatten (any 2-D target keeping the batch axis; the target may
                           be computed with Shape, Gather, Unsqueeze, Squeeze, Concat, Slice
                           and Cast, as ``x.view(x.size(0), -1)`` exports)
Dropout                    Dropout(ratio)
Identity                   nothing
=========================  ===================================================================

Layers are named ``'0'``, ``'1'``, ... as in ``torch.nn.Sequential``; the model comes back in
evaluation mode, in the dtype of the file's weights.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import nn
from ..ops.shapes import conv_padding, pool_output_size

__all__ = ["SUPPORTED_OPS", "OnnxImportError", "load"]

#: The ONNX operators :func:`load` reads.
SUPPORTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "MaxPool", "AveragePool",
                 "GlobalAveragePool",
                 "Pad", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast",
                 "BatchNormalization", "Relu", "LeakyRelu", "Tanh", "Sigmoid", "Softmax",
                 "LogSoftmax", "Flatten", "Reshape", "Dropout", "Identity", "Constant")


_SHAPE_OPS = ("Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast", "Identity")


class OnnxImportError(ValueError):
    """The ONNX file uses something numcnn cannot rebuild; the message names the node."""


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX import needs the onnx package: pip install 'numcnn[onnx]' "
                          "(or pip install onnx)") from None
    return onnx


def _short(value) -> float:
    """A float32 attribute as the shortest decimal that rounds to it (0.2, not 0.2000000029)."""
    return float(str(np.float32(value)))


class _Reader:
    """Walks the chain of nodes, turning each into a layer."""

    def __init__(self, onnx, proto):
        self.onnx = onnx
        self.helper, self.numpy_helper = onnx.helper, onnx.numpy_helper
        graph = proto.graph
        self.opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
                          1)
        self.constants = {init.name: self.numpy_helper.to_array(init)
                          for init in graph.initializer}
        inputs = [v for v in graph.input if v.name not in self.constants]
        if len(inputs) != 1 or len(graph.output) != 1:
            raise OnnxImportError(
                f"load: the graph has {len(inputs)} inputs and {len(graph.output)} outputs; "
                "numcnn reads models with exactly one input and one output")
        self.input, self.output = inputs[0].name, graph.output[0].name
        try:
            inferred = onnx.shape_inference.infer_shapes(proto).graph
        except Exception:  # noqa: BLE001 -- shapes only help; a model may still load without
            inferred = graph
        self.shapes = {}
        for value in list(inferred.value_info) + list(inferred.input) + list(inferred.output):
            if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape"):
                self.shapes[value.name] = [d.dim_value if d.HasField("dim_value") else None
                                           for d in value.type.tensor_type.shape.dim]
        self.nodes = list(graph.node)
        self.layers: list[nn.Module] = []
        self.current = self.input
        self.pending_pad = None
        self.shape_values: dict[str, tuple[list, bool]] = {}
        self.dtype = next((a.dtype for a in self.constants.values()
                           if np.issubdtype(a.dtype, np.floating)), np.dtype(np.float32))

    # helpers
    def where(self, node) -> str:
        return f"node {node.name!r} ({node.op_type})" if node.name else f"a {node.op_type} node"

    def fail(self, node, message: str):
        raise OnnxImportError(f"load: {self.where(node)}: {message}")

    def attrs(self, node) -> dict:
        return {a.name: self.helper.get_attribute_value(a) for a in node.attribute}

    def const(self, node, index: int, what: str, optional: bool = False):
        if index >= len(node.input) or not node.input[index]:
            if optional:
                return None
            self.fail(node, f"the {what} input is missing")
        name = node.input[index]
        if name not in self.constants:
            self.fail(node, f"the {what} {name!r} must be a constant (an initializer or a "
                            "Constant node)")
        return self.constants[name]

    def param(self, array) -> np.ndarray:
        return np.asarray(array, dtype=self.dtype)

    def rank(self, name: str) -> int | None:
        shape = self.shapes.get(name)
        return None if shape is None else len(shape)

    def add(self, node, layer: nn.Module) -> None:
        self.layers.append(layer)
        self.current = node.output[0]

    # the walk
    def read(self) -> list[nn.Module]:
        skip = set()
        for i, node in enumerate(self.nodes):
            if i in skip:
                continue
            if node.domain not in ("", "ai.onnx"):
                self.fail(node, f"operators of domain {node.domain!r} are not supported")
            if node.op_type == "Constant":
                self.constants[node.output[0]] = self.constant_value(node)
                continue
            if node.op_type == "Identity" and node.input[0] in self.constants:
                self.constants[node.output[0]] = self.constants[node.input[0]]
                continue
            if node.op_type in _SHAPE_OPS and self.shape_op(node):
                continue
            data = [name for name in node.input
                    if name and name not in self.constants and name not in self.shape_values]
            if data != [self.current] or node.input[0] != self.current:
                self.fail(node, f"it takes {list(node.input)}, but numcnn reads only chains of "
                                f"layers, each taking the previous output {self.current!r} "
                                "first and constants after it")
            convert = getattr(self, f"_{node.op_type}", None)
            if convert is None:
                self.fail(node, f"the operator is not supported; supported: "
                                f"{', '.join(SUPPORTED_OPS)}")
            if self.pending_pad is not None and node.op_type not in (
                    "Conv", "MaxPool", "AveragePool"):
                self.fail(self.pending_pad[3], "a Pad is supported only right before a Conv, "
                                               "MaxPool or AveragePool")
            convert(node, i, skip)
        if self.pending_pad is not None:
            self.fail(self.pending_pad[3], "a Pad is supported only right before a Conv, "
                                           "MaxPool or AveragePool")
        if self.current != self.output:
            raise OnnxImportError(f"load: the graph output {self.output!r} is not the end of "
                                  f"the chain of layers (which ends at {self.current!r})")
        return self.layers

    # shape computations (x.view(x.size(0), -1) exports as Shape, Gather, Unsqueeze, Concat)
    def shape_input(self, name: str):
        """``(items, is_scalar)`` of a constant or computed shape value, or None."""
        if name in self.shape_values:
            return self.shape_values[name]
        if name in self.constants and np.issubdtype(self.constants[name].dtype, np.integer):
            value = self.constants[name]
            return [int(v) for v in value.reshape(-1)], value.ndim == 0
        return None

    def shape_op(self, node) -> bool:
        """Evaluate a node of a shape computation; False when its inputs are not shapes.

        Shape values are lists of ints and of ``("dim", value name, axis)`` for sizes unknown
        until run time (the batch size).
        """
        a, op = self.attrs(node), node.op_type
        if op == "Shape":
            dims = self.shapes.get(node.input[0])
            if dims is None:
                return False
            items = [("dim", node.input[0], k) if d is None else int(d)
                     for k, d in enumerate(dims)]
            start, end = a.get("start", 0), a.get("end", len(items))
            self.shape_values[node.output[0]] = (items[start:end], False)
            return True
        inputs = [self.shape_input(name) if name else None for name in node.input]
        if not inputs or inputs[0] is None or any(
                v is None for v, name in zip(inputs, node.input) if name):
            return False
        (items, scalar), out = inputs[0], None
        if op in ("Cast", "Identity"):
            out = (items, scalar)
        elif op == "Gather" and not scalar and a.get("axis", 0) == 0:
            index, index_scalar = inputs[1]
            picked = [items[k] for k in index]
            out = (picked, index_scalar)
        elif op == "Unsqueeze" and scalar:
            out = (items, False)
        elif op == "Squeeze" and not scalar and len(items) == 1:
            out = (items, True)
        elif op == "Concat" and not any(v[1] for v in inputs):
            out = ([item for v in inputs for item in v[0]], False)
        elif op == "Slice" and not scalar and len(inputs) >= 3:
            start, end = inputs[1][0][0], inputs[2][0][0]
            step = inputs[4][0][0] if len(inputs) > 4 and inputs[4] else 1
            out = (items[slice(start, end, step)], False)
        if out is None:
            self.fail(node, "this shape computation is not supported")
        self.shape_values[node.output[0]] = out
        return True

    def constant_value(self, node) -> np.ndarray:
        attrs = self.attrs(node)
        if "value" in attrs:
            return self.numpy_helper.to_array(attrs["value"])
        for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                           ("value_int", np.int64), ("value_ints", np.int64)):
            if key in attrs:
                return np.array(attrs[key], dtype=dtype)
        self.fail(node, f"only tensor and numeric constants are supported, got {sorted(attrs)}")

    def next_bias_add(self, i: int, skip: set, shapes: tuple[tuple[int, ...], ...]):
        """``(bias, output name)`` when the node after node ``i`` is an ``Add`` of a constant of
        one of ``shapes`` to its output (a bias split off a Conv or a MatMul), else None."""
        produced = self.nodes[i].output[0]
        for j in range(i + 1, len(self.nodes)):
            node = self.nodes[j]
            if node.op_type == "Constant":
                continue
            others = [n for n in node.input if n != produced]
            if node.op_type != "Add" or len(node.input) != 2 or len(others) != 1 or \
                    others[0] not in self.constants and not self.is_constant_node(others[0]):
                return None
            bias = self.constants.get(others[0])
            if bias is None:
                bias = self.constant_value(self.producer(others[0]))
            if tuple(bias.shape) not in shapes:
                return None
            skip.add(j)
            return bias.reshape(-1), node.output[0]
        return None

    def producer(self, name: str):
        return next((n for n in self.nodes if name in n.output), None)

    def is_constant_node(self, name: str) -> bool:
        node = self.producer(name)
        return node is not None and node.op_type == "Constant"

    # operators
    def _Conv(self, node, i, skip):
        a = self.attrs(node)
        weight = self.const(node, 1, "weight")
        bias = self.const(node, 2, "bias", optional=True)
        if weight.ndim != 4:
            self.fail(node, f"only 2-D convolutions are supported (weight of shape "
                            f"{weight.shape})")
        c_out, c_in_g, kh, kw = weight.shape
        if tuple(a.get("kernel_shape", (kh, kw))) != (kh, kw):
            self.fail(node, f"kernel_shape {a['kernel_shape']} does not match the weight shape "
                            f"{weight.shape}")
        stride = tuple(a.get("strides", (1, 1)))
        dilation = tuple(a.get("dilations", (1, 1)))
        groups = int(a.get("group", 1))
        auto_pad = a.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        pads = tuple(int(v) for v in a.get("pads", (0, 0, 0, 0)))
        pre = self.take_pad(node, 0.0)
        if pre is not None:
            if auto_pad != "NOTSET":
                self.fail(node, f"a Pad before a convolution with auto_pad={auto_pad!r} is not "
                                "supported")
            pads = tuple(p + q for p, q in zip(pads, pre[0]))
        same = conv_padding("same", (kh, kw), (1, 1), dilation) if stride == (1, 1) else None
        if auto_pad == "VALID":
            padding = 0
        elif auto_pad == "SAME_UPPER" and same is not None:
            padding = "same"
        elif auto_pad != "NOTSET":
            self.fail(node, f"auto_pad={auto_pad!r} is supported only as VALID, or SAME_UPPER "
                            "with stride 1")
        elif pads[0] == pads[2] and pads[1] == pads[3]:
            padding = (int(pads[0]), int(pads[1]))
        elif same is not None and ((pads[0], pads[2]), (pads[1], pads[3])) == same:
            padding = "same"
        else:
            self.fail(node, f"asymmetric pads {list(pads)} are supported only as the 'same' "
                            "padding of a stride-1 convolution")
        node_out = node.output[0]
        if bias is None:
            found = self.next_bias_add(i, skip, ((c_out,), (c_out, 1, 1), (1, c_out, 1, 1)))
            if found is not None:
                bias, node_out = found
        conv = nn.Conv2d(c_in_g * groups, c_out, (kh, kw), stride=stride, padding=padding,
                         dilation=dilation, groups=groups, bias=bias is not None,
                         dtype=self.dtype)
        conv.weight.data[...] = self.param(weight)
        if bias is not None:
            conv.bias.data[...] = self.param(bias).reshape(-1)
        self.layers.append(conv)
        self.current = node_out

    def _ConvTranspose(self, node, i, skip):
        a = self.attrs(node)
        weight = self.const(node, 1, "weight")
        bias = self.const(node, 2, "bias", optional=True)
        if weight.ndim != 4:
            self.fail(node, f"only 2-D transposed convolutions are supported (weight of shape "
                            f"{weight.shape})")
        c_in, c_out_g, kh, kw = weight.shape
        if tuple(a.get("kernel_shape", (kh, kw))) != (kh, kw):
            self.fail(node, f"kernel_shape {a['kernel_shape']} does not match the weight shape "
                            f"{weight.shape}")
        auto_pad = a.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        if auto_pad not in ("NOTSET", "VALID") or "output_shape" in a:
            self.fail(node, "output_shape and auto_pad SAME_* are not supported (give explicit "
                            "pads and output_padding)")
        pads = tuple(int(v) for v in a.get("pads", (0, 0, 0, 0))) if auto_pad == "NOTSET" \
            else (0, 0, 0, 0)
        if pads[:2] != pads[2:]:
            self.fail(node, f"asymmetric pads {list(pads)} are not supported")
        node_out = node.output[0]
        groups = int(a.get("group", 1))
        if bias is None:
            found = self.next_bias_add(i, skip, ((c_out_g * groups,), (c_out_g * groups, 1, 1),
                                                 (1, c_out_g * groups, 1, 1)))
            if found is not None:
                bias, node_out = found
        try:
            layer = nn.ConvTranspose2d(
                c_in, c_out_g * groups, (kh, kw), stride=tuple(a.get("strides", (1, 1))),
                padding=pads[:2], output_padding=tuple(a.get("output_padding", (0, 0))),
                groups=groups, bias=bias is not None,
                dilation=tuple(a.get("dilations", (1, 1))), dtype=self.dtype)
        except (TypeError, ValueError) as err:
            self.fail(node, f"cannot build ConvTranspose2d: {err}")
        layer.weight.data[...] = self.param(weight)
        if bias is not None:
            layer.bias.data[...] = self.param(bias).reshape(-1)
        self.layers.append(layer)
        self.current = node_out

    def _linear(self, node, weight, bias, out_name):
        layer = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None,
                          dtype=self.dtype)
        layer.weight.data[...] = self.param(weight)
        if bias is not None:
            bias = np.asarray(bias)
            if bias.size == 1:
                bias = np.full(weight.shape[0], bias.reshape(()), dtype=self.dtype)
            if bias.size != weight.shape[0]:
                self.fail(node, f"the bias of shape {bias.shape} does not fit "
                                f"{weight.shape[0]} outputs")
            layer.bias.data[...] = self.param(bias).reshape(-1)
        self.layers.append(layer)
        self.current = out_name

    def _Gemm(self, node, i, skip):
        a = self.attrs(node)
        if a.get("transA", 0):
            self.fail(node, "transA=1 is not supported (the input must be (N, in))")
        b = self.const(node, 1, "B")
        c = self.const(node, 2, "C", optional=True)
        weight = (b if a.get("transB", 0) else b.T) * a.get("alpha", 1.0)
        bias = None if c is None else c * a.get("beta", 1.0)
        if bias is not None and bias.ndim == 2 and bias.shape[0] != 1:
            self.fail(node, f"a C of shape {bias.shape} (a per-row bias) is not supported")
        self._linear(node, weight, bias, node.output[0])

    def _MatMul(self, node, i, skip):
        if node.input[0] != self.current:
            self.fail(node, "only x @ W (the input first, a constant weight second) is supported")
        b = self.const(node, 1, "weight")
        if b.ndim != 2:
            self.fail(node, f"the weight must be 2-D (in, out), got shape {b.shape}")
        found = self.next_bias_add(i, skip, ((b.shape[1],), (1, b.shape[1])))
        bias, out_name = found if found is not None else (None, node.output[0])
        self._linear(node, b.T, bias, out_name)

    def _Add(self, node, i, skip):
        self.fail(node, "an Add is supported only as the bias right after a Conv or a MatMul")

    def _pool(self, node, cls):
        """The layer for a MaxPool or AveragePool node (and the Pad before it, if any)."""
        a = self.attrs(node)
        is_max = cls is nn.MaxPool2d
        auto_pad = a.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        if auto_pad not in ("NOTSET", "VALID"):
            self.fail(node, f"auto_pad={auto_pad!r} is not supported (give explicit pads)")
        if is_max and len(node.output) > 1 and node.output[1]:
            self.fail(node, "the Indices output is not supported")
        kernel = tuple(int(k) for k in a["kernel_shape"])
        if len(kernel) != 2:
            self.fail(node, f"only 2-D pooling is supported, got kernel_shape {list(kernel)}")
        stride = tuple(int(v) for v in a.get("strides", (1, 1)))
        dilation = tuple(int(v) for v in a.get("dilations", (1, 1)))
        if not is_max and dilation != (1, 1):
            self.fail(node, "dilated average pooling is not supported")
        ceil = bool(a.get("ceil_mode", 0))
        cip = bool(a.get("count_include_pad", 0))
        pads = tuple(int(v) for v in a.get("pads", (0,) * 4)) if auto_pad == "NOTSET" \
            else (0,) * 4
        pre = self.take_pad(node, -np.inf if is_max else 0.0)
        extra = {"dilation": dilation} if is_max else {}
        if pre is None and pads[:2] == pads[2:]:
            if not is_max:
                extra["count_include_pad"] = cip
            return self._build(node, cls, kernel_size=kernel, stride=stride, padding=pads[:2],
                               ceil_mode=ceil, **extra)
        # explicit padding (asymmetric pads, or a Pad node first): find the equal layer
        if ceil:
            self.fail(node, f"pads {list(pads)} with ceil_mode=1 are not supported")
        size = self.shapes.get(pre[1] if pre else self.current)
        if size is None or len(size) != 4 or None in size[2:]:
            self.fail(node, "asymmetric or separate padding needs the input height and width, "
                            "which shape inference could not find")
        size = size[2:]
        pre_pads = pre[0] if pre else (0, 0, 0, 0)
        if is_max:
            begin = [pre_pads[i] + pads[i] for i in (0, 1)]
            end = [pre_pads[i] + pads[i] for i in (2, 3)]
        elif pre is None:
            begin, end = list(pads[:2]), list(pads[2:])
            extra["count_include_pad"] = cip and (begin != [0, 0])
        else:
            if pads[:2] != (0, 0) or pre_pads[:2] != pre_pads[2:] or (cip and pads[2:] != (0, 0)):
                self.fail(node, f"a Pad of {list(pre_pads)} then pads {list(pads)} (with "
                                f"count_include_pad={int(cip)}) is not supported")
            begin = list(pre_pads[:2])
            end = [pre_pads[i] + pads[i] for i in (2, 3)]
            extra["count_include_pad"] = True
        wanted = [(n + b + e - d * (k - 1) - 1) // s + 1
                  for n, b, e, k, s, d in zip(size, begin, end, kernel, stride, dilation)]
        counted_overhang = not is_max and pre is None and cip and begin != end
        for ceil_mode in (False, True):
            got = [pool_output_size(n, k, s, b, d, ceil_mode)
                   for n, b, k, s, d in zip(size, begin, kernel, stride, dilation)]
            if got == wanted and not (ceil_mode and counted_overhang):
                return self._build(node, cls, kernel_size=kernel, stride=stride,
                                   padding=tuple(begin), ceil_mode=ceil_mode, **extra)
        self.fail(node, f"pads {begin} before and {end} after (input {list(size)}) match no "
                        "symmetric padding, with or without ceil_mode")

    def _build(self, node, cls, **kwargs):
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as err:
            self.fail(node, f"cannot build {cls.__name__}: {err}")

    def _MaxPool(self, node, i, skip):
        self.add(node, self._pool(node, nn.MaxPool2d))

    def _AveragePool(self, node, i, skip):
        self.add(node, self._pool(node, nn.AvgPool2d))

    def _Pad(self, node, i, skip):
        a = self.attrs(node)
        mode = a.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if mode != "constant":
            self.fail(node, f"only mode='constant' is supported, got {mode!r}")
        if self.opset >= 11:
            pads = [int(v) for v in self.const(node, 1, "pads").reshape(-1)]
            value = self.const(node, 2, "constant_value", optional=True)
            axes = self.const(node, 3, "axes", optional=True)
        else:
            pads, value, axes = [int(v) for v in a.get("pads", ())], a.get("value", 0.0), None
        rank = self.rank(self.current)
        if axes is not None:
            if rank is None:
                self.fail(node, "a Pad with axes needs a known input rank")
            full = [0] * (2 * rank)
            for j, axis in enumerate(int(v) % rank for v in np.reshape(axes, -1)):
                full[axis], full[rank + axis] = pads[j], pads[len(pads) // 2 + j]
            pads = full
        if len(pads) != 8 or any(pads[j] for j in (0, 1, 4, 5)) or min(pads) < 0:
            self.fail(node, f"only non-negative padding of the height and width of a 4-D input "
                            f"is supported, got pads {pads}")
        fill = 0.0 if value is None else float(np.reshape(value, -1)[0])
        self.pending_pad = ((pads[2], pads[3], pads[6], pads[7]), self.current, fill, node)
        self.current = node.output[0]

    def take_pad(self, node, fill: float):
        """``(pads, input name)`` of the Pad node just before ``node`` (cleared), or None."""
        pending, self.pending_pad = self.pending_pad, None
        if pending is None:
            return None
        pads, source, value, pad_node = pending
        ok = value == fill or (fill == -np.inf and value <= -np.finfo(np.float32).max)
        if not ok:
            self.fail(pad_node, f"a Pad with value {value} before {self.where(node)} is not "
                                f"supported (expected {fill})")
        return pads, source

    def _GlobalAveragePool(self, node, i, skip):
        if self.rank(self.current) not in (None, 4):
            self.fail(node, "only 4-D (N, C, H, W) input is supported")
        self.add(node, nn.AdaptiveAvgPool2d(1))

    def _BatchNormalization(self, node, i, skip):
        a = self.attrs(node)
        if a.get("training_mode", 0) or len([o for o in node.output if o]) > 1:
            self.fail(node, "only inference mode (one output, training_mode=0) is supported")
        scale, bias, mean, var = (self.const(node, k, what) for k, what in
                                  enumerate(("scale", "B", "mean", "var"), start=1))
        rank = self.rank(self.current)
        cls = nn.BatchNorm1d if rank in (2, 3) else nn.BatchNorm2d
        if rank not in (None, 2, 3, 4):
            self.fail(node, f"input of rank {rank} is not supported")
        momentum = round(1.0 - _short(a.get("momentum", 0.9)), 12)
        layer = cls(scale.size, eps=_short(a.get("epsilon", 1e-5)),
                    momentum=min(max(momentum, 0.0), 1.0), dtype=self.dtype)
        layer.weight.data[...] = self.param(scale)
        layer.bias.data[...] = self.param(bias)
        layer.running_mean[...] = self.param(mean)
        layer.running_var[...] = self.param(var)
        self.add(node, layer)

    def _Relu(self, node, i, skip):
        self.add(node, nn.ReLU())

    def _LeakyRelu(self, node, i, skip):
        self.add(node, nn.LeakyReLU(_short(self.attrs(node).get("alpha", 0.01))))

    def _Tanh(self, node, i, skip):
        self.add(node, nn.Tanh())

    def _Sigmoid(self, node, i, skip):
        self.add(node, nn.Sigmoid())

    def _softmax(self, node, cls):
        rank = self.rank(self.current)
        axis = int(self.attrs(node).get("axis", -1 if self.opset >= 13 else 1))
        if self.opset < 13 and rank is not None and axis % rank != rank - 1:
            self.fail(node, f"before opset 13, axis={axis} on a rank-{rank} input normalizes "
                            "over several axes, which is not supported")
        if self.opset < 13 and rank is None and axis != 1:
            self.fail(node, f"before opset 13, axis={axis} needs a known input rank")
        self.add(node, cls(dim=axis))

    def _Softmax(self, node, i, skip):
        self._softmax(node, nn.Softmax)

    def _LogSoftmax(self, node, i, skip):
        self._softmax(node, nn.LogSoftmax)

    def _Flatten(self, node, i, skip):
        axis = int(self.attrs(node).get("axis", 1))
        rank = self.rank(self.current)
        if axis != 1 and not (rank is not None and axis == 1 - rank):
            self.fail(node, f"only axis=1 (keeping the batch axis) is supported, got {axis}")
        self.add(node, nn.Flatten())

    def _Reshape(self, node, i, skip):
        shape_value = self.shape_input(node.input[1]) if len(node.input) > 1 else None
        if shape_value is None:
            self.fail(node, "the target shape must be a constant or computed from shapes")
        # a size read from the input's own batch axis is the same as 0 (keep that size)
        target = [0 if item == ("dim", self.current, 0) else item for item in shape_value[0]]
        if any(not isinstance(item, int) for item in target):
            self.fail(node, f"the target shape {target} depends on sizes known only at run "
                            "time other than the batch size")
        shape_in = self.shapes.get(self.current)
        rest = batch = None
        if shape_in is not None:
            batch = shape_in[0]
            if all(d is not None for d in shape_in[1:]):
                rest = int(np.prod(shape_in[1:]))
        ok = len(target) == 2 and (target[1] == -1 or target[1] == rest) and (
            target[0] == 0 or (batch is not None and target[0] == batch)
            or (target[0] == -1 and rest is not None and target[1] == rest))
        if not ok:
            self.fail(node, f"only a reshape to (N, -1) (a flatten keeping the batch axis) is "
                            f"supported, got shape {target} for an input of shape "
                            f"{'unknown' if shape_in is None else shape_in}")
        self.add(node, nn.Flatten())

    def _Dropout(self, node, i, skip):
        ratio = self.const(node, 1, "ratio", optional=True)
        p = _short(np.reshape(ratio, -1)[0] if ratio is not None
                   else self.attrs(node).get("ratio", 0.5))
        training = self.const(node, 2, "training_mode", optional=True)
        if training is not None and bool(training):
            self.fail(node, "training_mode=True is not supported")
        self.add(node, nn.Dropout(p))

    def _Identity(self, node, i, skip):
        self.current = node.output[0]


def load(source) -> nn.Sequential:
    """Build a numcnn model from an ONNX file, for inference or fine-tuning.

    Parameters
    ----------
    source : str, os.PathLike, bytes or onnx.ModelProto
        The ``.onnx`` file (or its bytes, or a loaded model).

    Returns
    -------
    numcnn.nn.Sequential
        The layers in graph order, named ``'0'``, ``'1'``, ..., with the file's weights, in
        evaluation mode (call ``.train()`` to fine-tune).

    Raises
    ------
    OnnxImportError
        (a ``ValueError``) naming the node whose operator or attributes numcnn cannot rebuild.
    ImportError
        When the ``onnx`` package is missing (``pip install 'numcnn[onnx]'``).

    Examples
    --------
    >>> import numcnn.onnx
    >>> model = numcnn.onnx.load("lenet5.onnx")               # doctest: +SKIP
    >>> model(images).shape                                     # doctest: +SKIP
    (64, 10)
    """
    onnx = _onnx()
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"load: {path} does not exist")
        try:
            proto = onnx.load_model(str(path))
        except Exception as err:  # noqa: BLE001 -- protobuf raises its own error types
            raise OnnxImportError(f"load: {path} is not a readable ONNX file: {err}") from None
    elif isinstance(source, (bytes, bytearray)):
        proto = onnx.load_model_from_string(bytes(source))
    elif isinstance(source, onnx.ModelProto):
        proto = source
    else:
        raise TypeError(f"load: expected a path, bytes or an onnx.ModelProto, got "
                        f"{type(source).__name__}")
    layers = _Reader(onnx, proto).read()
    return nn.Sequential(*layers).eval()
