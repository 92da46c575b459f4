"""``numcnn.gradcheck`` itself: it passes correct ops and catches wrong ones."""
from __future__ import annotations

import re

import numpy as np
import pytest

import numcnn.functional as F
from numcnn import GradcheckError, gradcheck, tensor
from numcnn.autograd import make


def scaled_square(x, wrong_factor=1.0):
    """y = x² with a backward that is off by ``wrong_factor`` at one element."""
    def backward(g):
        gx = 2 * x.data * g
        gx.flat[4] *= wrong_factor
        return (gx,)
    return make(x.data ** 2, (x,), backward, "BadSquare" if wrong_factor != 1 else "Square")


def bad_transpose(x):
    """x.T with a backward that reshapes instead of transposing: right for an all-ones upstream
    gradient, wrong for any other."""
    return make(x.data.T, (x,), lambda g: (g.reshape(x.shape),), "BadTranspose")


def test_returns_true_for_correct_ops(rng):
    x = tensor(rng.standard_normal((2, 3, 5, 5)), requires_grad=True)
    w = tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True)
    assert gradcheck(lambda a, b: F.conv2d(a, b, stride=2, padding=1), (x, w)) is True
    assert gradcheck(lambda a: scaled_square(a), (tensor(rng.standard_normal(6),
                                                         requires_grad=True),)) is True


def test_accepts_a_single_tensor_and_multiple_outputs(rng):
    x = tensor(rng.standard_normal(4), requires_grad=True)
    assert gradcheck(lambda a: a.exp(), x)
    assert gradcheck(lambda a: (a * 2, a.tanh(), "not a tensor"), [x])


def test_wrong_backward_raises_with_a_precise_message(rng):
    x = tensor(rng.standard_normal(6) + 3.0, requires_grad=True)           # away from 0
    c = tensor(rng.standard_normal(6), requires_grad=True)
    with pytest.raises(GradcheckError) as info:
        gradcheck(lambda other, a: other * 1.0 + scaled_square(a, wrong_factor=1.5), (c, x))
    message = str(info.value)
    assert "input 1" in message                          # names the input (its position)
    assert "(6,)" in message                              # and its shape
    assert re.search(r"index \((np\.int64\()?4\)?,\)", message)  # the worst element
    assert "1 of 6 elements" in message
    # the upstream weights are random, so compare the values with each other: the analytic one
    # is 1.5 times the true (numeric) one, and the difference is theirs
    analytic = float(message.split("analytic ")[1].split(",")[0])
    numeric = float(message.split("numeric ")[1].split(",")[0])
    difference = float(message.split("difference ")[1].split(" ")[0])
    assert analytic == pytest.approx(1.5 * numeric, rel=1e-5)
    assert difference == pytest.approx(abs(analytic - numeric), rel=1e-2)


def test_worst_index_is_written_plainly(rng):
    """The index reads like Python, ``(1, 1)``, not ``(np.int64(1), np.int64(1))``."""
    x = tensor(rng.standard_normal((2, 3)) + 3.0, requires_grad=True)    # flat 4 = (1, 1)
    with pytest.raises(GradcheckError, match=r"worst at index \(1, 1\):"):
        gradcheck(lambda a: scaled_square(a, wrong_factor=1.5), (x,))


def test_random_upstream_weights_catch_a_reshape_for_transpose(rng):
    x = tensor(rng.standard_normal((2, 3)), requires_grad=True)
    with pytest.raises(GradcheckError, match="input 0"):
        gradcheck(bad_transpose, (x,))
    # an all-ones upstream gradient would not see the bug (why gradcheck never uses one)
    x.grad = None
    bad_transpose(x).backward(np.ones((3, 2)))
    np.testing.assert_array_equal(x.grad, np.ones((2, 3)))


def test_returns_false_without_raising(rng):
    x = tensor(rng.standard_normal(6) + 3.0, requires_grad=True)
    assert gradcheck(lambda a: scaled_square(a, 2.0), (x,), raise_exception=False) is False


def test_rejects_float32_inputs():
    x = tensor(np.ones(3, np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        gradcheck(lambda a: a * 2, (x,))


def test_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="requires_grad"):
        gradcheck(lambda a: a * 2, (tensor(np.ones(3)),))


def test_restores_the_inputs(rng):
    data = rng.standard_normal((2, 3))
    x = tensor(data.copy(), requires_grad=True)
    gradcheck(lambda a: a.sigmoid(), (x,))
    np.testing.assert_array_equal(x.data, data)


def test_tolerances_are_used(rng):
    """A 0.5 % error passes with rtol 1e-2 and fails with the default rtol 1e-3."""
    x = tensor(rng.uniform(2.0, 3.0, 6), requires_grad=True)
    assert gradcheck(lambda a: scaled_square(a, 1.005), (x,), rtol=1e-2)
    assert not gradcheck(lambda a: scaled_square(a, 1.005), (x,), raise_exception=False)


def test_non_differentiable_input_is_skipped(rng):
    x = tensor(rng.standard_normal(3), requires_grad=True)
    const = tensor(np.ones(3, np.float32))               # float32 is fine when not checked
    assert gradcheck(lambda a, c: a * c.astype(np.float64), (x, const))
