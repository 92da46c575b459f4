"""The model registry: names to constructors, and the input size each model expects."""
from __future__ import annotations

import inspect
from collections.abc import Callable

from ..nn import Module
from .convnet import ConvNet, convnet
from .lenet import LeNet5, lenet5

__all__ = ["MODELS", "get_model", "input_size"]

#: Registry name -> constructor. Each model records ``arch`` (its name here) and ``config``.
MODELS: dict[str, Callable[..., Module]] = {"lenet5": lenet5, "convnet": convnet}

_IMAGE_SIZE: dict[str, tuple[int, int]] = {"lenet5": LeNet5.image_size,
                                           "convnet": ConvNet.image_size}


def _lookup(name, op: str):
    if not isinstance(name, str) or name.lower() not in MODELS:
        known = ", ".join(repr(k) for k in sorted(MODELS))
        raise ValueError(f"{op}: unknown model {name!r}; known models: {known}")
    return name.lower()


def _check_config(name: str, config: dict, op: str) -> None:
    accepted = list(inspect.signature(MODELS[name]).parameters)
    unknown = [k for k in config if k not in accepted]
    if unknown:
        raise TypeError(f"{op}: model {name!r} got unexpected argument(s) "
                        f"{', '.join(map(repr, unknown))}; it accepts {', '.join(accepted)}")


def get_model(name: str, **config) -> Module:
    """Build the model registered as ``name`` (case-insensitive) with keyword ``config``.

    Raises ``ValueError`` listing the known names for an unknown one, and ``TypeError``
    listing the accepted arguments for an unknown keyword.

    Examples
    --------
    >>> from numcnn.models import get_model
    >>> get_model("lenet5", num_classes=5).fc3
    Linear(in_features=84, out_features=5, bias=True)
    """
    name = _lookup(name, "get_model")
    _check_config(name, config, "get_model")
    return MODELS[name](**config)


def input_size(name: str, **config) -> tuple[int, int, int]:
    """The (C, H, W) input the model ``name`` expects (C from ``in_channels``, default 1)."""
    name = _lookup(name, "input_size")
    _check_config(name, config, "input_size")
    channels = config.get("in_channels", 1)
    return (int(channels),) + _IMAGE_SIZE[name]
