"""Argument checks shared by the model constructors."""
from __future__ import annotations


def check_choice(value, name: str, choices: tuple[str, ...], op: str) -> str:
    """Return ``value``, raising ``ValueError`` unless it is one of ``choices``."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{op}: {name} must be one of {listed}, got {value!r}")
    return value


def check_image_input(x, channels: int, size: tuple[int, int], op: str, hint: str = "") -> None:
    """Raise a ``ValueError`` unless ``x`` has shape (N, channels, *size)."""
    shape = tuple(getattr(x, "shape", ()))
    if len(shape) != 4 or shape[1] != channels or shape[2:] != size:
        raise ValueError(f"{op}: expected input of shape (N, {channels}, {size[0]}, {size[1]}), "
                         f"got {shape}{hint}")
