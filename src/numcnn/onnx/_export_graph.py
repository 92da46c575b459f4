"""The bookkeeping of the ONNX graph :func:`numcnn.onnx.export` builds from one trace.

:class:`GraphBuilder` hands out unique value names, stores initializers, remembers the traced
shape of every value, exports the operations a ``forward`` applies between layers (reshapes,
``relu``/``tanh``/``sigmoid``, ``+ - * /``) and finally assembles the graph. The converters of
the layers themselves (:mod:`numcnn.onnx._export_layers`) add their nodes through it.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import nn
from ..autograd import Tensor

__all__ = ["GraphBuilder", "OnnxExportError"]

#: Autograd operations between layers that become one ONNX node of the same meaning.
_ELEMENTWISE = {"Relu": "Relu", "Tanh": "Tanh", "Sigmoid": "Sigmoid"}
_BINARY = ("Add", "Sub", "Mul", "Div")


class OnnxExportError(ValueError):
    """The model cannot be written as ONNX; the message names the layer or operation."""


class GraphBuilder:
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

    # --- names and bookkeeping -------------------------------------------------------------

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

    # --- values computed between layers ----------------------------------------------------

    def resolve(self, t, where: str) -> str:
        """The ONNX name of traced tensor ``t``, exporting the operations that made it."""
        if id(t) in self.known:
            return self.known[id(t)]
        if not isinstance(t, Tensor):
            raise OnnxExportError(f"export: {where} receives a {type(t).__name__}, not a tensor "
                                  "computed from the model input")
        if not t._parents:
            raise OnnxExportError(
                f"export: {where} receives a tensor of shape {t.shape} that is not computed from "
                f"the model input (made in the forward of {self.model_name} outside autograd)")
        self.keep.append(t)
        name = self._operation(t, where)
        self.known[id(t)] = name
        return name

    def _operation(self, t: Tensor, where: str) -> str:
        """The node(s) of the autograd operation that made ``t`` (its inputs resolved first)."""
        op = t._op
        if op == "Reshape":
            return self.reshape(self.resolve(t._parents[0], where), t._parents[0], t, where)
        if op in _ELEMENTWISE:
            return self.node(_ELEMENTWISE[op], [self.resolve(t._parents[0], where)],
                             op.lower(), t)
        if op in _BINARY and len(t._parents) == 2:
            inputs = [self.operand(p, where) for p in t._parents]
            return self.node(op, inputs, op.lower(), t)
        raise OnnxExportError(
            f"export: the forward of {self.model_name} applies the operation {op!r} before "
            f"{where}; only reshape/flatten, relu, tanh, sigmoid and + - * / can be exported "
            "between layers (use a layer from numcnn.nn for anything else)")

    def operand(self, t: Tensor, where: str) -> str:
        """A binary op's operand: a traced value, a parameter or a constant initializer."""
        if id(t) in self.known or t._parents:
            return self.resolve(t, where)
        self.keep.append(t)
        name = self.param_names.get(id(t)) or self.unique("constant")
        return self.initializer(name, np.asarray(t.data, dtype=self.dtype))

    def reshape(self, source: str, before: Tensor, after, where: str) -> str:
        """A ``Flatten`` or ``Reshape`` node turning ``before``'s shape into ``after``'s."""
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

    # --- the whole graph -------------------------------------------------------------------

    def finish(self, output) -> Any:
        """The ``onnx.GraphProto`` whose output is the model's traced ``output``."""
        if not isinstance(output, Tensor):
            raise OnnxExportError(f"export: {self.model_name} returns a "
                                  f"{type(output).__name__}; only models returning one tensor "
                                  "can be exported")
        self._name_output(self.resolve(output, "the model output"))
        self.record(self.output_name, output)
        inputs = [self._value_info(self.input_name)]
        outputs = [self._value_info(self.output_name)]
        infos = [self._value_info(n) for n in self.shapes
                 if n not in (self.input_name, self.output_name)]
        return self.helper.make_graph(self.nodes, "numcnn", inputs, outputs,
                                      list(self.initializers.values()), value_info=infos)

    def _name_output(self, last: str) -> None:
        """Give value ``last`` the graph's output name (through an Identity node when it is
        the graph's input)."""
        if last == self.input_name:
            self.nodes.append(self.helper.make_node("Identity", [last], [self.output_name],
                                                    name=self.output_name))
            return
        for node in self.nodes:
            node.output[:] = [self.output_name if o == last else o for o in node.output]
            node.input[:] = [self.output_name if i == last else i for i in node.input]
            if node.name == last:
                node.name = self.output_name
        self.shapes.pop(last, None)

    def _value_info(self, name: str) -> Any:
        """The value info of ``name``: its traced shape, with ``"N"`` for a dynamic batch."""
        shape = self.shapes[name]
        dims = ["N" if self.dynamic else shape[0]] + list(shape[1:])
        return self.helper.make_tensor_value_info(name, self.elem, dims)
