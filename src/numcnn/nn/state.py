"""Checking and copying the values of a state dict (used by ``Module.load_state_dict``)."""
from __future__ import annotations

import numpy as np

from ..autograd import Tensor

__all__ = ["StateDictError", "load_into", "state_error"]


class StateDictError(KeyError, ValueError):
    """A state dict does not fit a module: keys are missing or unexpected, or shapes differ.

    It is both a :class:`KeyError` and a :class:`ValueError`, so either ``except`` catches it.
    """

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0]) if self.args else ""


def as_array(value) -> np.ndarray:
    """The ndarray behind a state dict value (ndarray, numcnn Tensor, or any array-like)."""
    if isinstance(value, Tensor):
        return value.data
    if hasattr(value, "detach") and hasattr(value, "numpy"):     # a torch tensor
        return value.detach().cpu().numpy()
    return np.asarray(value)


def load_into(key: str, target: np.ndarray, value, check_only: bool = False) -> np.ndarray:
    """Check that ``value`` fits ``target`` (shape, numeric dtype); unless ``check_only``, copy
    it into ``target`` in place, cast to ``target``'s dtype. Returns the value as an array."""
    arr = as_array(value)
    if arr.shape != target.shape:
        raise ValueError(f"size mismatch for {key}: copying a value of shape {arr.shape}, "
                         f"the shape in the current model is {target.shape}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_):
        raise ValueError(f"dtype mismatch for {key}: expected numbers, got dtype {arr.dtype}")
    if not check_only:
        np.copyto(target, arr, casting="unsafe")
    return arr


def _keys(keys) -> str:
    return ", ".join(f'"{k}"' for k in keys)


def state_error(owner: str, missing, unexpected, problems) -> StateDictError:
    """One error listing every missing and unexpected key and every mismatch, as PyTorch does."""
    lines = [f"Error(s) in loading state_dict for {owner}:"]
    if missing:
        lines.append(f"Missing key(s) in state_dict: {_keys(missing)}.")
    if unexpected:
        lines.append(f"Unexpected key(s) in state_dict: {_keys(unexpected)}.")
    lines.extend(problems)
    return StateDictError("\n\t".join(lines))
