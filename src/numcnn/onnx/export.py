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
from types import ModuleType
from typing import Any

import numpy as np

from .. import nn
from .._version import __version__
from ..autograd import Tensor
from ._export_graph import GraphBuilder, OnnxExportError
from ._export_layers import SUPPORTED_LAYERS, convert_layer
from ._export_trace import trace

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "SUPPORTED_LAYERS", "OnnxExportError", "export"]

#: The opset :func:`export` writes unless told otherwise.
DEFAULT_OPSET = 17
#: The oldest opset supported (``Softmax``/``LogSoftmax`` along one axis need 13).
MIN_OPSET = 13


def _onnx() -> ModuleType:
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install 'numcnn[onnx]' "
                          "(or pip install onnx)") from None
    return onnx


# --- argument checks ---------------------------------------------------------------------------

def _check_model(model) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"export: model must be a numcnn.nn.Module, got {type(model).__name__}")


def _sample_shape(input_shape, model: nn.Module) -> tuple[int, ...]:
    """The shape of one sample: ``input_shape`` checked, or the registry's for the model."""
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


def _check_opset(onnx: ModuleType, opset) -> None:
    newest = onnx.defs.onnx_opset_version()
    if not isinstance(opset, (int, np.integer)) or isinstance(opset, bool) or \
            not MIN_OPSET <= opset <= newest:
        raise ValueError(f"export: opset must be an int from {MIN_OPSET} to {newest} (the "
                         f"newest the installed onnx knows), got {opset!r}")


def _check_batch_size(batch_size) -> None:
    if batch_size is not None and (not isinstance(batch_size, (int, np.integer))
                                   or isinstance(batch_size, bool) or batch_size < 1):
        raise ValueError(f"export: batch_size must be a positive int or None (a dynamic batch), "
                         f"got {batch_size!r}")


def _check_names(input_name: str, output_name: str) -> None:
    if not input_name or not output_name or input_name == output_name:
        raise ValueError(f"export: input_name and output_name must be two different non-empty "
                         f"names, got {input_name!r} and {output_name!r}")


def _in_dtype(model: nn.Module, dtype) -> tuple[nn.Module, np.dtype]:
    """The graph's floating type (the model's own by default) and the model computing in it
    (a converted copy when the type differs from the model's)."""
    params = [p for p in model.parameters() if np.issubdtype(p.dtype, np.floating)]
    own = params[0].dtype if params else np.dtype(np.float32)
    if dtype is None:
        return model, own
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
    return model, dtype


# --- tracing and building the graph ------------------------------------------------------------

def _build(onnx: ModuleType, model: nn.Module, sample_shape: tuple[int, ...], batch: int,
           dynamic: bool, dtype: np.dtype, names: tuple[str, str], seed: int) -> Any:
    """The graph of one trace of ``model`` on a random batch of ``batch`` samples."""
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal((batch,) + sample_shape).astype(dtype), requires_grad=True)
    builder = GraphBuilder(onnx, model, x, batch, dynamic, *names)
    builder.record(names[0], x)
    calls, output = trace(model, x)
    for call in calls:
        convert_layer(builder, call)
    return builder.finish(output)


def _graph(onnx: ModuleType, model: nn.Module, sample_shape: tuple[int, ...],
           batch_size: int | None, dtype: np.dtype, names: tuple[str, str]) -> Any:
    """The model's graph: for a fixed ``batch_size``, traced once with it; for a dynamic
    batch, traced with batches of 2 and 3, which must give the same graph."""
    if batch_size is not None:
        return _build(onnx, model, sample_shape, int(batch_size), False, dtype, names, seed=0)
    graph = _build(onnx, model, sample_shape, 2, True, dtype, names, seed=0)
    again = _build(onnx, model, sample_shape, 3, True, dtype, names, seed=1)
    if graph.SerializeToString() != again.SerializeToString():
        raise OnnxExportError(
            f"export: the graph of {type(model).__name__} depends on the batch size (traces "
            "with batches of 2 and 3 differ); export it with a fixed batch_size")
    return graph


# --- the model file ----------------------------------------------------------------------------

def _model_proto(onnx: ModuleType, model: nn.Module, graph, opset: int, description: str) -> Any:
    """The ``onnx.ModelProto`` of ``graph``, with numcnn's metadata (the architecture and its
    config when the model has them, for :func:`numcnn.onnx.load`)."""
    helper = onnx.helper
    opsets = [helper.make_opsetid("", int(opset))]
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="numcnn",
                              ir_version=helper.find_min_ir_version_for(opsets))
    proto.producer_version = __version__
    proto.doc_string = description
    arch, config = getattr(model, "arch", None), getattr(model, "config", None)
    if isinstance(arch, str) and isinstance(config, dict):
        helper.set_model_props(proto, {"numcnn.arch": arch, "numcnn.config": json.dumps(config)})
    return proto


def _description(model: nn.Module, input_name: str, batch_size: int | None,
                 sample_shape: tuple[int, ...]) -> str:
    """The model file's doc string: the model class and the input's name and shape."""
    return (f"{type(model).__name__} exported by numcnn: input {input_name!r} of "
            f"shape ({'N' if batch_size is None else batch_size}, "
            f"{', '.join(map(str, sample_shape))}), evaluation mode")


def _write(path, proto) -> None:
    from ..atomic import write_bytes

    write_bytes(path, proto.SerializeToString())  # atomic: a full disk keeps the old file


# --- the public function -----------------------------------------------------------------------

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
    _check_model(model)
    sample_shape = _sample_shape(input_shape, model)
    _check_opset(onnx, opset)
    _check_batch_size(batch_size)
    _check_names(input_name, output_name)
    model, dtype = _in_dtype(model, dtype)
    graph = _graph(onnx, model, sample_shape, batch_size, dtype, (input_name, output_name))
    proto = _model_proto(onnx, model, graph, opset,
                         _description(model, input_name, batch_size, sample_shape))
    if check:
        onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        _write(path, proto)
    return proto
