"""The forward pass :func:`numcnn.onnx.export` records: every leaf module call, in order.

A forward hook on every leaf module (a module without children: ``Conv2d``, ``ReLU``, ...)
records the call's input and output tensors; whatever a ``forward`` computes between them is
followed later through the autograd graph (see :mod:`numcnn.onnx._export_graph`).
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import autograd as _autograd
from .. import nn
from ..autograd import Tensor

__all__ = ["LayerCall", "trace"]


@dataclass
class LayerCall:
    """One leaf module call seen while tracing."""

    name: str
    module: nn.Module
    args: tuple
    kwargs: dict
    output: object


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, module) for name, module in model.named_modules()
            if not any(child is not None for child in module._modules.values())]


def trace(model: nn.Module, x: Tensor) -> tuple[list[LayerCall], object]:
    """Run ``model(x)`` in evaluation mode with autograd recording, logging each leaf call.

    A forward hook on every leaf records its calls for the duration of this run only; the
    hooks are removed and the modes restored afterwards.
    """
    calls: list[LayerCall] = []
    handles = []
    modes = [(module, module.training) for module in model.modules()]
    grad_was = _autograd._grad_enabled

    def recorder(name: str):
        def hook(module, args, kwargs, output):
            calls.append(LayerCall(name, module, args, kwargs, output))
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
