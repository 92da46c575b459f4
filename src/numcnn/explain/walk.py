"""Find the layers a model applies, in order, and plan each one from the shape it receives.

Layers are recognized by their class names (PyTorch's: ``Conv2d``, ``MaxPool2d``, ...), so a
subclass is explained like its base. A ``Sequential`` of such layers is walked statically, so a
configuration that cannot run is still explained layer by layer. A model with its own
``forward`` (which may reuse one activation module, or flatten inline with ``x.flatten(1)``)
is run once on zeros (batch 1, eval mode, no graph) to record which layer is called on which
shape; reshapes done inside ``forward`` appear as their own rows. The trace (:mod:`.trace`)
checks the result against a real forward and backward pass.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .convpool import plan_adaptive, plan_conv, plan_pool
from .hooks import watching, watching_functions
from .plan import ExplainError, LayerPlan, TensorRow, check_bytes
from .simple import (
    ELEMENTWISE,
    plan_batchnorm,
    plan_elementwise,
    plan_flatten,
    plan_linear,
    plan_unknown,
)
from .transpose import plan_conv_transpose

if TYPE_CHECKING:
    from ..nn import Module

PLANNERS = {
    "Conv2d": plan_conv,
    "ConvTranspose2d": plan_conv_transpose,
    "AvgPool2d": plan_pool,
    "MaxPool2d": plan_pool,
    "AdaptiveAvgPool2d": plan_adaptive,
    "Linear": plan_linear,
    "Flatten": plan_flatten,
    "BatchNorm2d": plan_batchnorm,
    "BatchNorm1d": plan_batchnorm,
    **{name: plan_elementwise for name in ELEMENTWISE},
}


def planner_for(layer):
    """The planner of the first class in the layer's MRO that explain knows, else None."""
    for cls in type(layer).__mro__:
        if cls.__name__ in PLANNERS:
            return PLANNERS[cls.__name__]
    return None


def label(layer) -> str:
    """The layer's one-line repr (PyTorch style), or its class name when that is long."""
    text = repr(layer)
    return text if "\n" not in text and len(text) <= 96 else type(layer).__name__


def _children(module) -> list:
    return list(module.named_children()) if hasattr(module, "named_children") else []


def _is_static(module) -> bool:
    """A known layer, or a Sequential of static modules: its order of calls is known."""
    if planner_for(module) is not None:
        return True
    if "Sequential" not in (c.__name__ for c in type(module).__mro__):
        return not _children(module)
    return all(_is_static(child) for _, child in _children(module))


def leaves(module, prefix: str = ""):
    """``(dotted name, layer)`` for every leaf layer, in registration order."""
    children = _children(module)
    if planner_for(module) is not None or not children:
        yield prefix, module
        return
    for name, child in children:
        yield from leaves(child, f"{prefix}.{name}" if prefix else name)


def _planned(planner, index, name, layer, shape, **kwargs) -> LayerPlan:
    text = "flatten in forward()" if layer is None else label(layer)
    try:
        plan = planner(index, name, layer, shape, **kwargs)
    except ExplainError as err:
        where = f"layer {index}" + (f" ({name})" if name else "")
        raise ExplainError(f"{where} {text} on input {tuple(shape)}: {err}") from None
    plan.label = text
    return plan


def plan_layers(model, in_shape) -> list[LayerPlan]:
    """Plan every layer ``model`` applies to an input of shape ``in_shape`` (batch included).

    Raises :class:`ExplainError` naming the layer, its input shape and the violated constraint.
    """
    if _is_static(model):
        plans: list[LayerPlan] = []
        shape = tuple(in_shape)
        for name, layer in leaves(model):
            plans.append(_planned(planner_for(layer) or plan_unknown, len(plans) + 1, name,
                                  layer, shape))
            shape = plans[-1].out_shape
        return plans
    return _plan_recorded(model, tuple(in_shape))


# --- models with their own forward: record the calls --------------------------------------

def _hook_targets(model: Module) -> dict[int, tuple[str, Module]]:
    names: dict[int, tuple[str, Module]] = {}
    for name, module in model.named_modules():
        if module is not model and (planner_for(module) is not None or not _children(module)):
            names.setdefault(id(module), (name, module))
    return names


#: Activations a ``forward`` may call functionally (``F.relu(x)``) -> the layer they equal.
FUNCTIONAL = {"relu": "ReLU", "leaky_relu": "LeakyReLU", "tanh": "Tanh", "sigmoid": "Sigmoid",
              "softmax": "Softmax", "log_softmax": "LogSoftmax", "dropout": "Dropout"}


class FunctionalCall:
    """A functional activation called in ``forward``: planned like its layer, run by no layer."""

    def __init__(self, name: str):
        from .. import nn

        self.name, self.like = name, getattr(nn, FUNCTIONAL[name])()


def _record_calls(model, sample_shape):
    """Run ``model`` on zeros of batch 1; return [(layer, in shape, out shape or None)], error.

    Functional activations called from ``forward`` itself (not from inside a layer) are
    recorded too, as :class:`FunctionalCall` entries.
    """
    from .. import functional
    from ..autograd import Tensor, no_grad

    targets = _hook_targets(model)
    calls = []
    depth = [0]                                   # > 0 while a layer runs: its own F calls

    def on_call(module, inp):
        call = [module, tuple(inp.shape), None]
        calls.append(call)
        depth[0] += 1

        def after(out):
            depth[0] -= 1
            call[2] = tuple((out[0] if isinstance(out, tuple) else out).shape)
        return after

    def on_function(name, inp):
        if depth[0] or not hasattr(inp, "shape"):
            return None
        return on_call(FunctionalCall(name), inp)

    modes = [(m, m.training) for _, m in model.named_modules() if hasattr(m, "training")]
    params = list(model.parameters()) if hasattr(model, "parameters") else []
    dtype = params[0].dtype if params else np.float32
    check_bytes(f"running {type(model).__name__}.forward to find its layers on one sample "
                f"{sample_shape} (the input alone)",
                math.prod(sample_shape) * np.dtype(dtype).itemsize,
                "explain a smaller input (the shapes follow the same arithmetic)")
    error = None
    try:
        if hasattr(model, "eval"):
            model.eval()
        with no_grad(), watching([m for _, m in targets.values()], on_call), \
                watching_functions(functional, FUNCTIONAL, on_function):
            model(Tensor(np.zeros((1,) + sample_shape, dtype=dtype)))
    except Exception as err:  # noqa: BLE001 - explained below
        error = err
    finally:
        for module, mode in modes:
            object.__setattr__(module, "training", mode)
    return targets, calls, error


def _plan_gap(index, in_shape, out_shape) -> LayerPlan:
    """A reshape done inside ``forward`` between two layers."""
    if math.prod(in_shape) == math.prod(out_shape) and out_shape == in_shape[:1] + (
            math.prod(in_shape[1:]),):
        return _planned(plan_flatten, index, "", None, in_shape, implicit=True)
    plan = LayerPlan(index, "", "reshape in forward()", "reshape in forward()", in_shape, out_shape,
                     ["(an operation inside forward, not a layer: not explained)"])
    plan.tensors = [TensorRow("Y", out_shape, "output", "y")]
    return plan


def _plan_functional(index, call: FunctionalCall, in_shape) -> LayerPlan:
    """``F.relu(x)`` in ``forward``: the ReLU layer's row, marked as a call in forward."""
    plan = _planned(planner_for(call.like), index, "", call.like, in_shape)
    plan.layer, plan.label = None, f"F.{call.name} in forward()"
    plan.kind = f"F.{call.name}"
    return plan


def _plan_recorded(model, in_shape) -> list[LayerPlan]:
    batch, sample = in_shape[0], in_shape[1:]
    targets, calls, error = _record_calls(model, sample)
    plans: list[LayerPlan] = []
    previous = in_shape
    for layer, shape_in, shape_out in calls:
        shape_in = (batch,) + tuple(shape_in[1:])
        if shape_in != previous:
            plans.append(_plan_gap(len(plans) + 1, previous, shape_in))
        if isinstance(layer, FunctionalCall):
            plans.append(_plan_functional(len(plans) + 1, layer, shape_in))
            previous = plans[-1].out_shape
            continue
        name = targets[id(layer)][0]
        plans.append(_planned(planner_for(layer) or plan_unknown, len(plans) + 1, name, layer,
                              shape_in))
        if shape_out is None:                    # the layer raised, but its plan did not
            raise ExplainError(f"layer {len(plans)} ({name}) {label(layer)} on input "
                               f"{shape_in}: {error}")
        previous = plans[-1].out_shape
    if error is not None:
        raise ExplainError(f"{type(model).__name__}.forward rejected input {in_shape}: "
                           f"{error}") from None
    return plans
