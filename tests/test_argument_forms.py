"""PyTorch's own argument forms for conv2d, avg_pool2d, max_pool2d and adaptive_avg_pool2d:
what PyTorch accepts numcnn accepts with the same result, and what it refuses numcnn refuses
(with numcnn's own message naming the argument)."""
from __future__ import annotations

import numpy as np
import pytest

import numcnn as nc
import numcnn.functional as F

FORMS = [1, 2, (1,), (2,), [2], (), (1, 2), [2, 1], (1, 2, 3), -1, 0, (0,), (-1,), (2, -1),
         1.0, (1.0,), True, None, "same", "valid", np.int64(2)]
DIVISORS = [-2, -1, 0, 1, 3, 2.0, True, None]
X = np.random.default_rng(0).standard_normal((1, 2, 7, 7))
W = np.random.default_rng(1).standard_normal((2, 2, 3, 3))


def _outcome(fn):
    try:
        out = fn()
    except (RuntimeError, ValueError, TypeError, IndexError, NotImplementedError):
        return None
    out = out[0] if isinstance(out, tuple) else out
    return out.detach().numpy() if hasattr(out, "detach") else out.data


def _compare(ours, theirs, what):
    a, b = _outcome(ours), _outcome(theirs)
    assert (a is None) == (b is None), f"{what}: numcnn {'refuses' if a is None else 'accepts'}"\
                                       f", PyTorch {'refuses' if b is None else 'accepts'}"
    if a is not None:
        assert a.shape == b.shape, what
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=what)


@pytest.mark.parametrize("value", FORMS, ids=repr)
@pytest.mark.parametrize("arg", ["stride", "padding", "dilation"])
def test_conv2d_forms(torch, arg, value):
    tf = torch.nn.functional
    _compare(lambda: F.conv2d(nc.tensor(X), nc.tensor(W), **{arg: value}),
             lambda: tf.conv2d(torch.tensor(X), torch.tensor(W), **{arg: _t(value)}),
             f"conv2d {arg}={value!r}")


def _t(value):
    """numpy ints are Python ints to PyTorch's parser too."""
    return int(value) if isinstance(value, np.integer) else value


@pytest.mark.parametrize("value", FORMS, ids=repr)
@pytest.mark.parametrize("arg", ["kernel_size", "stride", "padding"])
@pytest.mark.parametrize("op", ["avg_pool2d", "max_pool2d"])
def test_pool_forms(torch, op, arg, value):
    tf = torch.nn.functional
    kwargs = {"kernel_size": 2, arg: value}
    _compare(lambda: getattr(F, op)(nc.tensor(X), **kwargs),
             lambda: getattr(tf, op)(torch.tensor(X), **{k: _t(v) for k, v in kwargs.items()}),
             f"{op} {arg}={value!r}")


@pytest.mark.parametrize("value", FORMS, ids=repr)
def test_max_pool_dilation_forms(torch, value):
    _compare(lambda: F.max_pool2d(nc.tensor(X), 2, dilation=value),
             lambda: torch.nn.functional.max_pool2d(torch.tensor(X), 2, dilation=_t(value)),
             f"max_pool2d dilation={value!r}")


@pytest.mark.parametrize("k, p, d", [(3, 1, 2), (3, 2, 2), (3, 3, 2), (2, 1, 3), (2, 2, 3)])
def test_max_pool_padding_limit_ignores_dilation(torch, k, p, d):
    _compare(lambda: F.max_pool2d(nc.tensor(X), k, 1, p, d),
             lambda: torch.nn.functional.max_pool2d(torch.tensor(X), k, 1, p, d),
             f"max_pool2d k={k} p={p} d={d}")


@pytest.mark.parametrize("value", DIVISORS, ids=repr)
def test_avg_pool_divisor_override_forms(torch, value):
    _compare(lambda: F.avg_pool2d(nc.tensor(X), 2, divisor_override=value),
             lambda: torch.nn.functional.avg_pool2d(torch.tensor(X), 2, divisor_override=value),
             f"avg_pool2d divisor_override={value!r}")


@pytest.mark.parametrize("value", FORMS + [(None, 3), (3, None), (None,), (0, 2), [2, 3]],
                         ids=repr)
def test_adaptive_avg_pool_forms(torch, value):
    if value in ("same", "valid"):                   # a str is no output size: both refuse
        with pytest.raises(TypeError, match="adaptive_avg_pool2d: output_size must be"):
            F.adaptive_avg_pool2d(nc.tensor(X), value)
        with pytest.raises(Exception):  # noqa: B017 - PyTorch reads it as sizes, fails on rank
            torch.nn.functional.adaptive_avg_pool2d(torch.tensor(X), value)
        return
    _compare(lambda: F.adaptive_avg_pool2d(nc.tensor(X), value),
             lambda: torch.nn.functional.adaptive_avg_pool2d(torch.tensor(X), _t(value)),
             f"adaptive_avg_pool2d output_size={value!r}")


def test_the_three_opinfo_samples_of_the_issue(torch):
    """PyTorch's OpInfo samples for avg_pool2d that numcnn used to refuse."""
    tf = torch.nn.functional
    for kwargs in ({"kernel_size": 2, "padding": (1,)}, {"kernel_size": (2, 2), "stride": ()},
                   {"kernel_size": 2, "divisor_override": -2}):
        x = nc.tensor(X, requires_grad=True)
        tx = torch.tensor(X, requires_grad=True)
        y, ty = F.avg_pool2d(x, **kwargs), tf.avg_pool2d(tx, **kwargs)
        g = np.random.default_rng(2).standard_normal(y.shape)
        y.backward(g)
        ty.backward(torch.tensor(g))
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12)


def test_layers_take_the_same_forms(torch):
    x = X.astype(np.float32)
    for ours, theirs in ((nc.nn.AvgPool2d(2, stride=(), padding=(1,), divisor_override=-3),
                          torch.nn.AvgPool2d(2, stride=(), padding=(1,), divisor_override=-3)),
                         (nc.nn.MaxPool2d((3,), (), (1,), dilation=(2,)),
                          torch.nn.MaxPool2d((3,), (), (1,), dilation=(2,))),
                         (nc.nn.AdaptiveAvgPool2d((0, 2)), torch.nn.AdaptiveAvgPool2d((0, 2)))):
        np.testing.assert_allclose(ours(x).data, theirs(torch.tensor(x)).numpy(), rtol=1e-6)


def test_refusals_name_the_argument():
    with pytest.raises(TypeError, match=r"stride must be an int or a pair of ints \(or a "
                                        r"1-tuple\), got \(\)"):
        F.conv2d(nc.tensor(X), nc.tensor(W), stride=())
    with pytest.raises(TypeError, match=r"output_size must be an int or a pair of ints, got "
                                        r"\(2,\)"):
        F.adaptive_avg_pool2d(nc.tensor(X), (2,))
    with pytest.raises(ValueError, match="divisor must be not zero"):
        F.avg_pool2d(nc.tensor(X), 2, divisor_override=0)
    with pytest.raises(ValueError, match=r"padding 2 on the height axis is more than half the "
                                         r"kernel size 3; pad should be at most 1"):
        F.max_pool2d(nc.tensor(X), 3, 1, 2, 2)      # PyTorch ignores the dilation here
