"""Shape computations: the target of a ``Reshape`` computed from the input's own shape.

``x.view(x.size(0), -1)`` exports as ``Shape``, ``Gather``, ``Unsqueeze`` and ``Concat`` nodes
that compute ``[batch size, -1]`` at run time. :class:`ShapeValues` evaluates such nodes while
the graph is read, keeping sizes known only at run time symbolic, so that the Reshape converter
sees the target it needs.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ._graph import Graph, attributes, fail

if TYPE_CHECKING:
    from onnx import NodeProto

__all__ = ["SHAPE_OPS", "Dim", "ShapeValue", "ShapeValues"]

#: Operators that may compute a shape (Identity and Cast pass one on).
SHAPE_OPS = ("Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast", "Identity")

#: A size in a shape: an int, or ``("dim", value name, axis)`` for the size of that axis of
#: that value, known only at run time (the batch size).
Dim = int | tuple[str, str, int]


class ShapeValue(NamedTuple):
    """A computed 1-D shape (or, with ``scalar``, one of its sizes)."""

    items: list[Dim]
    scalar: bool


def _first_int(value: ShapeValue | None) -> int | None:
    """The first size of ``value`` when it is a known int (a Slice's start, end or step)."""
    if value is None or not value.items or not isinstance(value.items[0], int):
        return None
    return value.items[0]


def _passed_on(first: ShapeValue, rest: list[ShapeValue | None],
               attrs: dict[str, Any]) -> ShapeValue | None:
    return first


def _gather(first: ShapeValue, rest: list[ShapeValue | None],
            attrs: dict[str, Any]) -> ShapeValue | None:
    index = rest[0] if rest else None
    if first.scalar or attrs.get("axis", 0) != 0 or index is None:
        return None
    n = len(first.items)
    if not all(isinstance(k, int) and -n <= k < n for k in index.items):
        return None
    return ShapeValue([first.items[k] for k in index.items if isinstance(k, int)], index.scalar)


def _axes(attrs: dict[str, Any], rest: list[ShapeValue | None], position: int) -> list | None:
    """The ``axes`` of an Unsqueeze, Squeeze or Slice: the attribute (before opset 13) or the
    input at ``position`` after the data; None when neither is given."""
    if "axes" in attrs:
        return list(attrs["axes"])
    given = rest[position] if len(rest) > position else None
    return None if given is None else list(given.items)


def _only_axis_0(axes: list | None) -> bool:
    """A shape is 1-D (a size of it, 0-D, becomes 1-D): axis 0 (or -1) is the only one there."""
    return axes is None or axes in ([0], [-1])


def _unsqueeze(first: ShapeValue, rest: list[ShapeValue | None],
               attrs: dict[str, Any]) -> ShapeValue | None:
    axes = _axes(attrs, rest, 0)
    if not first.scalar or axes is None or not _only_axis_0(axes):
        return None
    return ShapeValue(first.items, False)


def _squeeze(first: ShapeValue, rest: list[ShapeValue | None],
             attrs: dict[str, Any]) -> ShapeValue | None:
    if first.scalar or len(first.items) != 1 or not _only_axis_0(_axes(attrs, rest, 0)):
        return None
    return ShapeValue(first.items, True)


def _concat(first: ShapeValue, rest: list[ShapeValue | None],
            attrs: dict[str, Any]) -> ShapeValue | None:
    parts = [first, *(v for v in rest if v is not None)]
    if any(part.scalar for part in parts) or attrs.get("axis") not in (0, -1):
        return None
    return ShapeValue([item for part in parts for item in part.items], False)


def _slice(first: ShapeValue, rest: list[ShapeValue | None],
           attrs: dict[str, Any]) -> ShapeValue | None:
    # inputs after the data: starts, ends, axes (a 1-D shape has only axis 0), steps
    start, end = (_first_int(v) for v in (rest + [None, None])[:2])
    step = _first_int(rest[3]) if len(rest) > 3 and rest[3] is not None else 1
    if first.scalar or start is None or end is None or step is None or step == 0:
        return None                               # ONNX forbids a step of 0, as Python does
    if not _only_axis_0(_axes(attrs, rest, 2)):
        return None
    return ShapeValue(first.items[slice(start, end, step)], False)


#: op type -> the value it computes from its first input and the others (None: not supported)
_RULES: dict[str, Callable[[ShapeValue, list[ShapeValue | None], dict[str, Any]],
                           ShapeValue | None]] = {
    "Cast": _passed_on, "Identity": _passed_on, "Gather": _gather, "Unsqueeze": _unsqueeze,
    "Squeeze": _squeeze, "Concat": _concat, "Slice": _slice,
}


class ShapeValues:
    """The shapes computed so far by the graph's nodes, by value name."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.values: dict[str, ShapeValue] = {}

    def __contains__(self, name: str) -> bool:
        return name in self.values

    def get(self, name: str) -> ShapeValue | None:
        """The computed or constant shape ``name``, or None when it is neither."""
        if name in self.values:
            return self.values[name]
        value = self.graph.constants.get(name)
        if value is not None and np.issubdtype(value.dtype, np.integer):
            return ShapeValue([int(v) for v in value.reshape(-1)], value.ndim == 0)
        return None

    def evaluate(self, node: NodeProto) -> bool:
        """Evaluate ``node`` (one of :data:`SHAPE_OPS`); False when its inputs are not shapes,
        an error when it computes a shape in a way numcnn does not follow."""
        if node.op_type == "Shape":
            return self._shape_of(node)
        inputs = [self.get(name) if name else None for name in node.input]
        first = inputs[0] if inputs else None
        if first is None or any(v is None for v, name in zip(inputs, node.input) if name):
            return False
        result = _RULES[node.op_type](first, inputs[1:], attributes(node))
        if result is None:
            fail(node, "this shape computation is not supported")
        self.values[node.output[0]] = result
        return True

    def _shape_of(self, node: NodeProto) -> bool:
        """A ``Shape`` node: the static shape of its input, the unknown sizes symbolic."""
        name = node.input[0]
        dims = self.graph.shapes.get(name)
        if dims is None:
            return False
        items: list[Dim] = [("dim", name, k) if d is None else int(d) for k, d in enumerate(dims)]
        attrs = attributes(node)
        start, end = attrs.get("start", 0), attrs.get("end", len(items))
        self.values[node.output[0]] = ShapeValue(items[start:end], False)
        return True
