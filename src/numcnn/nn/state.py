"""Loading a state dict: check every value against the module's arrays, then copy in place."""
from __future__ import annotations

from collections import namedtuple
from collections.abc import Mapping

import numpy as np

from ..autograd import Tensor

__all__ = ["IncompatibleKeys", "StateDictError", "load_state"]


class StateDictError(KeyError, ValueError):
    """A state dict does not fit a module: keys are missing or unexpected, or shapes differ.

    It is both a :class:`KeyError` and a :class:`ValueError`, so either ``except`` catches it.
    """

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


class IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What :meth:`Module.load_state_dict` returns: the keys it did not match."""

    def __repr__(self) -> str:
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()


def as_array(value) -> np.ndarray:
    """The ndarray behind a state dict value (ndarray, numcnn Tensor, or any array-like)."""
    if isinstance(value, Tensor):
        return value.data
    if hasattr(value, "detach") and hasattr(value, "numpy"):     # a torch tensor
        return value.detach().cpu().numpy()
    return np.asarray(value)


def check_value(key: str, target: np.ndarray, value) -> np.ndarray:
    """``value`` as an array, after checking that it fits ``target`` (shape, numeric dtype)."""
    arr = as_array(value)
    if arr.shape != target.shape:
        raise ValueError(f"size mismatch for {key}: copying a value of shape {arr.shape}, "
                         f"the shape in the current model is {target.shape}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"dtype mismatch for {key}: expected numbers, got dtype {arr.dtype}")
    return arr


def _keys(keys) -> str:
    return ", ".join(f'"{k}"' for k in keys)


def load_state(targets: Mapping[str, np.ndarray], state_dict: Mapping, strict: bool,
               owner: str) -> IncompatibleKeys:
    """Copy ``state_dict`` into the arrays ``targets`` (name -> the module's own array), each
    cast to its target's dtype, only after every key has been checked.

    Shape mismatches always raise; missing and unexpected keys raise when ``strict``. The one
    :class:`StateDictError` lists every problem, as PyTorch's message does.
    """
    if not (hasattr(state_dict, "keys") and hasattr(state_dict, "__getitem__")):
        raise TypeError(f"load_state_dict: state_dict must be a mapping of name -> array, "
                        f"got {type(state_dict).__name__}")
    missing = [k for k in targets if k not in state_dict]
    unexpected = [k for k in state_dict if k not in targets]
    values, problems = {}, []
    for key, target in targets.items():
        if key in state_dict:
            try:
                values[key] = check_value(key, target, state_dict[key])
            except ValueError as err:
                problems.append(str(err))
    if problems or (strict and (missing or unexpected)):
        lines = [f"Error(s) in loading state_dict for {owner}:"]
        if strict and missing:
            lines.append(f"Missing key(s) in state_dict: {_keys(missing)}.")
        if strict and unexpected:
            lines.append(f"Unexpected key(s) in state_dict: {_keys(unexpected)}.")
        raise StateDictError("\n\t".join(lines + problems))
    for key, value in values.items():
        np.copyto(targets[key], value, casting="unsafe")
    return IncompatibleKeys(missing, unexpected)
