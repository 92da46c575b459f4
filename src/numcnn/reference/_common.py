"""What every reference op shares: the validation prologue and the zero extension X̃."""
from __future__ import annotations

import numpy as np

from numcnn.ops import shapes

#: Rank of an array argument whose name says it (a bias is a vector whatever the op).
_FIXED_NDIM = {"bias": 1}


def prologue(op: str, ndim: int = 4, **arrays) -> tuple:
    """Validate the array arguments of reference op ``op``; return ``(dtype, *float64 copies)``.

    Each keyword names an argument as the error message should (``x``, ``weight``, ``gy``...):
    it must be a floating array of rank ``ndim`` (``bias``: 1); None (an omitted bias) passes
    through. ``dtype`` is ``np.result_type`` of the arrays given, the dtype the op returns
    (float32 in, float32 out), while the loops themselves accumulate in float64.
    """
    checked = {name: None if a is None else shapes.check_float_array(a, name, op)
               for name, a in arrays.items()}
    for name, a in checked.items():
        rank = _FIXED_NDIM.get(name, ndim)
        if a is not None and a.ndim != rank:
            raise ValueError(f"{op}: {name} must be {rank}-D, got shape {a.shape}")
    dtype = np.result_type(*[a.dtype for a in checked.values() if a is not None])
    return (dtype, *(None if a is None else a.astype(np.float64) for a in checked.values()))


def shape4(shape, name: str, op: str) -> tuple[int, int, int, int]:
    """Validate a 4-D shape argument such as ``input_shape``."""
    shape = tuple(int(s) for s in shape)
    if len(shape) != 4:
        raise ValueError(f"{op}: {name} must have 4 entries (N, C, H, W), got {shape}")
    return shape


def expect_shape(a: np.ndarray | None, expected: tuple, name: str, op: str) -> None:
    """``a`` (a bias or an upstream gradient; None passes) must have the shape the op implies."""
    if a is not None and a.shape != tuple(expected):
        raise ValueError(f"{op}: {name} must have shape {tuple(expected)}, got {a.shape}")


def zero_extended(a: np.ndarray, n: int, c: int, i: int, j: int) -> float:
    """Ã[n, c, i, j]: ``a[n, c, i, j]`` inside the array, 0 outside (SPEC §1.3; never wraps)."""
    if 0 <= i < a.shape[2] and 0 <= j < a.shape[3]:
        return a[n, c, i, j]
    return 0.0
