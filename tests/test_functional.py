"""``numcnn.functional``: every differentiable function against central finite differences
(``numcnn.gradcheck``, float64, random upstream weights), the shape and dtype of every gradient in
float32 and float64, and PyTorch's values and gradients where semantics must match exactly.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numcnn.functional as F
from numcnn import gradcheck, tensor

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")


# --- input makers ---------------------------------------------------------------------------

def normal(*shape):
    return lambda rng: rng.standard_normal(shape)


def positive(*shape):
    return lambda rng: rng.uniform(0.5, 2.0, shape)


def away_from_zero(*shape):
    def make(rng):
        z = rng.standard_normal(shape)
        return np.sign(z) * (0.1 + np.abs(z))
    return make


def distinct(*shape):
    """Values at least 0.09 apart: max pooling's argmax cannot flip under a 1e-6 perturbation."""
    def make(rng):
        size = int(np.prod(shape))
        return (rng.permutation(size).reshape(shape) - size / 2) * 0.1 \
            + rng.uniform(0, 0.01, shape)
    return make


def make_inputs(makers, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [tensor(m(rng).astype(dtype), requires_grad=True) for m in makers]


TARGET = np.array([0, 2, 1, 2, 3])
RUNNING_MEAN = np.array([0.1, -0.2, 0.3])
RUNNING_VAR = np.array([0.5, 1.5, 2.0])


def conv_case(x, w, bias=True, **kw):
    """(x shape, w shape, with bias, conv2d keyword arguments)."""
    return x, w, bias, kw


def conv_fn(kw, method="gemm"):
    return lambda *t: F.conv2d(*t, method=method, **kw)


def conv_makers(x, w, bias):
    return [normal(*x), normal(*w)] + ([normal(w[0])] if bias else [])


CONV_CASES = {
    "plain": conv_case((2, 3, 5, 6), (4, 3, 3, 2)),
    "no_bias": conv_case((2, 2, 4, 5), (3, 2, 2, 3), bias=False),
    "stride2_pad1": conv_case((2, 2, 6, 5), (3, 2, 3, 3), stride=2, padding=1),
    "rectangular_all": conv_case((1, 2, 7, 6), (2, 2, 3, 2), stride=(2, 3), padding=(1, 0),
                                 dilation=(1, 2)),
    "groups": conv_case((1, 4, 5, 5), (6, 2, 3, 3), groups=2, padding=1),
    "depthwise": conv_case((1, 3, 6, 5), (3, 1, 2, 2), groups=3, stride=2),
    "same_even_kernel": conv_case((1, 2, 5, 4), (2, 2, 2, 3), padding="same", dilation=(2, 1)),
    "valid": conv_case((1, 2, 4, 4), (1, 2, 3, 3), padding="valid"),
    "stride_gt_kernel_remainder": conv_case((1, 1, 7, 8), (2, 1, 2, 2), stride=3),
    "padding_gt_kernel": conv_case((1, 1, 3, 3), (1, 1, 2, 2), padding=3),
    "dilation_remainder": conv_case((1, 1, 8, 8), (1, 1, 3, 3), stride=2, padding=1,
                                    dilation=2),
    "pointwise": conv_case((2, 3, 3, 4), (2, 3, 1, 1)),
    "unbatched": conv_case((3, 5, 4), (2, 3, 3, 3)),
}


def pool_case(fn, x, maker=normal, **kw):
    return lambda t: fn(t, **kw), [maker(*x)]


POOL_CASES = {
    "avg_k2": pool_case(F.avg_pool2d, (2, 2, 4, 5), kernel_size=2),
    "avg_overlap": pool_case(F.avg_pool2d, (1, 2, 5, 5), kernel_size=3, stride=2),
    "avg_gap": pool_case(F.avg_pool2d, (1, 1, 7, 7), kernel_size=2, stride=3),
    "avg_pad_exclude": pool_case(F.avg_pool2d, (1, 2, 5, 6), kernel_size=(3, 2), stride=2,
                                 padding=1, count_include_pad=False),
    "avg_ceil": pool_case(F.avg_pool2d, (1, 1, 6, 5), kernel_size=3, stride=2, padding=1,
                          ceil_mode=True),
    "avg_ceil_exclude": pool_case(F.avg_pool2d, (1, 1, 5, 7), kernel_size=2, stride=2,
                                  padding=1, ceil_mode=True, count_include_pad=False),
    "avg_divisor_override": pool_case(F.avg_pool2d, (1, 2, 4, 4), kernel_size=2,
                                      divisor_override=3),
    "avg_unbatched": pool_case(F.avg_pool2d, (2, 4, 4), kernel_size=2, stride=1),
    "max_k2": pool_case(F.max_pool2d, (2, 2, 4, 5), distinct, kernel_size=2),
    "max_overlap": pool_case(F.max_pool2d, (1, 2, 5, 5), distinct, kernel_size=3, stride=1),
    "max_pad_ceil": pool_case(F.max_pool2d, (1, 1, 6, 5), distinct, kernel_size=3, stride=2,
                              padding=1, ceil_mode=True),
    "max_dilation": pool_case(F.max_pool2d, (1, 2, 7, 6), distinct, kernel_size=(2, 3),
                              stride=(2, 1), padding=(1, 1), dilation=(3, 2)),
    "max_unbatched": pool_case(F.max_pool2d, (2, 5, 4), distinct, kernel_size=2),
    "adaptive_down": pool_case(F.adaptive_avg_pool2d, (1, 2, 7, 5), output_size=(3, 2)),
    "adaptive_up": pool_case(F.adaptive_avg_pool2d, (1, 1, 3, 2), output_size=(5, 4)),
    "adaptive_global": pool_case(F.adaptive_avg_pool2d, (2, 3, 4, 3), output_size=1),
    "adaptive_none": pool_case(F.adaptive_avg_pool2d, (1, 1, 5, 4), output_size=(None, 2)),
}

OTHER_CASES = {
    "linear": (F.linear, [normal(4, 3), normal(5, 3), normal(5)]),
    "linear_no_bias": (F.linear, [normal(4, 3), normal(2, 3)]),
    "linear_3d_input": (F.linear, [normal(2, 4, 3), normal(5, 3), normal(5)]),
    "relu": (F.relu, [away_from_zero(3, 4)]),
    "leaky_relu": (lambda t: F.leaky_relu(t, 0.2), [away_from_zero(3, 4)]),
    "leaky_relu_default": (F.leaky_relu, [away_from_zero(3, 4)]),
    "tanh": (F.tanh, [normal(3, 4)]),
    "sigmoid": (F.sigmoid, [normal(3, 4)]),
    "softmax": (F.softmax, [normal(3, 4)]),
    "softmax_dim0": (lambda t: F.softmax(t, dim=0), [normal(3, 4)]),
    "softmax_dim1_4d": (lambda t: F.softmax(t, dim=1), [normal(2, 3, 2, 2)]),
    "log_softmax": (F.log_softmax, [normal(3, 4)]),
    "log_softmax_dim0": (lambda t: F.log_softmax(t, dim=0), [normal(3, 4)]),
    "cross_entropy": (lambda t: F.cross_entropy(t, TARGET), [normal(5, 4)]),
    "cross_entropy_sum": (lambda t: F.cross_entropy(t, TARGET, reduction="sum"), [normal(5, 4)]),
    "cross_entropy_none": (lambda t: F.cross_entropy(t, TARGET, reduction="none"),
                           [normal(5, 4)]),
    "cross_entropy_smoothing": (lambda t: F.cross_entropy(t, TARGET, label_smoothing=0.1),
                                [normal(5, 4)]),
    "cross_entropy_smoothing_none": (
        lambda t: F.cross_entropy(t, TARGET, reduction="none", label_smoothing=0.3),
        [normal(5, 4)]),
    "nll_loss": (lambda t: F.nll_loss(t, TARGET), [normal(5, 4)]),
    "nll_loss_sum": (lambda t: F.nll_loss(t, TARGET, reduction="sum"), [normal(5, 4)]),
    "nll_loss_none": (lambda t: F.nll_loss(t, TARGET, reduction="none"), [normal(5, 4)]),
    "mse_loss": (F.mse_loss, [normal(3, 4), normal(3, 4)]),
    "mse_loss_sum": (lambda a, b: F.mse_loss(a, b, reduction="sum"), [normal(2, 3), normal(2, 3)]),
    "mse_loss_none": (lambda a, b: F.mse_loss(a, b, reduction="none"),
                      [normal(2, 3), normal(2, 3)]),
    "pad_last_axis": (lambda t: F.pad(t, (1, 2)), [normal(2, 3)]),
    "pad_two_axes_value": (lambda t: F.pad(t, (0, 1, 2, 0), value=1.5), [normal(2, 2, 3)]),
    "pad_all_axes": (lambda t: F.pad(t, (1, 1, 0, 2, 1, 0)), [normal(2, 2, 2)]),
    "batch_norm_train_2d": (
        lambda x, w, b: F.batch_norm(x, RUNNING_MEAN.copy(), RUNNING_VAR.copy(), w, b,
                                     training=True),
        [normal(5, 3), positive(3), normal(3)]),
    "batch_norm_train_4d": (
        lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
        [normal(2, 3, 2, 3), positive(3), normal(3)]),
    "batch_norm_train_no_affine": (
        lambda x: F.batch_norm(x, None, None, training=True), [normal(4, 3, 2)]),
    "batch_norm_eval": (
        lambda x, w, b: F.batch_norm(x, RUNNING_MEAN, RUNNING_VAR, w, b, training=False),
        [normal(2, 3, 2, 2), positive(3), normal(3)]),
    "dropout": (lambda t: F.dropout(t, 0.3, rng=np.random.default_rng(7)), [normal(4, 5)]),
    "dropout_eval": (lambda t: F.dropout(t, 0.3, training=False), [normal(4, 5)]),
    "flatten": (F.flatten, [normal(2, 3, 4)]),
    "flatten_from_1": (lambda t: F.flatten(t, 1), [normal(2, 3, 2, 2)]),
}

ALL_CASES = {**{f"conv2d_{name}": (conv_fn(kw), conv_makers(x, w, bias))
                for name, (x, w, bias, kw) in CONV_CASES.items()},
             **POOL_CASES, **OTHER_CASES}


@pytest.mark.parametrize("name", sorted(ALL_CASES))
def test_gradcheck(name):
    fn, makers = ALL_CASES[name]
    assert gradcheck(fn, make_inputs(makers))


@pytest.mark.parametrize("name", sorted(CONV_CASES))
def test_gradcheck_conv2d_inserted_method(name):
    x, w, bias, kw = CONV_CASES[name]
    assert gradcheck(conv_fn(kw, "inserted"), make_inputs(conv_makers(x, w, bias)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(ALL_CASES))
def test_gradients_keep_shape_and_dtype(name, dtype):
    """float32 in -> float32 out, float32 gradients; each gradient has its variable's shape."""
    fn, makers = ALL_CASES[name]
    inputs = make_inputs(makers, dtype)
    out = fn(*inputs)
    assert out.dtype == dtype
    gy = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
    out.backward(gy)
    for t in inputs:
        assert t.grad is not None, name
        assert t.grad.shape == t.shape and t.grad.dtype == dtype, name


# --- unbatched inputs -------------------------------------------------------------------------

@pytest.mark.parametrize("op, kwargs", [
    (F.conv2d, None),
    (F.avg_pool2d, {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
    (F.max_pool2d, {"kernel_size": 2, "stride": 1, "dilation": 2}),
    (F.adaptive_avg_pool2d, {"output_size": (2, 3)}),
])
def test_unbatched_input_equals_the_batched_result(op, kwargs, rng):
    x = rng.standard_normal((3, 6, 5))
    w = tensor(rng.standard_normal((2, 3, 3, 2)), requires_grad=True)
    call = (lambda t: op(t, w, stride=2, padding=1)) if op is F.conv2d else \
        (lambda t: op(t, **kwargs))
    x3 = tensor(x, requires_grad=True)
    x4 = tensor(x[None], requires_grad=True)
    y3, y4 = call(x3), call(x4)
    assert y3.ndim == 3 and y3.shape == y4.shape[1:]
    np.testing.assert_array_equal(y3.data, y4.data[0])
    gy = rng.standard_normal(y3.shape)
    y3.backward(gy)
    y4.backward(gy[None])
    assert x3.grad.shape == x.shape
    np.testing.assert_allclose(x3.grad, x4.grad[0], rtol=1e-15)


def test_max_pool_unbatched_return_indices(rng, torch):
    x = rng.standard_normal((2, 5, 6))
    y, idx = F.max_pool2d(tensor(x), 3, 2, 1, return_indices=True)
    ty, tidx = torch.nn.functional.max_pool2d(torch.tensor(x), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(y.data, ty.numpy())
    np.testing.assert_array_equal(idx, tidx.numpy())


# --- PyTorch parity of the non-convolutional functions ----------------------------------------

def torch_grads(torch, fn, arrays, gy):
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ts)
    out.backward(torch.tensor(gy))
    return out.detach().numpy(), [t.grad.numpy() for t in ts]


def numcnn_grads(fn, arrays, gy):
    ts = [tensor(a, requires_grad=True) for a in arrays]
    out = fn(*ts)
    out.backward(gy)
    return out.data, [t.grad for t in ts]


def assert_same(torch, ours, theirs, arrays, out_shape, rng, rtol=1e-12):
    gy = rng.standard_normal(out_shape) if out_shape else np.float64(rng.standard_normal())
    y, grads = numcnn_grads(ours, arrays, gy)
    ty, tgrads = torch_grads(torch, theirs, arrays, gy)
    np.testing.assert_allclose(y, ty, rtol=rtol, atol=1e-13)
    for g, tg in zip(grads, tgrads):
        np.testing.assert_allclose(g, tg, rtol=rtol, atol=1e-13)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 0.7])
def test_cross_entropy_matches_torch(reduction, smoothing, rng, torch):
    x = rng.standard_normal((5, 4)) * 3
    t = torch.tensor(TARGET)
    assert_same(
        torch,
        lambda a: F.cross_entropy(a, TARGET, reduction=reduction, label_smoothing=smoothing),
        lambda a: torch.nn.functional.cross_entropy(a, t, reduction=reduction,
                                                    label_smoothing=smoothing),
        [x], (5,) if reduction == "none" else (), rng)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_and_mse_match_torch(reduction, rng, torch):
    t = torch.tensor(TARGET)
    assert_same(torch, lambda a: F.nll_loss(a, TARGET, reduction=reduction),
                lambda a: torch.nn.functional.nll_loss(a, t, reduction=reduction),
                [rng.standard_normal((5, 4))], (5,) if reduction == "none" else (), rng)
    assert_same(torch, lambda a, b: F.mse_loss(a, b, reduction=reduction),
                lambda a, b: torch.nn.functional.mse_loss(a, b, reduction=reduction),
                [rng.standard_normal((3, 4)), rng.standard_normal((3, 4))],
                (3, 4) if reduction == "none" else (), rng)


def test_cross_entropy_is_stable_for_huge_logits(torch):
    x = np.array([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 999.0]])
    target = np.array([0, 2])
    xt = tensor(x, requires_grad=True)
    loss = F.cross_entropy(xt, target)
    loss.backward()
    tx = torch.tensor(x, requires_grad=True)
    tl = torch.nn.functional.cross_entropy(tx, torch.tensor(target))
    tl.backward()
    assert np.isfinite(loss.item()) and np.all(np.isfinite(xt.grad))
    np.testing.assert_allclose(loss.item(), tl.item(), rtol=1e-12)
    np.testing.assert_allclose(xt.grad, tx.grad.numpy(), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_and_log_softmax_match_torch(dim, rng, torch):
    x = [rng.standard_normal((3, 4, 2)) * 4]
    assert_same(torch, lambda a: F.softmax(a, dim=dim),
                lambda a: torch.softmax(a, dim=dim), x, (3, 4, 2), rng)
    assert_same(torch, lambda a: F.log_softmax(a, dim=dim),
                lambda a: torch.log_softmax(a, dim=dim), x, (3, 4, 2), rng)


def test_linear_activations_pad_match_torch(rng, torch):
    tf = torch.nn.functional
    x, w, b = rng.standard_normal((2, 3, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)
    assert_same(torch, F.linear, tf.linear, [x, w, b], (2, 3, 5), rng)
    assert_same(torch, lambda a: F.leaky_relu(a, 0.3), lambda a: tf.leaky_relu(a, 0.3), [x],
                x.shape, rng)
    assert_same(torch, F.relu, tf.relu, [x], x.shape, rng)
    assert_same(torch, F.tanh, torch.tanh, [x], x.shape, rng)
    assert_same(torch, F.sigmoid, torch.sigmoid, [x], x.shape, rng)
    assert_same(torch, lambda a: F.pad(a, (1, 2, 0, 3), value=-2.0),
                lambda a: tf.pad(a, (1, 2, 0, 3), value=-2.0), [x], (2, 6, 7), rng)
    assert_same(torch, lambda a: F.flatten(a, 1), lambda a: torch.flatten(a, 1), [x], (2, 12),
                rng)


def test_relu_gradient_at_zero_is_zero():
    x = tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    F.relu(x).backward(np.array([5.0, 5.0, 5.0]))
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 5.0])


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (2, 3, 4, 3)])
@pytest.mark.parametrize("affine", [True, False])
def test_batch_norm_train_matches_torch(shape, affine, rng, torch):
    x = rng.standard_normal(shape) * 2 + 1
    w, b = rng.uniform(0.5, 2, 3), rng.standard_normal(3)
    rm, rv = RUNNING_MEAN.copy(), RUNNING_VAR.copy()
    trm, trv = torch.tensor(RUNNING_MEAN), torch.tensor(RUNNING_VAR)
    arrays = [x, w, b] if affine else [x]
    assert_same(
        torch,
        lambda *t: F.batch_norm(t[0], rm, rv, *t[1:], training=True, momentum=0.2),
        lambda *t: torch.nn.functional.batch_norm(t[0], trm, trv, *t[1:], training=True,
                                                  momentum=0.2),
        arrays, shape, rng, rtol=1e-10)
    np.testing.assert_allclose(rm, trm.numpy(), rtol=1e-12)
    np.testing.assert_allclose(rv, trv.numpy(), rtol=1e-12)


def test_batch_norm_eval_matches_torch(rng, torch):
    x, w, b = rng.standard_normal((2, 3, 2, 2)), rng.uniform(0.5, 2, 3), rng.standard_normal(3)
    assert_same(
        torch,
        lambda *t: F.batch_norm(t[0], RUNNING_MEAN, RUNNING_VAR, *t[1:], training=False),
        lambda *t: torch.nn.functional.batch_norm(t[0], torch.tensor(RUNNING_MEAN),
                                                  torch.tensor(RUNNING_VAR), *t[1:],
                                                  training=False),
        [x, w, b], x.shape, rng, rtol=1e-12)


def test_batch_norm_float32_with_float64_running_stats():
    x = tensor(np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32),
               requires_grad=True)
    y = F.batch_norm(x, RUNNING_MEAN, RUNNING_VAR, training=False)
    assert y.dtype == np.float32
    y.backward(np.ones((4, 3), np.float32) * np.arange(1, 5, dtype=np.float32)[:, None])
    assert x.grad.dtype == np.float32


def test_dropout_mask_scaling_and_gradient():
    x = tensor(np.ones((200, 50)), requires_grad=True)
    y = F.dropout(x, 0.25, rng=np.random.default_rng(3))
    kept = y.data != 0
    assert 0.70 < kept.mean() < 0.80
    np.testing.assert_allclose(y.data[kept], 1 / 0.75, rtol=1e-15)
    gy = np.random.default_rng(4).standard_normal(x.shape)
    y.backward(gy)
    np.testing.assert_allclose(x.grad, np.where(kept, gy / 0.75, 0.0), rtol=1e-15)
    same = F.dropout(tensor(np.ones((200, 50))), 0.25, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(same.data, y.data)                 # a fixed rng repeats
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    assert not F.dropout(x, 1.0).data.any()
    assert F.dropout(tensor(np.ones(3, np.float32)), 0.5).dtype == np.float32


@settings(max_examples=25)
@given(N=st.integers(1, 3), C=st.integers(2, 5), seed=st.integers(0, 2**32 - 1),
       smoothing=st.sampled_from([0.0, 0.05, 0.5]))
def test_cross_entropy_property_gradcheck(N, C, seed, smoothing):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, C, N)
    x = tensor(rng.standard_normal((N, C)) * 2, requires_grad=True)
    assert gradcheck(lambda t: F.cross_entropy(t, target, label_smoothing=smoothing), (x,))
