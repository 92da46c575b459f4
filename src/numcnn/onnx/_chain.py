"""The chain of layers as the converters build it, node by node.

A converter reads its node's attributes and constants from the :class:`~._graph.Graph` and
appends a layer with :meth:`Chain.add`. Two patterns span several nodes: a ``Pad`` waits in
:attr:`Chain.pending_pad` for the Conv or pool that folds it in, and the ``Add`` of a constant
right after a Conv or MatMul becomes that layer's bias (:meth:`Chain.next_bias_add`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from .. import nn
from ._graph import Graph, constant_value, fail, where
from ._shapes import ShapeValues

if TYPE_CHECKING:
    from onnx import NodeProto

__all__ = ["Chain", "PendingPad", "build"]

M = TypeVar("M", bound=nn.Module)


def build(node: NodeProto, layer: type[M], **kwargs: Any) -> M:
    """``layer(**kwargs)``, its refusal of the arguments reported as an error of ``node``."""
    try:
        return layer(**kwargs)
    except (TypeError, ValueError) as err:
        fail(node, f"cannot build {layer.__name__}: {err}")


@dataclass(frozen=True)
class PendingPad:
    """A constant ``Pad`` of the height and width, for the layer after it to fold in."""

    #: (top, left, bottom, right)
    pads: tuple[int, int, int, int]
    #: the value the Pad reads
    source: str
    fill: float
    node: NodeProto


@dataclass
class Chain:
    """The layers so far and the value the next one must read."""

    graph: Graph
    #: the value the next layer must read: the graph input, then the last layer's output
    current: str
    shape_values: ShapeValues
    layers: list[nn.Module] = field(default_factory=list)
    #: the position in ``graph.nodes`` of the node being converted
    index: int = 0
    #: positions of later nodes already folded into a layer (a bias Add), to pass over
    consumed: set[int] = field(default_factory=set)
    pending_pad: PendingPad | None = None

    @classmethod
    def start(cls, graph: Graph) -> Chain:
        return cls(graph, current=graph.input, shape_values=ShapeValues(graph))

    def add(self, layer: nn.Module, output: str) -> None:
        """Append ``layer``, whose output is the value ``output``."""
        self.layers.append(layer)
        self.current = output

    def add_weighted(self, layer: nn.Module, weight: np.ndarray, bias: np.ndarray | None,
                     output: str) -> None:
        """Append ``layer`` with the file's ``weight`` and ``bias`` (None: it has none), each
        refused unless it has the shape (the bias: the size) of the layer's own."""
        node = self.graph.nodes[self.index]
        if np.shape(weight) != layer.weight.data.shape:
            fail(node, f"the weight of shape {np.shape(weight)} does not fit the "
                       f"{type(layer).__name__} it describes (weight of shape "
                       f"{layer.weight.data.shape})")
        layer.weight.data[...] = self.graph.param(weight)
        if bias is not None:
            if np.size(bias) != layer.bias.data.size:
                fail(node, f"the bias of shape {np.shape(bias)} does not fit the "
                           f"{layer.bias.data.size} output channels of the {type(layer).__name__}")
            layer.bias.data[...] = self.graph.param(bias).reshape(-1)
        self.add(layer, output)

    def take_pad(self, node: NodeProto, fill: float) -> PendingPad | None:
        """The Pad just before ``node``, which must pad with ``fill`` (cleared), or None."""
        pending, self.pending_pad = self.pending_pad, None
        if pending is None:
            return None
        value = pending.fill
        if not (value == fill or (fill == -np.inf and value <= -np.finfo(np.float32).max)):
            fail(pending.node, f"a Pad with value {value} before {where(node)} is not "
                               f"supported (expected {fill})")
        return pending

    def next_bias_add(self, shapes: tuple[tuple[int, ...], ...]) -> tuple[np.ndarray, str] | None:
        """``(bias, output name)`` when the node after this one (Constant nodes aside) adds a
        constant of one of ``shapes`` to its output, marking that Add consumed; else None."""
        nodes = self.graph.nodes
        after = next((j for j in range(self.index + 1, len(nodes))
                      if nodes[j].op_type != "Constant"), None)
        if after is None:
            return None
        bias = self._added_constant(nodes[after], nodes[self.index].output[0])
        if bias is None or tuple(bias.shape) not in shapes:
            return None
        self.consumed.add(after)
        return bias.reshape(-1), nodes[after].output[0]

    def _added_constant(self, node: NodeProto, value: str) -> np.ndarray | None:
        """The constant that ``node`` adds to ``value``, when it is such an Add."""
        others = [name for name in node.input if name != value]
        if node.op_type != "Add" or len(node.input) != 2 or len(others) != 1:
            return None
        if others[0] in self.graph.constants:
            return self.graph.constants[others[0]]
        source = self.graph.producer(others[0])     # a Constant node later in the graph
        if source is None or source.op_type != "Constant":
            return None
        return constant_value(source)
