"""Parsing what a user types: layer specs, ``key=value`` configurations, input shapes.

Layer specs such as ``"conv2d(3, 16, kernel_size=3, stride=2)"`` are read with :mod:`ast`:
only calls of known layer names with literal arguments (numbers, strings, tuples, booleans,
None) are accepted; nothing is evaluated, imported or looked up beyond the layer table.
"""
from __future__ import annotations

import ast
import inspect
import math
from collections.abc import Iterable

import numpy as np

from .plan import ExplainError, check_bytes

#: spec name (lower case, underscores dropped) -> numcnn.nn class name
LAYER_NAMES = {
    "conv2d": "Conv2d", "avgpool2d": "AvgPool2d", "maxpool2d": "MaxPool2d",
    "adaptiveavgpool2d": "AdaptiveAvgPool2d", "linear": "Linear", "flatten": "Flatten",
    "relu": "ReLU", "leakyrelu": "LeakyReLU", "tanh": "Tanh", "sigmoid": "Sigmoid",
    "softmax": "Softmax", "logsoftmax": "LogSoftmax", "batchnorm2d": "BatchNorm2d",
    "batchnorm1d": "BatchNorm1d", "dropout": "Dropout", "identity": "Identity",
    "convtranspose2d": "ConvTranspose2d",
}
MAX_SPEC_CHARS = 2000

#: ``key=value`` keys per op (docs/math.md §8); values are ints, ``AxB`` pairs or 0/1 flags.
OP_KEYS = {
    "conv2d": ("N", "C_in", "C_out", "H", "W", "k", "s", "p", "d", "g", "bias"),
    "avgpool2d": ("N", "C", "H", "W", "k", "s", "p", "ceil_mode", "count_include_pad"),
    "maxpool2d": ("N", "C", "H", "W", "k", "s", "p", "d", "ceil_mode"),
    # r: output_padding (math.md 11.2)
    "convtranspose2d": ("N", "C_in", "C_out", "H", "W", "k", "s", "p", "r", "d", "g", "bias"),
}
FLAGS = ("bias", "ceil_mode", "count_include_pad")
#: One parsed ``key=value``: a flag, an int, or the (h, w) of ``AxB``.
KeyValue = bool | int | tuple[int, ...]


def spec_key(name: str) -> str:
    return name.lower().replace("_", "")


def _literal(node, where: str):
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise ExplainError(f"{where}: only literal arguments (numbers, strings, tuples, True/"
                           f"False/None) are allowed, got {ast.unparse(node)!r}") from None


def _layer_call(node) -> tuple[str, tuple, dict]:
    """One ``name(args...)`` (or a bare ``name``) -> (nn class name, args, kwargs)."""
    func = node.func if isinstance(node, ast.Call) else node
    if not isinstance(func, ast.Name) or spec_key(func.id) not in LAYER_NAMES:
        known = ", ".join(sorted(LAYER_NAMES))
        raise ExplainError(f"not a layer: {ast.unparse(node)!r}; expected a call of one of "
                           f"{known}, e.g. conv2d(3, 16, kernel_size=3)")
    if not isinstance(node, ast.Call):
        return LAYER_NAMES[spec_key(func.id)], (), {}
    if any(k.arg is None for k in node.keywords):
        raise ExplainError(f"{func.id}: **kwargs are not allowed in a layer spec")
    args = tuple(_literal(a, func.id) for a in node.args)
    kwargs = {k.arg: _literal(k.value, func.id) for k in node.keywords}
    return LAYER_NAMES[spec_key(func.id)], args, kwargs


def parse_layer_spec(text: str) -> list[tuple[str, tuple, dict]]:
    """``"conv2d(1, 6, 5), tanh, avgpool2d(2)"`` -> ``[("Conv2d", (1, 6, 5), {}), ...]``.

    >>> parse_layer_spec("maxpool2d(3, stride=2, padding=1, ceil_mode=True)")
    [('MaxPool2d', (3,), {'stride': 2, 'padding': 1, 'ceil_mode': True})]
    >>> parse_layer_spec("__import__('os')")
    Traceback (most recent call last):
    ...
    numcnn.explain.plan.ExplainError: not a layer: "__import__('os')"; ...
    """
    if len(text) > MAX_SPEC_CHARS:
        raise ExplainError(f"layer spec longer than {MAX_SPEC_CHARS} characters")
    try:
        body = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as err:
        raise ExplainError(f"cannot parse layer spec {text!r}: {err.msg}") from None
    nodes = body.elts if isinstance(body, (ast.Tuple, ast.List)) else [body]
    if not nodes:
        raise ExplainError("empty layer spec")
    return [_layer_call(node) for node in nodes]


#: Parameter elements of a layer from its constructor arguments (checked before building it).
PARAM_COUNTS = {
    "Conv2d": lambda a: (_int(a["out_channels"]) * _int(a["in_channels"])
                         // max(_int(a["groups"]), 1) * math.prod(_kernel(a["kernel_size"]))),
    "ConvTranspose2d": lambda a: (_int(a["in_channels"]) * _int(a["out_channels"])
                                  // max(_int(a["groups"]), 1) * math.prod(_kernel(a["kernel_size"]))),
    "Linear": lambda a: _int(a["in_features"]) * _int(a["out_features"]),
    "BatchNorm2d": lambda a: 4 * _int(a["num_features"]),
    "BatchNorm1d": lambda a: 4 * _int(a["num_features"]),
}


def _int(v) -> int:
    return int(v) if isinstance(v, int) and not isinstance(v, bool) else 1


def _kernel(k) -> tuple[int, ...]:
    k = k if isinstance(k, (tuple, list)) else (k, k)
    return tuple(_int(v) for v in k)


def check_layer_size(cls, cls_name: str, args, kwargs, itemsize: int) -> None:
    """Refuse a layer whose weights cannot sensibly be allocated, naming the size."""
    count = PARAM_COUNTS.get(cls_name)
    if count is None:
        return
    try:
        bound = inspect.signature(cls).bind(*args, **kwargs)
        bound.apply_defaults()
        elements = count(bound.arguments)
    except (TypeError, KeyError, ValueError):
        return                                      # the constructor itself reports bad args
    if elements > 0:
        shown = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
        check_bytes(f"{cls_name}({shown}) with {elements:,} parameters",
                    elements * itemsize, "explain a smaller layer (the arithmetic is the same)")


def build_layers(specs, dtype=np.float32):
    """Instantiate parsed specs as ``numcnn.nn`` layers (a ``Sequential`` when several)."""
    from .. import nn

    layers = []
    for cls_name, args, kwargs in specs:
        cls = getattr(nn, cls_name)
        check_layer_size(cls, cls_name, args, kwargs, np.dtype(dtype).itemsize)
        if cls_name in ("Conv2d", "ConvTranspose2d", "Linear", "BatchNorm2d", "BatchNorm1d"):
            kwargs = {"dtype": dtype, **kwargs}
        try:
            layers.append(cls(*args, **kwargs))
        except (TypeError, ValueError) as err:
            shown = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()
                                                        if k != "dtype"])
            raise ExplainError(f"{cls_name}({shown}): {err}") from None
    return layers[0] if len(layers) == 1 else nn.Sequential(*layers)


def parse_shape(text: str) -> tuple[int, ...]:
    """``"1x32x32"`` (C x H x W) or ``"784"`` (features) -> a tuple of positive ints."""
    try:
        shape = tuple(int(part) for part in text.lower().replace("*", "x").split("x"))
    except ValueError:
        raise ExplainError(f"--input must look like 1x32x32 (C x H x W), got {text!r}") from None
    if not shape or min(shape) < 1:
        raise ExplainError(f"--input sizes must be positive, got {text!r}")
    if len(shape) == 2:
        raise ExplainError(f"--input {text!r} has two sizes; give C x H x W, "
                           f"e.g. 1x{shape[0]}x{shape[1]} (or one number of features)")
    return shape


def _value(key: str, text: str) -> KeyValue:
    low = text.strip().lower()
    if key in FLAGS:
        if low in ("1", "true", "yes"):
            return True
        if low in ("0", "false", "no"):
            return False
        raise ExplainError(f"{key} must be 0 or 1, got {text!r}")
    try:
        parts = [int(v) for v in low.split("x")]
    except ValueError:
        raise ExplainError(f"{key} must be an int or AxB, got {text!r}") from None
    if len(parts) > 2 or (len(parts) == 2 and key in ("N", "C", "C_in", "C_out", "H", "W", "g")):
        raise ExplainError(f"{key} must be {'an int' if len(parts) == 2 else 'an int or AxB'}, "
                           f"got {text!r}")
    return parts[0] if len(parts) == 1 else tuple(parts)


def parse_key_values(op: str, items: Iterable[str]) -> dict[str, KeyValue]:
    """``["N=2", "k=3x2", ...]`` (or one comma-separated item) -> ``{"N": 2, "k": (3, 2), ...}``."""
    allowed = OP_KEYS[op]
    out: dict[str, KeyValue] = {}
    for item in (part for chunk in items for part in chunk.split(",") if part.strip()):
        key, sep, val = item.partition("=")
        key = key.strip()
        if not sep:
            raise ExplainError(f"expected key=value, got {item!r}")
        if key == "d" and op == "avgpool2d":
            raise ExplainError("avgpool2d: average pooling has no dilation (d); use maxpool2d "
                               "or conv2d for dilated windows")
        if key not in allowed:
            raise ExplainError(f"{op}: unknown key {key!r}; allowed: {' '.join(allowed)}")
        value = _value(key, val)
        if key in out and out[key] != value:
            raise ExplainError(f"{op}: {key} is given twice, as {out[key]!r} and {value!r}; "
                               f"give it once")
        if key == "N" and isinstance(value, int) and value < 1:   # _value refuses AxB for N
            raise ExplainError(f"N must be a positive batch size, got {value}")
        out[key] = value
    missing = [k for k in ("H", "W", "k") if k not in out]
    if missing:
        raise ExplainError(f"{op}: missing {', '.join(missing)} (e.g. H=28 W=28 k=3)")
    return out
