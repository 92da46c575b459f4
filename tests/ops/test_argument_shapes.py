"""The public ndarray kernels refuse arrays that NumPy would broadcast into a result of the right
shape, silently wrong: an upstream gradient (or argmax) of another shape than the forward's output
(a batch of 1, a 1x1 map), a bias of one number for several output channels."""
from __future__ import annotations

import re

import numpy as np
import pytest

from numcnn import ops

X = np.ones((2, 3, 6, 6))
W = np.ones((4, 3, 3, 3))           # conv2d: (2, 3, 6, 6) -> (2, 4, 4, 4)
WT = np.ones((3, 4, 3, 3))          # conv_transpose2d: (2, 3, 6, 6) -> (2, 4, 8, 8)
ARGMAX = np.zeros((2, 3, 3, 3), np.int64)


def conv2d_input(gy):
    return ops.conv2d_input(X.shape, W, gy)


def conv2d_weight(gy):
    return ops.conv2d_weight(X, W.shape, gy)


def conv2d_forward_and_weight(gy):
    return ops.conv2d_forward_and_weight(X, W, gy)


def conv_transpose2d_input(gy):
    return ops.conv_transpose2d_input(X.shape, WT, gy)


def conv_transpose2d_weight(gy):
    return ops.conv_transpose2d_weight(X, WT.shape, gy)


def avg_pool2d_backward(gy):
    return ops.avg_pool2d_backward(gy, X.shape, 2)


def max_pool2d_backward(gy):
    return ops.max_pool2d_backward(gy, np.zeros(gy.shape, np.int64), X.shape, 2)


KERNELS = {  # kernel, op name, the output's shape
    "conv2d_input": (conv2d_input, "conv2d", (2, 4, 4, 4)),
    "conv2d_weight": (conv2d_weight, "conv2d", (2, 4, 4, 4)),
    "conv2d_forward_and_weight": (conv2d_forward_and_weight, "conv2d", (2, 4, 4, 4)),
    "conv_transpose2d_input": (conv_transpose2d_input, "conv_transpose2d", (2, 4, 8, 8)),
    "conv_transpose2d_weight": (conv_transpose2d_weight, "conv_transpose2d", (2, 4, 8, 8)),
    "avg_pool2d_backward": (avg_pool2d_backward, "avg_pool2d", (2, 3, 3, 3)),
    "max_pool2d_backward": (max_pool2d_backward, "max_pool2d", (2, 3, 3, 3)),
}


@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("change", ["one sample", "1x1 map", "one column short"])
def test_a_gradient_of_another_shape_is_refused(name, change):
    kernel, op, shape = KERNELS[name]
    N, C, H, W_ = shape
    wrong = {"one sample": (1, C, H, W_), "1x1 map": (N, C, 1, 1),
             "one column short": (N, C, H, W_ - 1)}[change]
    kernel(np.ones(shape))                                             # the right shape runs
    message = rf"{op}: gy must have the output's shape \({N}, {C}, {H}, {W_}\), got \({wrong[0]}, "
    with pytest.raises(ValueError, match=message):
        kernel(np.ones(wrong))


def test_max_pool_backward_refuses_an_argmax_of_another_shape():
    with pytest.raises(ValueError, match=r"max_pool2d: argmax must have the output's shape "
                                         r"\(2, 3, 3, 3\), got \(1, 3, 3, 3\)"):
        ops.max_pool2d_backward(np.ones((2, 3, 3, 3)), ARGMAX[:1], X.shape, 2)


@pytest.mark.parametrize("bias", [np.ones(1), np.ones((4, 1)), np.ones(5)])
def test_a_bias_without_one_number_per_output_channel_is_refused(bias):
    got = re.escape(str(bias.shape))
    with pytest.raises(ValueError, match=rf"conv2d: bias must have shape \(4,\), got {got}"):
        ops.conv2d_forward(X, W, bias)
    with pytest.raises(ValueError, match=rf"conv_transpose2d: bias must have shape \(4,\), got {got}"):
        ops.conv_transpose2d_forward(X, WT, bias)


def test_a_bias_given_as_a_list_is_read_as_one_number_per_channel():
    with_list = ops.conv2d_forward(X, W, [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(with_list, ops.conv2d_forward(X, W, np.arange(1.0, 5.0)))
    out = ops.conv_transpose2d_forward(X, WT, [0.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(out[:, 3] - 1, ops.conv_transpose2d_forward(X, WT)[:, 3])


@pytest.mark.parametrize("call, shape", [
    (lambda: ops.conv2d_forward(np.ones((3, 6, 6)), W), (3, 6, 6)),
    (lambda: ops.conv2d_input((2, 3, 6), W, np.ones((2, 4, 4, 4))), (2, 3, 6)),
    (lambda: ops.conv2d_input((2, 3, 6.0, 6), W, np.ones((2, 4, 4, 4))), (2, 3, 6.0, 6)),
    (lambda: ops.conv_transpose2d_input((2, -3, 6, 6), WT, np.ones((2, 4, 8, 8))), (2, -3, 6, 6)),
    (lambda: ops.avg_pool2d_forward(np.ones((3, 6, 6)), 2), (3, 6, 6)),
])
def test_the_ndarray_kernels_take_four_sizes_and_say_so(call, shape):
    with pytest.raises(ValueError, match=re.escape(
            f"input must be 4-D (N, C, H, W) with sizes >= 0, got shape {shape}")):
        call()


@pytest.mark.parametrize("argmax, error, message", [
    (ARGMAX.astype(np.float64), TypeError, ("argmax must hold ints (the window-local tap index), "
                                           "got dtype float64")),
    (ARGMAX + 4, ValueError, "argmax must lie in [-1, 4) for a 2x2 window, got values from 4 to 4"),
    (ARGMAX - 2, ValueError, ("argmax must lie in [-1, 4) for a 2x2 window, got values from -2 "
                             "to -2")),
])
def test_max_pool_backward_refuses_an_argmax_its_forward_cannot_give(argmax, error, message):
    with pytest.raises(error, match=re.escape(f"max_pool2d: {message}")):
        ops.max_pool2d_backward(np.ones((2, 3, 3, 3)), argmax, X.shape, 2)
