"""``numcnn.reference`` as a package: the same public names as before the split, and the shared
validation prologue refusing bad arguments the same way in every op (naming the op, the
argument, the value and what was expected)."""
from __future__ import annotations

import re

import numpy as np
import pytest

from numcnn import reference as ref

NAMES = ["adaptive_avg_pool2d", "adaptive_avg_pool2d_backward", "avg_pool2d",
         "avg_pool2d_backward", "conv2d", "conv2d_backward", "conv2d_input_inserted",
         "conv2d_weight_rot180", "conv_transpose2d", "conv_transpose2d_backward", "cross_entropy",
         "linear", "max_pool2d", "max_pool2d_backward"]

X = np.ones((1, 2, 4, 4))
W = np.ones((3, 2, 3, 3))
GY = np.ones((1, 3, 2, 2))      # conv2d(X, W) output shape
WT = np.ones((2, 3, 3, 3))      # conv_transpose2d weight (C_in, C_out, kh, kw)
GYT = np.ones((1, 3, 6, 6))     # conv_transpose2d(X, WT) output shape
GP = np.ones((1, 2, 2, 2))      # 2x2 pooling output shape

# (op, positional args, index of the array argument to break, its name in messages)
CALLS = [
    ("conv2d", (X, W), 0, "x"),
    ("conv2d", (X, W), 1, "weight"),
    ("conv2d_backward", (X, W, GY), 2, "gy"),
    ("conv2d_input_inserted", (GY, W, X.shape), 0, "gy"),
    ("conv2d_weight_rot180", (X, GY, W.shape), 0, "x"),
    ("conv_transpose2d", (X, WT), 1, "weight"),
    ("conv_transpose2d_backward", (X, WT, GYT), 2, "gy"),
    ("avg_pool2d", (X, 2), 0, "x"),
    ("avg_pool2d_backward", (GP, X.shape, 2), 0, "gy"),
    ("max_pool2d", (X, 2), 0, "x"),
    ("max_pool2d_backward", (GP, np.zeros(GP.shape, np.int64), X.shape, 2), 0, "gy"),
    ("adaptive_avg_pool2d", (X, 2), 0, "x"),
    ("adaptive_avg_pool2d_backward", (GP, X.shape, 2), 0, "gy"),
    ("linear", (np.ones((2, 3)), np.ones((4, 3))), 1, "weight"),
    ("cross_entropy", (np.ones((2, 3)), np.array([0, 2])), 0, "logits"),
]
IDS = [f"{op}-{name}" for op, _, _, name in CALLS]


def test_public_names_unchanged():
    assert sorted(ref.__all__) == NAMES
    for name in NAMES:
        fn = getattr(ref, name)
        assert callable(fn) and fn.__module__.startswith("numcnn.reference.")


def _with(args, index, value):
    return args[:index] + (value,) + args[index + 1:]


@pytest.mark.parametrize(("op", "args", "index", "name"), CALLS, ids=IDS)
def test_valid_call_keeps_float32(op, args, index, name):
    args32 = tuple(a.astype(np.float32) if isinstance(a, np.ndarray) and a.dtype.kind == "f"
                   else a for a in args)
    out = getattr(ref, op)(*args32)
    for array in out if isinstance(out, tuple) else (out,):
        if array.dtype.kind == "f":
            assert array.dtype == np.float32


@pytest.mark.parametrize(("op", "args", "index", "name"), CALLS, ids=IDS)
def test_integer_array_refused(op, args, index, name):
    bad = args[index].astype(np.int64)
    with pytest.raises(TypeError, match=rf"^reference\.{op}: {name} must have a floating dtype "
                                        r"\(float32 or float64\), got int64"):
        getattr(ref, op)(*_with(args, index, bad))


@pytest.mark.parametrize(("op", "args", "index", "name"), CALLS, ids=IDS)
def test_wrong_rank_refused(op, args, index, name):
    bad = args[index][None]
    rank = args[index].ndim
    with pytest.raises(ValueError, match=rf"^reference\.{op}: {name} must be {rank}-D, got shape "
                                         rf"\({', '.join(map(str, bad.shape))}\)"):
        getattr(ref, op)(*_with(args, index, bad))


@pytest.mark.parametrize(("op", "args", "expected"), [
    ("conv2d", (X, W, np.ones(2)), "(3,)"),
    ("conv_transpose2d", (X, WT, np.ones(2)), "(3,)"),
    ("linear", (np.ones((2, 3)), np.ones((4, 3)), np.ones(3)), "(4,)"),
])
def test_bias_shape_refused(op, args, expected):
    message = f"reference.{op}: bias must have shape {expected}, got {args[2].shape}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        getattr(ref, op)(*args)
    with pytest.raises(ValueError, match=rf"^reference\.{op}: bias must be 1-D"):
        getattr(ref, op)(*_with(args, 2, args[2][None]))


@pytest.mark.parametrize(("op", "args", "index"), [
    ("conv2d_backward", (X, W, GY), 2),
    ("conv2d_input_inserted", (GY, W, X.shape), 0),
    ("conv_transpose2d_backward", (X, WT, GYT), 2),
    ("avg_pool2d_backward", (GP, X.shape, 2), 0),
    ("adaptive_avg_pool2d_backward", (GP, X.shape, 2), 0),
])
def test_gy_shape_refused(op, args, index):
    bad = args[index][..., :1]
    with pytest.raises(ValueError, match=rf"^reference\.{op}: gy must have shape \(.*\), got "
                                         rf"\({', '.join(map(str, bad.shape))}\)"):
        getattr(ref, op)(*_with(args, index, bad))
