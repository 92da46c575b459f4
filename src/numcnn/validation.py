"""Argument checks shared by the layers, models, optimizers, schedulers, transforms and the CLI.

Every check takes the value first, then its name and ``where`` (the class or function that
received it, which starts the message), then what is expected; it returns the value, cleaned
up (NumPy scalars become Python numbers), or raises ``TypeError`` for a value of the wrong kind
and ``ValueError`` for one out of range, naming the argument, the value and what was expected:

>>> check_int(0, "in_channels", "Conv2d")
Traceback (most recent call last):
...
ValueError: Conv2d: in_channels must be >= 1, got 0

The ``positive_int`` and ``positive_float`` converters are argparse ``type=`` functions for
command-line values; argparse is imported only when one of them refuses a value.
"""
from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np

from .ops.shapes import pair

__all__ = [
    "check_bool", "check_choice", "check_device", "check_float_dtype", "check_image_input",
    "check_int", "check_pair", "check_probability", "check_real", "check_reduction", "is_int",
    "is_real", "non_negative_float", "non_negative_int", "positive_float", "positive_int",
    "to_pair",
]


def is_int(value: object) -> bool:
    """Whether ``value`` is an integer, Python's or NumPy's, and not a bool.

    A function rather than ``isinstance(value, Integral)`` at each check: mypy does not know
    that ``int`` is an ``Integral`` (:mod:`numbers` registers it at run time), so after such a
    check inline it takes an argument annotated ``int`` for impossible, and the code after it
    for unreachable.
    """
    return isinstance(value, Integral) and not isinstance(value, (bool, np.bool_))


def is_real(value: object) -> bool:
    """Whether ``value`` is a real number (an int, a float, NumPy's, any :class:`numbers.Real`)
    and not a bool; a function for the reason given in :func:`is_int`."""
    return isinstance(value, Real) and not isinstance(value, (bool, np.bool_))


def check_int(value, name: str, where: str, minimum: int | None = 1) -> int:
    """Return ``value`` as an int, raising unless it is an int (not a bool) >= ``minimum``
    (no lower bound when ``minimum`` is None)."""
    if not is_int(value):
        raise TypeError(f"{where}: {name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{where}: {name} must be >= {minimum}, got {value!r}")
    return int(value)


def check_real(value, name: str, where: str, low: float | None = None,
               high: float | None = None, *, low_open: bool = False,
               high_open: bool = False) -> float | int:
    """Return ``value``, raising unless it is a finite real number in the given range.

    NumPy scalars come back as Python numbers. ``low``/``high`` are inclusive unless
    ``low_open``/``high_open``.
    """
    if not is_real(value):
        raise TypeError(f"{where}: {name} must be a real number, got {value!r}")
    if isinstance(value, np.generic):
        value = value.item()
    if math.isnan(value) or math.isinf(value):
        raise ValueError(f"{where}: {name} must be finite, got {value!r}")
    if low is not None and high is not None:
        if value < low or value > high or (low_open and value == low) or (
                high_open and value == high):
            interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
            raise ValueError(f"{where}: {name} must be in {interval}, got {value!r}")
    elif low is not None and (value < low or (low_open and value == low)):
        relation = ">" if low_open else ">="
        raise ValueError(f"{where}: {name} must be {relation} {low}, got {value!r}")
    elif high is not None and (value > high or (high_open and value == high)):
        raise ValueError(
            f"{where}: {name} must be {'<' if high_open else '<='} {high}, got {value!r}")
    return value


def check_bool(value, name: str, where: str, hint: str = "") -> bool:
    """Return ``value`` as a Python bool, raising ``TypeError`` unless it is a bool (Python or
    NumPy); ``hint`` ends the message."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{where}: {name} must be a bool, got {value!r}{hint}")
    return bool(value)


def check_probability(value, name: str, where: str) -> float:
    """Return ``value`` as a float, raising unless 0 <= value <= 1."""
    if not is_real(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{where}: {name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def check_choice(value, name: str, where: str, choices: tuple[str, ...]) -> str:
    """Return ``value``, raising ``ValueError`` unless it is one of ``choices``."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{where}: {name} must be one of {listed}, got {value!r}")
    return value


def check_reduction(reduction, where: str) -> str:
    """Return ``reduction``, raising unless it is 'mean', 'sum' or 'none'."""
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"{where}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


def to_pair(value, name: str, where: str, minimum: int | None = None) -> tuple[int, int]:
    """``(h, w)`` from an int or a pair of ints, each >= ``minimum`` (the kernels' own rule,
    :func:`numcnn.ops.shapes.pair`)."""
    return pair(value, name, where, minimum=minimum)


def check_pair(value, name: str, where: str, minimum: int | None = None):
    """Validate an int or a pair of ints (each >= ``minimum``); return ``value`` in the form it
    was given (a list becomes a tuple), as PyTorch's layers keep ``kernel_size=2``."""
    pair(value, name, where, minimum=minimum)
    return tuple(value) if isinstance(value, list) else value


def check_float_dtype(dtype, where: str) -> np.dtype:
    """Return ``np.dtype(dtype)``, raising ``TypeError`` unless it is float32 or float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{where}: dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in (np.float32, np.float64):
        raise TypeError(f"{where}: dtype must be float32 or float64, got {dt}")
    return dt


def check_device(device, where: str) -> None:
    """numcnn runs on the CPU: accept ``None`` and ``'cpu'`` only."""
    if device not in (None, "cpu"):
        raise ValueError(f"{where}: only device=None or 'cpu' is supported, got {device!r}")


def check_image_input(x, where: str, channels: int, size: tuple[int, int], hint: str = "") -> None:
    """Raise a ``ValueError`` unless ``x`` has shape (N, channels, *size)."""
    shape = tuple(getattr(x, "shape", ()))
    if len(shape) != 4 or shape[1] != channels or shape[2:] != size:
        raise ValueError(f"{where}: expected input of shape (N, {channels}, {size[0]}, "
                         f"{size[1]}), got {shape}{hint}")


# --- command-line values (argparse ``type=`` converters) ------------------------------------

def _refused(message: str) -> Exception:
    import argparse  # only on a refusal: importing numcnn loads no argparse

    return argparse.ArgumentTypeError(message)


def _converted(text: str, parse, accept, expected: str):
    """``parse(text)`` when ``accept`` takes it; else argparse's error "expected ..., got ..."."""
    try:
        value = parse(text)
    except ValueError:
        raise _refused(f"expected {expected}, got {text!r}") from None
    if not accept(value):
        raise _refused(f"expected {expected}, got {text}")
    return value


def positive_int(text: str) -> int:
    """A command-line integer >= 1."""
    return _converted(text, int, lambda value: value >= 1, "a positive integer")


def positive_float(text: str) -> float:
    """A finite command-line number > 0."""
    return _converted(text, float, lambda value: value > 0 and math.isfinite(value),
                      "a positive number")


def non_negative_int(text: str) -> int:
    """A command-line integer >= 0 (a seed)."""
    return _converted(text, int, lambda value: value >= 0, "an integer >= 0")


def non_negative_float(text: str) -> float:
    """A finite command-line number >= 0 (momentum, weight decay)."""
    return _converted(text, float, lambda value: value >= 0 and math.isfinite(value),
                      "a finite number >= 0")
