"""``numcnn.functional.pad``: every mode (constant, reflect, replicate, circular) against PyTorch's
values and gradients, central finite differences (``numcnn.gradcheck``), the adjoint identity of
the hand-written backward, hand-computed examples and every argument error.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import numcnn.functional as F
from numcnn import gradcheck, tensor

MODES = ("constant", "reflect", "replicate", "circular")

# (mode, input shape, pad): every mode on 1, 2 and 3 padded axes, batched and unbatched,
# asymmetric amounts and negative (cropping) amounts
CASES = [
    ("constant", (5,), (2, -1)),
    ("constant", (3, 4), (-2, -2)),
    ("constant", (2, 3, 4), (1, 2, 0, 3)),
    ("constant", (2, 3, 4), (-1, 2, 3, -2, 1, 0)),
    ("constant", (2, 3, 2, 4), (0, 0, -1, 1)),
    ("reflect", (2, 5), (2, 3)),
    ("reflect", (2, 3, 5), (4, -1)),
    ("reflect", (3, 4, 5), (1, 3, -1, 2)),
    ("reflect", (2, 2, 4, 5), (3, 0, 2, -3)),
    ("reflect", (2, 3, 4, 5), (1, 2, 3, -1, 2, 1)),
    ("reflect", (1, 2, 3, 4, 5), (-2, 4, 1, 2, 2, 0)),
    ("replicate", (2, 3), (4, 1)),
    ("replicate", (2, 3, 4), (6, -2)),
    ("replicate", (2, 3, 4, 5), (3, -1, -2, 4)),
    ("replicate", (2, 3, 4), (1, 2, -1, 3)),
    ("replicate", (1, 2, 3, 3, 4), (2, 1, 0, 3, -1, 2)),
    ("circular", (2, 5), (5, 2)),
    ("circular", (2, 3, 5), (-1, 3)),
    ("circular", (2, 3, 4, 5), (2, -1, -1, 3)),
    ("circular", (2, 3, 4, 5), (1, 2, 2, -1, 3, 0)),
    ("circular", (1, 2, 3, 4, 5), (1, 2, 2, -1, 3, 0)),
]
CASE_IDS = [f"{m}-{len(s)}d-{p}" for m, s, p in CASES]


def _both(torch, x_np, pad, mode, value=None, seed=0):
    """Pad with numcnn and torch, backpropagate the same random upstream gradient through both;
    return (ours, our grad, torch's, torch's grad)."""
    x = tensor(x_np.copy(), requires_grad=True)
    y = F.pad(x, pad, mode=mode, value=value)
    w = np.random.default_rng(seed).standard_normal(y.shape).astype(x_np.dtype)
    (y * tensor(w)).sum().backward()
    tx = torch.tensor(x_np, requires_grad=True)
    ty = torch.nn.functional.pad(tx, pad, mode=mode, value=value)
    (ty * torch.tensor(w)).sum().backward()
    return y, x.grad, ty.detach().numpy(), tx.grad.numpy()


# --- values and gradients against PyTorch ----------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("mode", "shape", "pad"), CASES, ids=CASE_IDS)
def test_matches_torch(torch, rng, mode, shape, pad, dtype):
    x_np = rng.standard_normal(shape).astype(dtype)
    y, gx, ty, tgx = _both(torch, x_np, pad, mode)
    assert y.dtype == dtype and gx.dtype == dtype
    assert y.shape == ty.shape
    np.testing.assert_array_equal(y.data, ty)  # padding only copies: bit-exact
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(gx, tgx, rtol=tol, atol=tol)


@pytest.mark.filterwarnings("ignore:invalid value encountered")  # Σ w·y with y = ±inf
@pytest.mark.parametrize("value", [None, 0.0, -2.5, -np.inf])
def test_constant_value_matches_torch(torch, rng, value):
    x_np = rng.standard_normal((2, 3, 4))
    y, gx, ty, tgx = _both(torch, x_np, (2, -1, -1, 3), "constant", value=value)
    np.testing.assert_array_equal(y.data, ty)
    np.testing.assert_allclose(gx, tgx, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("mode", MODES[1:])
def test_value_zero_accepted_for_non_constant_modes(torch, rng, mode):
    x_np = rng.standard_normal((2, 4))
    y, gx, ty, tgx = _both(torch, x_np, (1, 2), mode, value=0.0)
    np.testing.assert_array_equal(y.data, ty)
    np.testing.assert_allclose(gx, tgx, rtol=1e-12, atol=1e-12)


@st.composite
def configs(draw):
    """Any mode with a rank torch accepts for it; amounts may be invalid (too large, cropping
    too much): such configurations must be rejected exactly when torch rejects them. The right
    amount is often drawn on an edge of a rule for the left one: an empty output (``-n - l``),
    reflect's limit (``n - 1``, ``n``), circular's wrap limit (``n + min(l, 0)``, one more)."""
    mode = draw(st.sampled_from(MODES))
    k = draw(st.integers(1, 3))
    extra = draw(st.integers(0, 2) if mode == "constant" else st.integers(1, 2))
    shape = tuple(draw(st.lists(st.integers(1, 5), min_size=k + extra, max_size=k + extra)))
    pad = []
    for i in range(k):  # (left, right) of the last axis first, as torch lists them
        n, left = shape[-1 - i], draw(st.integers(-5, 5))
        edges = [-n - left, n - 1, n, n + min(left, 0), n + min(left, 0) + 1]
        pad += [left, draw(st.integers(-5, 5) | st.sampled_from(edges))]
    pad = tuple(pad)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    return mode, shape, pad, dtype, draw(st.integers(0, 2**32 - 1))


def accepted(mode: str, shape: tuple, pad: tuple) -> bool:
    """The documented rule (``F.pad``'s docstring) for the amounts, per padded axis of length
    ``n`` with amounts ``(l, r)``; ranks are those :func:`configs` draws, all valid."""
    k = len(pad) // 2
    sizes = []
    for i in range(k):
        (l, r), n = pad[2 * i: 2 * i + 2], shape[-1 - i]
        kept = n + min(l, 0) + min(r, 0)
        sizes.append(n + l + r)
        if mode in ("constant", "circular") and kept < 0:
            return False
        if mode == "circular" and max(l, r) > kept:      # wraps at most once
            return False
        if mode == "reflect" and (l >= n or r >= n):
            return False
        if mode in ("reflect", "replicate") and (n == 0 or n + l + r < 0):
            return False
    return mode in ("constant", "circular") or max(sizes) >= 1


def valid_configs():
    """:func:`configs` limited to the configurations :func:`accepted` allows (about 40 %)."""
    return configs().filter(lambda c: accepted(*c[:3]))


@settings(max_examples=200)
@given(valid_configs())
def test_random_configurations_match_torch(torch, config):
    mode, shape, pad, dtype, seed = config
    x_np = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    y, gx, ty, tgx = _both(torch, x_np, pad, mode, seed=seed)  # both must accept it
    assert y.shape == ty.shape and y.dtype == dtype and gx.dtype == dtype
    np.testing.assert_array_equal(y.data, ty)
    if y.numel() == 0:
        # torch's reflect backward leaves its gradient uninitialised for an empty output
        np.testing.assert_array_equal(gx, np.zeros(shape, dtype))
    else:
        tol = 1e-5 if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(gx, tgx, rtol=tol, atol=tol)


@settings(max_examples=200)
@given(configs())
@example(config=("reflect", (1, 3), (-1, -2), np.float64, 0))      # every padded size 0
@example(config=("replicate", (2, 3), (-2, -2), np.float64, 0))    # a negative size
@example(config=("reflect", (2, 3), (0, 3), np.float64, 0))        # reflect reaches the size
@example(config=("circular", (1, 4), (-1, 4), np.float64, 0))      # wraps more than once
@example(config=("constant", (4,), (-3, -2), np.float64, 0))       # crops more than all
def test_refuses_exactly_what_the_rule_refuses(torch, config):
    """Every drawn configuration is accepted or refused as :func:`accepted` says; a refused one
    is refused by torch too (except circular padding that wraps more than once, for which torch
    sometimes returns uninitialised memory instead of raising)."""
    mode, shape, pad, dtype, seed = config
    x_np = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    if accepted(mode, shape, pad):
        sizes = list(shape)
        for i in range(len(pad) // 2):  # pad lists (left, right) from the last axis backwards
            sizes[-1 - i] += pad[2 * i] + pad[2 * i + 1]
        assert F.pad(tensor(x_np), pad, mode=mode).shape == tuple(sizes)
        return
    with pytest.raises(ValueError, match=r"^pad: (pad|padding) .*(crops|wraps|must be <|"
                                         r"needs|gives)"):
        F.pad(tensor(x_np), pad, mode=mode)
    if mode != "circular":
        with pytest.raises((RuntimeError, NotImplementedError, ValueError)):
            torch.nn.functional.pad(torch.tensor(x_np), pad, mode=mode)


# --- gradients against finite differences, adjoint identity -------------------------------------

@pytest.mark.parametrize(("mode", "shape", "pad"), CASES, ids=CASE_IDS)
def test_gradcheck(rng, mode, shape, pad):
    x = tensor(rng.standard_normal(shape), requires_grad=True)
    assert gradcheck(lambda t: F.pad(t, pad, mode=mode), (x,))


def test_gradcheck_constant_with_value(rng):
    x = tensor(rng.standard_normal((2, 3, 4)), requires_grad=True)
    assert gradcheck(lambda t: F.pad(t, (1, -2, 2, 0), value=3.0), (x,))


@settings(max_examples=150)
@given(valid_configs())
def test_backward_is_the_adjoint(config):
    """``<pad(x), w> == <x, pad_backward(w)>`` for the linear map ``x ↦ pad(x)`` (value 0)."""
    mode, shape, pad, _, seed = config
    rng = np.random.default_rng(seed)
    x = tensor(rng.standard_normal(shape), requires_grad=True)
    y = F.pad(x, pad, mode=mode)
    w = rng.standard_normal(y.shape)
    (y * tensor(w)).sum().backward()
    np.testing.assert_allclose(np.vdot(y.data, w), np.vdot(x.data, x.grad), rtol=1e-10,
                               atol=1e-10)


# --- hand-computed semantics --------------------------------------------------------------------

def row(*values):
    return np.array([values], dtype=np.float64)


@pytest.mark.parametrize(("mode", "pad", "expected", "grad"), [
    ("constant", (2, -1), [0, 0, 0, 1, 2, 3], [1, 1, 1, 1, 0]),
    ("constant", (-2, -3), [], [0, 0, 0, 0, 0]),
    ("reflect", (2, 1), [2, 1, 0, 1, 2, 3, 4, 3], [1, 2, 2, 2, 1]),
    ("reflect", (-3, 2), [3, 4, 3, 2], [0, 0, 1, 2, 1]),
    ("reflect", (4, -6), [4, 3, 2], [0, 0, 1, 1, 1]),
    ("replicate", (2, 1), [0, 0, 0, 1, 2, 3, 4, 4], [3, 1, 1, 1, 2]),
    ("replicate", (-6, 3), [4, 4], [0, 0, 0, 0, 2]),
    ("circular", (2, 1), [3, 4, 0, 1, 2, 3, 4, 0], [2, 1, 1, 2, 2]),
    ("circular", (-1, 2), [1, 2, 3, 4, 1, 2], [0, 2, 2, 1, 1]),
    ("circular", (5, 5), [0, 1, 2, 3, 4] * 3, [3, 3, 3, 3, 3]),
])
def test_hand_computed(mode, pad, expected, grad):
    x = tensor(row(0, 1, 2, 3, 4), requires_grad=True)
    y = F.pad(x, pad, mode=mode)
    np.testing.assert_array_equal(y.data, np.array([expected], dtype=np.float64).reshape(1, -1))
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, row(*grad))


def test_two_axes_corners():
    """Corners of a 2-axis pad copy along both axes: reflect mirrors, circular wraps."""
    x = np.arange(6.0).reshape(1, 2, 3)
    np.testing.assert_array_equal(F.pad(tensor(x), (1, 0, 1, 0), mode="reflect").data[0],
                                  [[4, 3, 4, 5], [1, 0, 1, 2], [4, 3, 4, 5]])
    np.testing.assert_array_equal(F.pad(tensor(x), (1, 0, 0, 1), mode="circular").data[0],
                                  [[2, 0, 1, 2], [5, 3, 4, 5], [2, 0, 1, 2]])
    np.testing.assert_array_equal(F.pad(tensor(x), (0, 1, 1, 0), mode="replicate").data[0],
                                  [[0, 1, 2, 2], [0, 1, 2, 2], [3, 4, 5, 5]])


def test_constant_pads_any_rank_and_keeps_dtype():
    x = tensor(np.ones((2, 1, 1, 1, 1, 2), dtype=np.float32))
    y = F.pad(x, (1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0), value=2.0)
    assert y.shape == (3, 1, 1, 1, 1, 4) and y.dtype == np.float32
    assert y.data[0].sum() == 4 * 2.0 and y.data[1:, ..., 1:3].sum() == 4
    assert F.pad(tensor(np.array(3.0)), ()).data == 3.0


def test_reflect_on_integer_input():
    y = F.pad(tensor(np.arange(6).reshape(2, 3)), (2, 0), mode="reflect")
    assert y.dtype == np.arange(1).dtype
    np.testing.assert_array_equal(y.data, [[2, 1, 0, 1, 2], [5, 4, 3, 4, 5]])


# --- errors -------------------------------------------------------------------------------------

X2 = np.zeros((3, 5))
ERRORS = [
    # (input, kwargs, exception, match, whether torch rejects it too)
    (X2, {"pad": (1, 1), "mode": "symmetric"}, ValueError,
     r"mode must be one of \('constant', 'reflect', 'replicate', 'circular'\), got 'symmetric'",
     True),
    (X2, {"pad": (1, 2, 3)}, ValueError, r"pad must have an even length <= 2·ndim = 4, got \(1, 2, 3\)",
     True),
    (X2, {"pad": (1,) * 6}, ValueError, r"even length <= 2·ndim = 4, got \(1, 1, 1, 1, 1, 1\)", True),
    (X2, {"pad": (1.5, 1)}, TypeError, r"pad must be a tuple or list of ints, got \(1\.5, 1\)", True),
    (X2, {"pad": (True, 1)}, TypeError, r"pad must be a tuple or list of ints, got \(True, 1\)", True),
    (X2, {"pad": 2}, TypeError, r"pad must be a tuple or list of ints, got 2", True),
    (np.zeros(5), {"pad": (1, 1), "mode": "reflect"}, ValueError,
     (r"mode='reflect' pads the last 1, 2 or 3 axes of a 2-D/3-D, 3-D/4-D or 4-D/5-D input "
     r"\(pad of length 2, 4 or 6\), got a pad of length 2 for input of shape \(5,\)"), True),
    (X2, {"pad": (1, 1, 1, 1), "mode": "replicate"}, ValueError,
     r"mode='replicate' pads .* got a pad of length 4 for input of shape \(3, 5\)", True),
    (np.zeros((1, 2, 3, 4)), {"pad": (1, 1), "mode": "circular"}, ValueError,
     r"mode='circular' pads .* got a pad of length 2 for input of shape \(1, 2, 3, 4\)", True),
    (np.zeros((1, 1, 2, 3, 4)), {"pad": (1,) * 8, "mode": "reflect"}, ValueError,
     r"got a pad of length 8 for input of shape \(1, 1, 2, 3, 4\)", True),
    (np.zeros((1, 1, 1, 2, 3, 4)), {"pad": (1,) * 6, "mode": "replicate"}, ValueError,
     r"got a pad of length 6 for input of shape \(1, 1, 1, 2, 3, 4\)", True),
    (X2, {"pad": (1, 1), "mode": "reflect", "value": 1.0}, ValueError,
     r"value is only used by mode='constant', got value=1\.0 with mode='reflect'", True),
    (X2, {"pad": (5, 0), "mode": "reflect"}, ValueError,
     (r"padding \(5, 0\) of dimension 1 of input of shape \(3, 5\): reflect padding must be < "
     r"the dimension size 5"), True),
    (np.zeros((2, 3, 5)), {"pad": (0, 1, 1, 3), "mode": "reflect"}, ValueError,
     r"padding \(1, 3\) of dimension 1 .* reflect padding must be < the dimension size 3", True),
    (X2, {"pad": (-3, -2), "mode": "reflect"}, ValueError,
     (r"pad \(-3, -2\) gives padded output sizes \(0,\) for input of shape \(3, 5\); expected at "
     r"least one >= 1"), True),
    (np.zeros((1, 4, 2)), {"pad": (-1, -1, -2, -2), "mode": "replicate"}, ValueError,
     r"gives padded output sizes \(0, 0\)", True),
    (X2, {"pad": (-4, -3), "mode": "replicate"}, ValueError,
     (r"padding \(-4, -3\) of dimension 1 of input of shape \(3, 5\) gives output size -2; "
     r"expected >= 0"), True),
    (np.zeros((3, 0)), {"pad": (1, 1), "mode": "replicate"}, ValueError,
     (r"padding \(1, 1\) of dimension 1 of input of shape \(3, 0\): replicate padding needs a "
     r"non-empty dimension"), True),
    (X2, {"pad": (6, 0), "mode": "circular"}, ValueError,
     (r"padding \(6, 0\) of dimension 1 .* wraps around more than once; expected each positive "
     r"amount <= the \(cropped\) size 5"), True),
    # torch accepts this one for a (3, 5) input (overlapping copies) but raises for (1, 5)
    (X2, {"pad": (-2, 4), "mode": "circular"}, ValueError,
     r"padding \(-2, 4\) of dimension 1 .* wraps around more than once; .* size 3", False),
    (X2, {"pad": (-3, -3), "mode": "circular"}, ValueError,
     r"padding \(-3, -3\) of dimension 1 .* crops more than the whole dimension", True),
    (X2, {"pad": (-6, 1)}, ValueError,
     (r"padding \(-6, 1\) of dimension 1 of input of shape \(3, 5\) crops more than the whole "
     r"dimension; expected 5 \+ min\(left, 0\) \+ min\(right, 0\) >= 0"), True),
    (X2, {"pad": (0, 0, -2, -2)}, ValueError,
     r"padding \(-2, -2\) of dimension 0 .* crops more than the whole dimension", True),
]


@pytest.mark.parametrize(("x", "kwargs", "exc", "match", "_"), ERRORS)
def test_errors(x, kwargs, exc, match, _):
    with pytest.raises(exc, match=match):
        F.pad(tensor(x), **kwargs)


@pytest.mark.parametrize(("x", "kwargs"), [(x, kw) for x, kw, *_, torch_too in ERRORS if torch_too])
def test_errors_are_torch_errors(torch, x, kwargs):
    with pytest.raises((RuntimeError, NotImplementedError, TypeError, ValueError)):
        torch.nn.functional.pad(torch.tensor(x), **kwargs)
