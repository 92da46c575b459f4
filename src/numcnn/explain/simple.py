"""Plans for the layers without windows: Linear, Flatten, BatchNorm and elementwise layers.

FLOP convention (all layers): a multiply-add counts 2; every other elementary operation
(add, compare, divide, tanh, ...) counts 1. The per-element costs below follow the code.
"""
from __future__ import annotations

import math

from .plan import ExplainError, LayerPlan, TensorRow, check_bytes

#: name -> (forward, backward) operations per element, and how the backward forms gX.
ELEMENTWISE = {
    "ReLU": (1, 1, "gY * (X > 0)"),
    "LeakyReLU": (1, 1, "gY * (1 if X > 0 else slope)"),
    "Tanh": (1, 3, "gY * (1 - Y^2)"),
    "Sigmoid": (1, 3, "gY * Y * (1 - Y)"),
    "Dropout": (1, 1, "gY * mask / (1 - p) (the forward's mask)"),
    "Identity": (0, 0, "gY"),
    "Softmax": (3, 4, "Y * (gY - sum(gY * Y))"),
    "LogSoftmax": (3, 3, "gY - softmax * sum(gY)"),
}


def _numel(shape) -> int:
    return math.prod(shape)


def plan_elementwise(index: int, name: str, layer, in_shape) -> LayerPlan:
    kind = next(k for k in (c.__name__ for c in type(layer).__mro__) if k in ELEMENTWISE)
    fwd, bwd, rule = ELEMENTWISE[kind]
    n = _numel(in_shape)
    plan = LayerPlan(index, name, kind.lower(), "", tuple(in_shape), tuple(in_shape),
                     flops_fwd=fwd * n, flops_bwd=bwd * n, layer=layer)
    summed = "no sum (elementwise)" if not kind.endswith("max") else "sums along dim"
    plan.tensors = [
        TensorRow("X", tuple(in_shape), "input", "x"),
        TensorRow("Y", tuple(in_shape), f"{kind} of X, same shape", "y"),
        TensorRow("gY", tuple(in_shape), "given; shape of Y", "gy"),
        TensorRow("gX", tuple(in_shape), f"{rule}: {summed}", "gx"),
    ]
    return plan


def plan_flatten(index: int, name: str, layer, in_shape, implicit: bool = False) -> LayerPlan:
    """Flatten(start_dim=1, end_dim=-1): merge axes, no arithmetic on values."""
    start = getattr(layer, "start_dim", 1) if layer is not None else 1
    end = getattr(layer, "end_dim", -1) if layer is not None else -1
    nd = len(in_shape)
    start, end = start % nd, end % nd
    merged = in_shape[start:end + 1]
    out = tuple(in_shape[:start]) + (_numel(merged),) + tuple(in_shape[end + 1:])
    text = f"{tuple(merged)} -> {'*'.join(map(str, merged))} = {_numel(merged)}"
    kind = "flatten in forward()" if implicit else "flatten"
    plan = LayerPlan(index, name, kind, "", tuple(in_shape), out, [text], layer=layer)
    plan.tensors = [
        TensorRow("X", tuple(in_shape), "input", "x"),
        TensorRow("Y", out, "X reshaped (a view, no copy)", "y"),
        TensorRow("gY", out, "given; shape of Y", "gy"),
        TensorRow("gX", tuple(in_shape), "gY reshaped back to X's shape: no sum", "gx"),
    ]
    return plan


def plan_linear(index: int, name: str, layer, in_shape) -> LayerPlan:
    """Linear: ``Y = X W^T + b`` over the last axis."""
    out_f, in_f = tuple(layer.weight.shape)
    if in_shape[-1] != in_f:
        flat = (f"; flattened it would have {_numel(in_shape[1:])} features"
                if len(in_shape) > 2 else "")
        raise ExplainError(
            f"linear: input has {in_shape[-1]} features (shape {tuple(in_shape)}) but weight "
            f"expects {in_f} (weight shape {(out_f, in_f)}){flat}")
    has_bias = getattr(layer, "bias", None) is not None
    rows = _numel(in_shape[:-1])
    out = tuple(in_shape[:-1]) + (out_f,)
    mac = 2 * rows * in_f * out_f
    bias = rows * out_f if has_bias else 0
    plan = LayerPlan(index, name, "linear", "", tuple(in_shape), out,
                     [f"{in_f} -> {out_f} features: Y = X W^T{' + b' if has_bias else ''}"],
                     params=in_f * out_f + (out_f if has_bias else 0),
                     flops_fwd=mac + bias, flops_bwd=2 * mac + bias, layer=layer)
    lead = "n" if len(in_shape) == 2 else "all leading axes"
    plan.tensors = [
        TensorRow("X", tuple(in_shape), "input", "x"),
        TensorRow("W", (out_f, in_f), "weight", "w"),
    ]
    if has_bias:
        plan.tensors.append(TensorRow("b", (out_f,), "bias", "b"))
    plan.tensors += [
        TensorRow("Y", out, "X @ W^T: sums over the input features", "y"),
        TensorRow("gY", out, "given; shape of Y", "gy"),
        TensorRow("gW", (out_f, in_f), f"gY^T @ X: sums over {lead}", "gw"),
    ]
    if has_bias:
        plan.tensors.append(TensorRow("gb", (out_f,), f"gY summed over {lead}", "gb"))
    plan.tensors.append(TensorRow("gX", tuple(in_shape),
                                  "gY @ W: sums over the output features", "gx"))
    return plan


def plan_batchnorm(index: int, name: str, layer, in_shape) -> LayerPlan:
    """BatchNorm: per-channel statistics over every axis but 1."""
    if len(in_shape) < 2:
        raise ExplainError(f"batch_norm: expected an input with a channel axis (N, C, ...), "
                           f"got shape {tuple(in_shape)}")
    C = in_shape[1]
    expected = getattr(layer, "num_features", C)
    if C != expected:
        raise ExplainError(f"batch_norm: input has {C} channels (shape {tuple(in_shape)}) but "
                           f"the layer has num_features={expected}")
    affine = getattr(layer, "weight", None) is not None
    n = _numel(in_shape)
    axes = (0,) + tuple(range(2, len(in_shape)))
    plan = LayerPlan(index, name, "batchnorm", "", tuple(in_shape), tuple(in_shape),
                     [f"per channel ({C}) statistics over axes {axes}"],
                     params=2 * C if affine else 0, flops_fwd=7 * n, flops_bwd=9 * n,
                     layer=layer)
    plan.tensors = [TensorRow("X", tuple(in_shape), "input", "x")]
    if affine:
        plan.tensors += [TensorRow("gamma", (C,), "weight", "w"),
                         TensorRow("beta", (C,), "bias", "b")]
    plan.tensors += [
        TensorRow("Y", tuple(in_shape), "(X - mean) / sqrt(var + eps) * gamma + beta", "y"),
        TensorRow("gY", tuple(in_shape), "given; shape of Y", "gy"),
    ]
    if affine:
        plan.tensors += [
            TensorRow("ggamma", (C,), f"gY * X_hat summed over axes {axes}", "gw"),
            TensorRow("gbeta", (C,), f"gY summed over axes {axes}", "gb"),
        ]
    plan.tensors.append(TensorRow(
        "gX", tuple(in_shape),
        f"(gamma/sigma)(gY - mean(gY) - X_hat mean(gY X_hat)), means over axes {axes}", "gx"))
    return plan


def plan_unknown(index: int, name: str, layer, in_shape) -> LayerPlan:
    """A layer explain has no formulas for: its output shape comes from running it once."""
    import numpy as np

    from ..autograd import Tensor, no_grad

    params = list(getattr(layer, "parameters", list)())
    dtype = params[0].dtype if params else np.float32
    check_bytes(f"running {type(layer).__name__} on input {tuple(in_shape)} to learn its output "
                "shape", 2 * math.prod(in_shape) * np.dtype(dtype).itemsize)
    try:
        with no_grad():
            out = layer(Tensor(np.zeros(in_shape, dtype=dtype)))
    except Exception as err:  # noqa: BLE001 - report whatever the layer says
        raise ExplainError(f"{type(layer).__name__} failed on input {tuple(in_shape)}: {err}") \
            from None
    out = out[0] if isinstance(out, tuple) else out
    plan = LayerPlan(index, name, type(layer).__name__.lower(), "", tuple(in_shape),
                     tuple(out.shape), ["(no formula known: shape obtained by running the layer)"],
                     params=sum(p.numel() for p in params), flops_fwd=None, flops_bwd=None,
                     layer=layer)
    plan.tensors = [
        TensorRow("X", tuple(in_shape), "input", "x"),
        TensorRow("Y", tuple(out.shape), "output", "y"),
        TensorRow("gX", tuple(in_shape), "shape of X (shape rule)", "gx"),
    ]
    return plan
