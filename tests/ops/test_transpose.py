"""conv_transpose2d: the adjoint of conv2d (docs/math.md §11), checked four ways.

1. the adjoint identity ``<conv2d(z, W), x> == <z, conv_transpose2d(x, W)>`` and, on its own
   kernels, ``<gy, T(x)> == <T_input(gy), x> == <T_weight(x, gy), W>``;
2. central finite differences (``numcnn.gradcheck``, float64);
3. the naive loops of ``numcnn.reference`` (written as the scatter the definition reads);
4. PyTorch CPU, forward and every gradient, float64 and float32.

Plus: conv_transpose2d(gY, W, s, p, output_padding=r) is conv2d's input gradient for every conv
geometry drawn, unbatched input, and every refusal next to PyTorch's.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numcnn import functional as F
from numcnn import gradcheck
from numcnn import reference as ref
from numcnn.autograd import tensor
from numcnn.ops import (
    conv2d_forward,
    conv2d_forward_and_weight,
    conv2d_input,
    conv2d_weight,
    transpose,
)
from numcnn.ops.shapes import conv_geometry
from strategies import SEEDS, t_configs


def inner(a, b):
    return float(np.vdot(a.ravel(), b.ravel()))


# --- 1. adjoint identities --------------------------------------------------------------------

@settings(max_examples=80)
@given(cfg=t_configs(), seed=SEEDS)
def test_adjoint_of_conv2d(cfg, seed):
    """<conv2d(z, W), x> == <z, conv_transpose2d(x, W)> for z of the transposed output's shape.

    conv2d with the same W maps (N, C_out, Ho, Wo) back to (N, C_in, H + ⌊r/s⌋, ...): exactly
    H rows when r < s; with s <= r < d the extra rows meet x's zero extension, so they are
    cropped off."""
    x, w, _, z = cfg.arrays(seed)
    y = transpose.conv_transpose2d_forward(x, w, None, **cfg.kwargs)
    assert y.shape == z.shape
    kz = conv2d_forward(z, w, None, **cfg.conv_kwargs)
    if cfg.output_padding[0] < cfg.stride[0] and cfg.output_padding[1] < cfg.stride[1]:
        assert kz.shape == x.shape
    lhs, rhs = inner(kz[..., :cfg.H, :cfg.W], x), inner(z, y)
    assert abs(lhs - rhs) <= 1e-12 * (np.abs(z).sum() * np.abs(x).max() * np.abs(w).max()
                                      * w[0].size * 4 + 1)


@settings(max_examples=80)
@given(cfg=t_configs(), seed=SEEDS)
def test_adjoint_identity_of_the_backward_kernels(cfg, seed):
    """<gy, T(x, W)> == <T_input(gy, W), x> == <T_weight(x, gy), W>, and the bias likewise."""
    x, w, b, gy = cfg.arrays(seed)
    y = transpose.conv_transpose2d_forward(x, w, None, **cfg.kwargs)
    gx = transpose.conv_transpose2d_input(x.shape, w, gy, **cfg.kwargs)
    gw = transpose.conv_transpose2d_weight(x, w.shape, gy, **cfg.kwargs)
    gb = transpose.conv_transpose2d_bias(gy)
    assert (gx.shape, gw.shape, gb.shape) == (x.shape, w.shape, b.shape)
    bound = 1e-12 * (np.abs(gy).sum() * np.abs(x).max() * np.abs(w).max() * w[0].size * 4 + 1)
    lhs = inner(gy, y)
    assert abs(inner(gx, x) - lhs) <= bound
    assert abs(inner(gw, w) - lhs) <= bound
    with_b = transpose.conv_transpose2d_forward(x, w, b, **cfg.kwargs)
    np.testing.assert_allclose(inner(gy, with_b - y), inner(gb, b), rtol=1e-10, atol=1e-10)


@settings(max_examples=60)
@given(data=st.data(), seed=SEEDS)
def test_is_the_conv2d_input_gradient(data, seed):
    """conv_transpose2d(gY, W, s, p, output_padding=r, g, d) == conv2d's gX, with r the rows the
    conv's windows never reached ((H + 2p − k_eff) mod s), for every conv geometry drawn."""
    g = data.draw(st.integers(1, 3))
    C_in, C_out = g * data.draw(st.integers(1, 2)), g * data.draw(st.integers(1, 2))
    axes = []
    for _ in range(2):
        k, s, d = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4)), \
            data.draw(st.integers(1, 3))
        out, r = data.draw(st.integers(1, 3)), data.draw(st.integers(0, s - 1))
        span = s * (out - 1) + d * (k - 1) + 1 + r
        p = data.draw(st.integers(0, min(3, (span - 1) // 2)))
        axes.append((span - 2 * p, k, s, d, p))
    (H, kh, sh, dh, ph), (W, kw, sw, dw, pw) = axes
    rng = np.random.default_rng(seed)
    x_shape, w = (2, C_in, H, W), rng.standard_normal((C_out, C_in // g, kh, kw))
    geo = conv_geometry(x_shape, w.shape, (sh, sw), (ph, pw), (dh, dw), g)
    gy = rng.standard_normal(geo.output_shape)
    gx = conv2d_input(x_shape, w, gy, (sh, sw), (ph, pw), (dh, dw), g)
    out = F.conv_transpose2d(gy, w, stride=(sh, sw), padding=(ph, pw),
                             output_padding=(geo.rh, geo.rw), groups=g, dilation=(dh, dw))
    assert out.shape == gx.shape
    np.testing.assert_allclose(out.data, gx, rtol=1e-12, atol=1e-12)


# --- 2. finite differences --------------------------------------------------------------------

GRADCHECK_CASES = {
    "plain": ((2, 3, 3, 4), (3, 2, 3, 2), {}),
    "stride2-pad1-op1": ((1, 2, 3, 3), (2, 3, 3, 3), {"stride": 2, "padding": 1, "output_padding": 1}),
    "stride>kernel": ((2, 2, 2, 3), (2, 1, 2, 2), {"stride": (3, 4), "output_padding": (2, 1)}),
    "dilation-groups": ((1, 4, 3, 2), (4, 1, 2, 3), {"dilation": (2, 1), "groups": 2, "padding": 1}),
    "op<dilation": ((1, 2, 3, 3), (2, 2, 2, 2), {"dilation": 3, "output_padding": 2}),
    "asymmetric": ((2, 3, 2, 5), (3, 2, 4, 1), {"stride": (2, 1), "padding": (1, 0),
                                                    "output_padding": (1, 0), "groups": 1}),
}


@pytest.mark.parametrize("name", list(GRADCHECK_CASES))
@pytest.mark.parametrize("bias", [True, False])
def test_gradcheck(name, bias):
    x_shape, w_shape, kw = GRADCHECK_CASES[name]
    rng = np.random.default_rng(3)
    groups = kw.get("groups", 1)
    inputs = [tensor(rng.standard_normal(x_shape), requires_grad=True),
              tensor(rng.standard_normal(w_shape), requires_grad=True)]
    if bias:
        inputs.append(tensor(rng.standard_normal(w_shape[1] * groups), requires_grad=True))
    assert gradcheck(lambda *t: F.conv_transpose2d(*t, **kw), tuple(inputs))


def test_gradcheck_unbatched():
    rng = np.random.default_rng(4)
    x = tensor(rng.standard_normal((2, 3, 3)), requires_grad=True)
    w = tensor(rng.standard_normal((2, 3, 2, 2)), requires_grad=True)
    assert gradcheck(lambda a, b: F.conv_transpose2d(a, b, stride=2, output_padding=1), (x, w))


# --- 3. reference loops -----------------------------------------------------------------------

@settings(max_examples=25)
@given(cfg=t_configs(max_in=3), seed=SEEDS)
def test_matches_reference_loops(cfg, seed):
    x, w, b, gy = cfg.arrays(seed)
    y = transpose.conv_transpose2d_forward(x, w, b, **cfg.kwargs)
    np.testing.assert_allclose(y, ref.conv_transpose2d(x, w, b, **cfg.kwargs),
                               rtol=1e-12, atol=1e-12)
    gx, gw, gb = ref.conv_transpose2d_backward(x, w, gy, **cfg.kwargs)
    np.testing.assert_allclose(transpose.conv_transpose2d_input(x.shape, w, gy, **cfg.kwargs),
                               gx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(transpose.conv_transpose2d_weight(x, w.shape, gy, **cfg.kwargs),
                               gw, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(transpose.conv_transpose2d_bias(gy), gb, rtol=1e-12, atol=1e-12)


def test_reference_float32_in_float32_out():
    x = np.ones((1, 1, 2, 2), np.float32)
    w = np.ones((1, 2, 2, 2), np.float32)
    y = ref.conv_transpose2d(x, w, stride=2)
    assert y.dtype == np.float32 and y.shape == (1, 2, 4, 4) and np.all(y == 1)
    assert all(g.dtype == np.float32 for g in ref.conv_transpose2d_backward(x, w, y, stride=2))


def test_worked_example_by_hand():
    """Each input pixel stamps a kernel-weighted copy: stride 2 leaves gaps, overlaps add."""
    x = np.array([[[[1.0, 2.0]]]])                                   # (1, 1, 1, 2)
    w = np.array([[[[1.0, 10.0, 100.0]]]])                           # (1, 1, 1, 3)
    y = transpose.conv_transpose2d_forward(x, w, stride=2)
    np.testing.assert_array_equal(y[0, 0], [[1.0, 10.0, 102.0, 20.0, 200.0]])
    y = transpose.conv_transpose2d_forward(x, w, stride=(1, 2), padding=(0, 1),
                                           output_padding=(0, 1))
    np.testing.assert_array_equal(y[0, 0], [[10.0, 102.0, 20.0, 200.0]])


# --- the backward computes both gradients from one gather -----------------------------------

@settings(max_examples=40)
@given(cfg=t_configs(), seed=SEEDS)
def test_one_gather_for_both_gradients_equals_the_two_kernels(cfg, seed):
    """With x and W both requiring a gradient, the backward takes both from one gather of gY's
    columns (``conv2d_forward_and_weight``); with only one, from its own kernel. All agree."""
    x, w, _, gy = cfg.arrays(seed)
    grads = {}
    for needs in ((True, True), (True, False), (False, True)):
        xn, wn = tensor(x, requires_grad=needs[0]), tensor(w, requires_grad=needs[1])
        F.conv_transpose2d(xn, wn, **cfg.kwargs).backward(gy)
        grads[needs] = (xn.grad, wn.grad)
    np.testing.assert_allclose(grads[True, True][0], grads[True, False][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads[True, True][1], grads[False, True][1], rtol=1e-12, atol=1e-12)
    assert grads[True, False][1] is None and grads[False, True][0] is None


def test_forward_and_weight_kernel_matches_the_separate_kernels(rng):
    x, w = rng.standard_normal((5, 4, 9, 8)), rng.standard_normal((6, 2, 3, 2))
    kw = {"stride": (2, 1), "padding": (1, 0), "dilation": (1, 2), "groups": 2}
    y = conv2d_forward(x, w, None, **kw)
    gy = rng.standard_normal(y.shape)
    y2, gw = conv2d_forward_and_weight(x, w, gy, **kw)
    np.testing.assert_allclose(y2, y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw, conv2d_weight(x, w.shape, gy, **kw), rtol=1e-12, atol=1e-12)
    y0, gw0 = conv2d_forward_and_weight(x[:0], w, gy[:0], **kw)        # an empty batch
    assert y0.shape == (0,) + y.shape[1:] and not gw0.any() and gw0.shape == w.shape
    with pytest.raises(ValueError, match=r"gy must have the output's shape \(5, 6, 5, 6\)"):
        conv2d_forward_and_weight(x, w, gy[:, :, :-1], **kw)


# --- 4. PyTorch as the oracle -----------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@settings(max_examples=40)
@given(cfg=t_configs(), seed=SEEDS, use_bias=st.booleans())
def test_matches_torch(torch, cfg, seed, use_bias, dtype):
    x, w, b, gy = cfg.arrays(seed, dtype)
    b = b if use_bias else None
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    yt = torch.nn.functional.conv_transpose2d(xt, wt, bt, **cfg.kwargs)
    yt.backward(torch.tensor(gy))
    xn, wn = tensor(x, requires_grad=True), tensor(w, requires_grad=True)
    bn = None if b is None else tensor(b, requires_grad=True)
    y = F.conv_transpose2d(xn, wn, bn, **cfg.kwargs)
    y.backward(gy)
    tol = {"rtol": 1e-11, "atol": 1e-11} if dtype == np.float64 else {"rtol": 2e-4, "atol": 2e-4}
    assert y.dtype == xn.grad.dtype == wn.grad.dtype == dtype
    np.testing.assert_allclose(y.data, yt.detach().numpy(), **tol)
    np.testing.assert_allclose(xn.grad, xt.grad.numpy(), **tol)
    np.testing.assert_allclose(wn.grad, wt.grad.numpy(), **tol)
    if b is not None:
        np.testing.assert_allclose(bn.grad, bt.grad.numpy(), **tol)


def test_decoder_layer_matches_torch(torch):
    """The decoder layer of the speed target (64 -> 32, 14x14 -> 28x28, k4 s2 p1), float32."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 64, 14, 14)).astype(np.float32)
    w = (rng.standard_normal((64, 32, 4, 4)) * 0.05).astype(np.float32)
    gy = rng.standard_normal((4, 32, 28, 28)).astype(np.float32)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yt = torch.nn.functional.conv_transpose2d(xt, wt, stride=2, padding=1)
    yt.backward(torch.tensor(gy))
    xn, wn = tensor(x, requires_grad=True), tensor(w, requires_grad=True)
    y = F.conv_transpose2d(xn, wn, stride=2, padding=1)
    y.backward(gy)
    assert y.shape == (4, 32, 28, 28)
    np.testing.assert_allclose(y.data, yt.detach().numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(xn.grad, xt.grad.numpy(), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(wn.grad, wt.grad.numpy(), rtol=1e-4, atol=2e-3)


def test_unbatched_input_matches_batched(torch):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 5))
    w = rng.standard_normal((4, 3, 3, 2))
    kw = {"stride": (2, 1), "padding": (1, 0), "output_padding": (1, 0), "groups": 2}
    xn = tensor(x, requires_grad=True)
    y = F.conv_transpose2d(xn, w, **kw)
    expected = torch.nn.functional.conv_transpose2d(torch.tensor(x), torch.tensor(w), **kw)
    assert y.shape == tuple(expected.shape) == (6, 6, 6)
    np.testing.assert_allclose(y.data, expected.numpy(), rtol=1e-12, atol=1e-12)
    y.backward(np.ones(y.shape) * np.arange(6.0).reshape(6, 1, 1))
    assert xn.grad.shape == x.shape


# --- refusals ---------------------------------------------------------------------------------

X, WT = (1, 4, 5, 5), (4, 3, 3, 3)
BAD = {
    # name: (x shape, w shape, kwargs, bias shape, our exception, words of our message)
    "output_padding >= stride": (X, WT, {"stride": 2, "output_padding": 2}, None, ValueError,
                                 "output_padding must be smaller than either stride or dilation"),
    "output_padding >= dilation": (X, WT, {"dilation": 2, "output_padding": (0, 2)}, None,
                                   ValueError, "output_padding=(0, 2)"),
    "negative output_padding": (X, WT, {"output_padding": -1}, None, ValueError,
                                "output_padding must be >= 0"),
    "negative padding": (X, WT, {"padding": -1}, None, ValueError, "padding must be >= 0"),
    "string padding": (X, WT, {"padding": "same"}, None, TypeError, "no 'same' or 'valid'"),
    "stride 0": (X, WT, {"stride": 0}, None, ValueError, "stride must be >= 1"),
    "no input channel": ((2, 0, 3, 3), (0, 3, 2, 2), {}, None, ValueError,
                         "conv_transpose2d: weight shape (0, 3, 2, 2) has an empty axis"),
    "dilation 0": (X, WT, {"dilation": 0}, None, ValueError, "dilation must be >= 1"),
    "groups not dividing C_in": (X, WT, {"groups": 3}, None, ValueError,
                                 "groups=3 must divide the input channels"),
    "groups 0": (X, WT, {"groups": 0}, None, ValueError, "groups must be a positive int"),
    "channel mismatch": ((1, 5, 5, 5), WT, {}, None, ValueError,
                         "input has 5 channels but weight expects 4"),
    "output too small": (X, WT, {"padding": 5}, None, ValueError, "is too small"),
    "bias of C_in": (X, WT, {}, (4,), ValueError, "bias must have shape (3,)"),
    "3-D weight": (X, (4, 3, 3), {}, None, ValueError, "weight must be 4-D"),
    "2-D input": ((4, 5), WT, {}, None, ValueError, "must be 4-D (N, C, H, W) or 3-D"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_refusals_match_torch(torch, name):
    x_shape, w_shape, kw, b_shape, exc, words = BAD[name]
    x, w = np.zeros(x_shape), np.zeros(w_shape)
    b = None if b_shape is None else np.zeros(b_shape)
    with pytest.raises((RuntimeError, ValueError, TypeError)):
        torch.nn.functional.conv_transpose2d(
            torch.tensor(x), torch.tensor(w), None if b is None else torch.tensor(b), **kw)
    with pytest.raises(exc, match=words.replace("(", r"\(").replace(")", r"\)")):
        F.conv_transpose2d(x, w, b, **kw)


def test_refuses_mixed_dtypes_and_integers():
    with pytest.raises(TypeError, match="share one dtype"):
        F.conv_transpose2d(np.zeros((1, 1, 2, 2), np.float32), np.zeros((1, 1, 2, 2)))
    with pytest.raises(TypeError, match="floating dtype"):
        F.conv_transpose2d(np.zeros((1, 1, 2, 2), np.int64), np.zeros((1, 1, 2, 2)))


def test_output_size_error_explains_the_arithmetic():
    with pytest.raises(ValueError) as err:
        F.conv_transpose2d(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 3, 3)), padding=2)
    assert "(2-1)*1 - 2*2 + 1*(3-1) + 0 + 1 = 0" in str(err.value)
    assert "use padding <= 1" in str(err.value)


def _kernel_calls(dtype):
    """Each ndarray kernel of the conv and conv_transpose2d, one argument in ``dtype``: (the
    argument's name, the call)."""
    x, w, gy = np.ones((1, 1, 6, 6)), np.ones((1, 1, 4, 4)), np.ones((1, 1, 2, 2))
    xt, gyt = np.ones((1, 1, 2, 2)), np.ones((1, 1, 6, 6))

    def bad(a):
        return a.astype(dtype)

    return {
        "conv2d_forward": ("input", lambda: conv2d_forward(bad(x), w, None, 2)),
        "conv2d_input": ("weight", lambda: conv2d_input(x.shape, bad(w), gy, 2)),
        "conv2d_weight": ("gy", lambda: conv2d_weight(x, w.shape, bad(gy), 2)),
        "conv2d_forward_and_weight": ("weight",
                                      lambda: conv2d_forward_and_weight(x, bad(w), gy, 2)),
        "conv_transpose2d_forward": ("input", lambda: transpose.conv_transpose2d_forward(
            bad(xt), w, None, 2)),
        "conv_transpose2d_input": ("gy", lambda: transpose.conv_transpose2d_input(
            xt.shape, w, bad(gyt), 2)),
        "conv_transpose2d_weight": ("input", lambda: transpose.conv_transpose2d_weight(
            bad(xt), w.shape, gyt, 2)),
    }


@pytest.mark.parametrize("dtype", [bool, np.int64, object])
@pytest.mark.parametrize("kernel", list(_kernel_calls(float)))
def test_ndarray_kernels_refuse_arrays_that_are_not_floating(kernel, dtype):
    """As torch and the bias check: a bool array would be summed as a logical or (a 4x4 kernel of
    ones over ones gave True, not 16) and an object array failed deep inside with NumPy's words."""
    name, call = _kernel_calls(dtype)[kernel]
    with pytest.raises(TypeError, match=f": {name} must have a floating dtype .* got "):
        call()
