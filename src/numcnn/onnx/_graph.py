"""The ONNX graph as :func:`numcnn.onnx.load` reads it: nodes, constants, known shapes.

The decoding of the protobuf messages is here: attributes, constant tensors, the shapes ONNX's
shape inference finds; and the error that names a node. The ``onnx`` package is imported inside
the functions, so that ``import numcnn.onnx`` works without it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

if TYPE_CHECKING:
    from types import ModuleType

    from onnx import ModelProto, NodeProto

__all__ = ["STANDARD_DOMAINS", "Graph", "OnnxImportError", "Shape", "attributes",
           "constant_value", "fail", "import_onnx", "pads_attribute", "read_graph", "short_float",
           "text_attribute", "where"]

#: The names of the standard operator set (the empty name is the default).
STANDARD_DOMAINS = ("", "ai.onnx")

#: A static shape: a size per axis, None where it is known only at run time (the batch size).
Shape = list[int | None]


class OnnxImportError(ValueError):
    """The ONNX file uses something numcnn cannot rebuild; the message names the node."""


def import_onnx() -> ModuleType:
    """The ``onnx`` package, or an ImportError that says how to install it."""
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX import needs the onnx package: pip install 'numcnn[onnx]' "
                          "(or pip install onnx)") from None
    return onnx


def where(node: NodeProto) -> str:
    """The node as error messages name it: ``node 'conv1' (Conv)``, or ``a Conv node``."""
    if node.name:
        return f"node {node.name!r} ({node.op_type})"
    article = "an" if node.op_type[:1] in "AEIOU" else "a"
    return f"{article} {node.op_type} node"


def fail(node: NodeProto, message: str) -> NoReturn:
    raise OnnxImportError(f"load: {where(node)}: {message}")


def attributes(node: NodeProto) -> dict[str, Any]:
    """The node's attributes by name, as Python values (ints, floats, lists, bytes, tensors)."""
    from onnx.helper import get_attribute_value

    return {a.name: get_attribute_value(a) for a in node.attribute}


#: The attributes of the operators numcnn reads that ONNX defines as flags, 0 or 1 (the
#: schemas type them only as ints, and the converters read them as bools).
_FLAGS = {"Add": ("broadcast",), "AveragePool": ("ceil_mode", "count_include_pad"),
          "BatchNormalization": ("is_test", "spatial", "training_mode"), "Cast": ("saturate",),
          "Dropout": ("is_test",), "Gemm": ("broadcast", "transA", "transB"),
          "MaxPool": ("ceil_mode", "storage_order"), "Reshape": ("allowzero",)}


def check_attributes(node: NodeProto, opset: int) -> None:
    """Refuse an attribute of the wrong type (``strides`` given as floats or as one int), one
    the operator does not take, or a required one left out, as ONNX's schema of ``opset`` has
    them, and a flag other than 0 or 1: the converters can then read every attribute as the
    type the schema gives it. Operators without a schema are left to the converters, which
    refuse them by name."""
    from onnx import AttributeProto, defs

    try:
        schema = defs.get_schema(node.op_type, opset, node.domain)
    except defs.SchemaError:
        return
    expected = schema.attributes
    for attribute in node.attribute:
        if attribute.name not in expected:
            fail(node, f"has an attribute {attribute.name!r}, which {node.op_type} of opset "
                       f"{opset} does not take (it takes {', '.join(sorted(expected)) or 'none'})")
        want = expected[attribute.name].type
        if attribute.type != want:
            fail(node, f"attribute {attribute.name!r} is of type "
                       f"{AttributeProto.AttributeType.Name(attribute.type)}, expected "
                       f"{AttributeProto.AttributeType.Name(want)}")
        if attribute.name in _FLAGS.get(node.op_type, ()) and attribute.i not in (0, 1):
            fail(node, f"attribute {attribute.name!r} is {attribute.i}, expected 0 or 1")
    given = {a.name for a in node.attribute}
    missing = sorted(name for name, a in expected.items() if a.required and name not in given)
    if missing:
        fail(node, f"lacks the required attribute(s) {', '.join(missing)}")


def pads_attribute(node: NodeProto, attrs: dict[str, Any]) -> tuple[int, int, int, int]:
    """The ``pads`` of a 2-D operator (begin h, w, end h, w), zeros by default."""
    pads = tuple(int(v) for v in attrs.get("pads", (0, 0, 0, 0)))
    if len(pads) != 4:
        fail(node, f"pads {list(pads)} must have 4 values (begin and end of both axes)")
    return pads[0], pads[1], pads[2], pads[3]


def text_attribute(attrs: dict[str, Any], name: str, default: str) -> str:
    """A string attribute (``auto_pad``, ``mode``), which ONNX stores as bytes."""
    value = attrs.get(name, default)
    return value.decode() if isinstance(value, bytes) else str(value)


def short_float(value: Any) -> float:
    """A float32 attribute as the shortest decimal that rounds to it (0.2, not 0.2000000029)."""
    return float(str(np.float32(value)))


def constant_value(node: NodeProto) -> np.ndarray:
    """The value of a ``Constant`` node."""
    from onnx.numpy_helper import to_array

    attrs = attributes(node)
    if "value" in attrs:
        return to_array(attrs["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32),
                       ("value_int", np.int64), ("value_ints", np.int64)):
        if key in attrs:
            return np.array(attrs[key], dtype=dtype)
    fail(node, f"only tensor and numeric constants are supported, got {sorted(attrs)}")


@dataclass
class Graph:
    """What the file says: its nodes in order, its constants and the shapes of its values."""

    nodes: list[NodeProto]
    #: the names of the graph's one input and one output
    input: str
    output: str
    #: the version of the standard operator set, which changes some operators' meaning
    opset: int
    #: initializers, then each Constant node's output as the walk meets it
    constants: dict[str, np.ndarray]
    #: the shapes shape inference found, by value name
    shapes: dict[str, Shape]
    #: the dtype of the file's weights, which the layers take
    dtype: np.dtype

    def const(self, node: NodeProto, index: int, what: str) -> np.ndarray:
        """The constant that is input ``index`` of ``node`` (its ``what``)."""
        if index >= len(node.input) or not node.input[index]:
            fail(node, f"the {what} input is missing")
        name = node.input[index]
        if name not in self.constants:
            fail(node, f"the {what} {name!r} must be a constant (an initializer or a "
                       "Constant node)")
        return self.constants[name]

    def optional_const(self, node: NodeProto, index: int, what: str) -> np.ndarray | None:
        """Like :meth:`const`, None when the input is left out."""
        if index >= len(node.input) or not node.input[index]:
            return None
        return self.const(node, index, what)

    def param(self, array: Any) -> np.ndarray:
        """``array`` in the dtype of the model's parameters."""
        return np.asarray(array, dtype=self.dtype)

    def rank(self, name: str) -> int | None:
        shape = self.shapes.get(name)
        return None if shape is None else len(shape)

    def producer(self, name: str) -> NodeProto | None:
        """The node that outputs the value ``name``."""
        return next((n for n in self.nodes if name in n.output), None)


def read_graph(proto: ModelProto) -> Graph:
    """The graph of ``proto``, refused unless it has exactly one input and one output."""
    from onnx.numpy_helper import to_array

    graph = proto.graph
    constants = {init.name: to_array(init) for init in graph.initializer}
    inputs = [v for v in graph.input if v.name not in constants]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise OnnxImportError(
            f"load: the graph has {len(inputs)} inputs and {len(graph.output)} outputs; "
            "numcnn reads models with exactly one input and one output")
    opset = next((o.version for o in proto.opset_import if o.domain in STANDARD_DOMAINS), 1)
    for node in graph.node:
        if node.domain in STANDARD_DOMAINS:
            check_attributes(node, opset)
    dtype = next((a.dtype for a in constants.values() if np.issubdtype(a.dtype, np.floating)),
                 np.dtype(np.float32))
    return Graph(nodes=list(graph.node), input=inputs[0].name, output=graph.output[0].name,
                 opset=opset, constants=constants, shapes=_inferred_shapes(proto), dtype=dtype)


def _inferred_shapes(proto: ModelProto) -> dict[str, Shape]:
    """The shape of every value whose rank ONNX's shape inference finds."""
    from onnx.shape_inference import infer_shapes

    try:
        inferred = infer_shapes(proto).graph
    except Exception:  # noqa: BLE001 -- shapes only help; a model may still load without
        inferred = proto.graph
    shapes = {}
    for value in list(inferred.value_info) + list(inferred.input) + list(inferred.output):
        if value.type.HasField("tensor_type") and value.type.tensor_type.HasField("shape"):
            shapes[value.name] = [d.dim_value if d.HasField("dim_value") else None
                                  for d in value.type.tensor_type.shape.dim]
    return shapes
