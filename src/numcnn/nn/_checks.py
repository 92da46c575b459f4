"""Constructor argument checks shared by the layers; each error names the argument and value."""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from ..ops.shapes import pair

__all__ = [
    "check_bool",
    "check_device",
    "check_float_dtype",
    "check_int",
    "check_pair",
    "check_probability",
    "check_reduction",
]


def check_int(value, name: str, op: str, minimum: int = 1) -> int:
    """Return ``value`` as an int, raising unless it is an int >= ``minimum``."""
    if not isinstance(value, Integral) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be an int, got {value!r}")
    if value < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return int(value)


def check_bool(value, name: str, op: str) -> bool:
    """Return ``value`` unchanged, raising ``TypeError`` unless it is a bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: {name} must be True or False, got {value!r}")
    return bool(value)


def check_float_dtype(dtype, op: str) -> np.dtype:
    """Return ``np.dtype(dtype)``, raising unless it is float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{op}: dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in (np.float32, np.float64):
        raise TypeError(f"{op}: dtype must be float32 or float64, got {dt}")
    return dt


def check_device(device, op: str) -> None:
    """numcnn runs on the CPU: accept ``None`` and ``'cpu'`` only."""
    if device not in (None, "cpu"):
        raise ValueError(f"{op}: only device=None or 'cpu' is supported, got {device!r}")


def check_probability(p, name: str, op: str) -> float:
    """Return ``p`` as a float, raising unless 0 <= p <= 1."""
    if not isinstance(p, Real) or isinstance(p, bool) or not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: {name} must be a probability in [0, 1], got {p!r}")
    return float(p)


def check_pair(value, name: str, op: str, minimum: int):
    """Validate an int or a pair of ints (each >= ``minimum``); return ``value`` unchanged."""
    pair(value, name, op, minimum=minimum)
    return tuple(value) if isinstance(value, list) else value


def check_reduction(reduction, op: str) -> str:
    """Return ``reduction``, raising unless it is 'mean', 'sum' or 'none'."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction
