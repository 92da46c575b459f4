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

This module walks the nodes in order (:func:`_layers`); the work is done by:

* ``_graph``: the file's graph (nodes, constants, inferred shapes, attributes) and the error
  that names a node;
* ``_shapes``: the evaluation of shape computations (the target of a Reshape);
* ``_chain``: the layers built so far, the Pad waiting for its layer, the bias Add lookahead;
* ``_converters`` (with ``_convolution`` and ``_pooling``): one converter per operator.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .. import nn
from ..io import regular_file
from ._chain import Chain
from ._converters import CONVERTERS
from ._graph import (
    STANDARD_DOMAINS,
    Graph,
    OnnxImportError,
    constant_value,
    fail,
    import_onnx,
    read_graph,
)
from ._shapes import SHAPE_OPS

if TYPE_CHECKING:
    from onnx import ModelProto, NodeProto

__all__ = ["SUPPORTED_OPS", "OnnxImportError", "load"]

#: The ONNX operators :func:`load` reads.
SUPPORTED_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "MaxPool", "AveragePool",
                 "GlobalAveragePool",
                 "Pad", "Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Slice", "Cast",
                 "BatchNormalization", "Relu", "LeakyRelu", "Tanh", "Sigmoid", "Softmax",
                 "LogSoftmax", "Flatten", "Reshape", "Dropout", "Identity", "Constant")

#: The operators a Pad node folds into, and the refusal of a Pad anywhere else.
_PAD_FOLDS_INTO = ("Conv", "MaxPool", "AveragePool")
_PAD_ELSEWHERE = "a Pad is supported only right before a Conv, MaxPool or AveragePool"


def load(source: str | os.PathLike[str] | bytes | bytearray | ModelProto) -> nn.Sequential:
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
    import_onnx()                                  # says how to install it when it is missing
    layers = _layers(read_graph(_model_proto(source)))
    model = nn.Sequential(*layers)
    model.eval()
    return model


def _model_proto(source: object) -> ModelProto:
    """The ONNX model that ``source`` (a path, bytes or a model) holds."""
    from onnx import ModelProto, load_model, load_model_from_string

    if isinstance(source, (str, os.PathLike)):
        path = regular_file(source, "load", "an .onnx file", OnnxImportError)
        what = str(path)
        try:
            proto = load_model(what)
        except Exception as err:  # noqa: BLE001 -- protobuf raises its own error types
            raise OnnxImportError(f"load: {path} is not a readable ONNX file: {err}") from None
    elif isinstance(source, (bytes, bytearray)):
        what = "the byte string given"
        try:
            proto = load_model_from_string(bytes(source))
        except Exception as err:  # noqa: BLE001 -- protobuf raises its own error types
            raise OnnxImportError(f"load: the byte string given is not a readable ONNX model: "
                                  f"{err}") from None
    elif isinstance(source, ModelProto):
        what, proto = "the onnx.ModelProto given", source
    else:
        raise TypeError(f"load: expected a path, bytes or an onnx.ModelProto, got "
                        f"{type(source).__name__}")
    # protobuf reads no bytes (an empty file) as a model with every field unset
    if not proto.HasField("graph"):
        empty = "is empty" if proto.ByteSize() == 0 else "holds no graph"
        raise OnnxImportError(f"load: {what} {empty}; expected an ONNX model")
    return proto


def _layers(graph: Graph) -> list[nn.Module]:
    """The layers of the graph's chain of nodes, in order."""
    chain = Chain.start(graph)
    for index, node in enumerate(graph.nodes):
        if index not in chain.consumed:
            chain.index = index
            _read_node(chain, node)
    if chain.pending_pad is not None:
        fail(chain.pending_pad.node, _PAD_ELSEWHERE)
    if chain.current != graph.output:
        raise OnnxImportError(f"load: the graph output {graph.output!r} is not the end of the "
                              f"chain of layers (which ends at {chain.current!r})")
    return chain.layers


def _read_node(chain: Chain, node: NodeProto) -> None:
    """Take in one node: a constant, a step of a shape computation, or a layer."""
    constants = chain.graph.constants
    if node.domain not in STANDARD_DOMAINS:
        fail(node, f"operators of domain {node.domain!r} are not supported")
    if node.op_type == "Constant":
        constants[node.output[0]] = constant_value(node)
    elif node.op_type == "Identity" and node.input[0] in constants:
        constants[node.output[0]] = constants[node.input[0]]
    elif not (node.op_type in SHAPE_OPS and chain.shape_values.evaluate(node)):
        _check_link(chain, node)
        convert = CONVERTERS.get(node.op_type)
        if convert is None:
            fail(node, f"the operator is not supported; supported: {', '.join(SUPPORTED_OPS)}")
        if chain.pending_pad is not None and node.op_type not in _PAD_FOLDS_INTO:
            fail(chain.pending_pad.node, _PAD_ELSEWHERE)
        convert(chain, node)


def _check_link(chain: Chain, node: NodeProto) -> None:
    """Refuse a node that does not read the chain's current value first, and constants (or
    computed shapes) after it."""
    data = [name for name in node.input if name and name not in chain.graph.constants
            and name not in chain.shape_values]
    if data != [chain.current] or node.input[0] != chain.current:
        fail(node, f"it takes {list(node.input)}, but numcnn reads only chains of layers, each "
                   f"taking the previous output {chain.current!r} first and constants after it")
