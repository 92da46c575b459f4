"""Layers and functions PyTorch tutorials use, against PyTorch: GELU, SiLU, Softplus, Dropout2d,
MaxUnpool2d, Upsample/interpolate, Conv2d padding modes, Conv1d, gradient clipping, init."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numcnn as nc
import numcnn.functional as F
from numcnn import nn
from numcnn.gradcheck import gradcheck
from numcnn.ops.activations import erf

DTYPES = [np.float64, np.float32]
TOL = {np.float64: 1e-10, np.float32: 2e-5}


def _both(torch, fn_ours, fn_theirs, a, rng, extra=()):
    """Run both on ``a`` (and extra arrays), backpropagate one random upstream gradient;
    return (y, gx, ty, tgx)."""
    x = nc.tensor(a, requires_grad=True)
    y = fn_ours(x, *extra)
    g = rng.standard_normal(y.shape).astype(a.dtype)
    (y * nc.tensor(g)).sum().backward()
    tx = torch.tensor(a, requires_grad=True)
    ty = fn_theirs(tx, *[torch.tensor(e) if isinstance(e, np.ndarray) else e for e in extra])
    (ty * torch.tensor(g)).sum().backward()
    return y, x.grad, ty.detach().numpy(), tx.grad.numpy()


def _close(a, b, dtype):
    np.testing.assert_allclose(a, b, rtol=TOL[dtype], atol=TOL[dtype])


# --- activations ------------------------------------------------------------------------------

def test_erf_is_double_precise():
    xs = np.concatenate([np.linspace(-7, 7, 4001), [0.0, 2.9999999, 3.0, 3.0000001, 30.0]])
    expected = np.array([math.erf(v) for v in xs])
    np.testing.assert_allclose(erf(xs), expected, rtol=0, atol=3e-15)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layer, twin", [
    (lambda: nn.GELU(), lambda t: t.nn.GELU()),
    (lambda: nn.GELU(approximate="tanh"), lambda t: t.nn.GELU(approximate="tanh")),
    (lambda: nn.SiLU(), lambda t: t.nn.SiLU()),
    (lambda: nn.Softplus(), lambda t: t.nn.Softplus()),
    (lambda: nn.Softplus(beta=2.0, threshold=3.0), lambda t: t.nn.Softplus(beta=2.0,
                                                                          threshold=3.0)),
    (lambda: nn.Softplus(beta=0.5, threshold=1.0), lambda t: t.nn.Softplus(beta=0.5,
                                                                          threshold=1.0)),
])
def test_activations_match_torch(torch, dtype, layer, twin, rng):
    a = (rng.standard_normal((3, 4, 5)) * 4).astype(dtype)
    a.flat[:4] = [0.0, 40.0, -40.0, 1.5]          # zero, the linear regime, the far tails
    y, gx, ty, tgx = _both(torch, layer(), twin(torch), a, rng)
    _close(y.data, ty, dtype)
    _close(gx, tgx, dtype)
    assert y.dtype == dtype and gx.dtype == dtype


@pytest.mark.parametrize("fn", [
    lambda x: F.gelu(x), lambda x: F.gelu(x, approximate="tanh"), F.silu,
    lambda x: F.softplus(x, beta=1.5, threshold=2.0)])
def test_activations_gradcheck(fn, rng):
    x = nc.tensor(rng.standard_normal((3, 4)) * 2, requires_grad=True)
    assert gradcheck(fn, (x,))


def test_activation_refusals():
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        nn.GELU(approximate="fast")
    with pytest.raises(ValueError, match="approximate must be 'none' or 'tanh'"):
        F.gelu(nc.zeros(2), approximate="erf")
    with pytest.raises(TypeError, match="beta must be a number"):
        nn.Softplus(beta="1")
    with pytest.raises(TypeError, match="floating dtype"):
        F.silu(np.arange(3))


# --- Dropout2d --------------------------------------------------------------------------------

def test_dropout2d_zeroes_whole_channels_like_torch(torch):
    x = np.ones((64, 16, 3, 3), dtype=np.float32)
    nc.manual_seed(0)
    y = nn.Dropout2d(p=0.25)(x).data
    ty = torch.nn.Dropout2d(p=0.25)(torch.tensor(x)).numpy()
    for out in (y, ty):
        planes = out.reshape(64, 16, -1)
        assert set(np.unique(planes)) <= {0.0, np.float32(1 / 0.75)}
        assert (planes.min(axis=2) == planes.max(axis=2)).all()   # a channel is all or nothing
        assert 0.2 < (planes[:, :, 0] == 0).mean() < 0.3


def test_dropout2d_gradient_is_the_mask(rng):
    x = nc.tensor(rng.standard_normal((4, 6, 2, 2)), requires_grad=True)
    nc.manual_seed(1)
    y = F.dropout2d(x, 0.5)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    mask = y.data / x.data
    np.testing.assert_allclose(x.grad, g * mask)
    nc.manual_seed(1)
    assert gradcheck(lambda x: (nc.manual_seed(1), F.dropout2d(x, 0.5))[1], (x,))


def test_dropout2d_modes_and_refusals():
    x = nc.randn(2, 3, 4, 4)
    layer = nn.Dropout2d(0.5).eval()
    assert layer(x) is x
    assert (F.dropout2d(x, 1.0).data == 0).all()
    assert F.dropout2d(x, 0.0) is x
    with pytest.warns(UserWarning, match=r"read as \(N, C, L\)"):
        y = F.dropout2d(nc.ones(8, 5, 7), 0.5).data
    assert (y.min(axis=2) == y.max(axis=2)).all()
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout2d(x, 1.5)
    with pytest.raises(ValueError, match="4-D .* or 3-D"):
        F.dropout2d(nc.ones(2, 3), 0.5)
    with pytest.raises(ValueError, match="probability"):
        nn.Dropout2d(-0.1)


# --- MaxUnpool2d ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k, s, p, shape, output_size", [
    (2, None, 0, (2, 3, 8, 8), None),
    (3, 2, 1, (1, 2, 9, 7), None),
    (2, 2, 0, (2, 1, 9, 9), (9, 9)),
    (3, 1, 0, (1, 2, 6, 6), None),       # overlapping windows: indices may repeat
])
def test_max_unpool_matches_torch(torch, dtype, k, s, p, shape, output_size, rng):
    a = rng.standard_normal(shape).astype(dtype)
    if s == 1:
        a = np.round(a * 4) / 4 + np.arange(a.size).reshape(shape) * 1e-3   # no ties
    pooled, idx = F.max_pool2d(nc.tensor(a), k, s, p, return_indices=True)
    _tpooled, tidx = torch.nn.functional.max_pool2d(torch.tensor(a), k, s, p,
                                                   return_indices=True)
    np.testing.assert_array_equal(idx, tidx.numpy())
    y, gx, ty, tgx = _both(
        torch, lambda x: nn.MaxUnpool2d(k, s, p)(x, idx, output_size),
        lambda x: torch.nn.MaxUnpool2d(k, s, p)(x, tidx, output_size), pooled.data, rng)
    np.testing.assert_array_equal(y.data, ty)
    np.testing.assert_array_equal(gx, tgx)


def test_max_unpool_gradcheck_and_unbatched(rng):
    a = rng.standard_normal((2, 6, 6))
    pooled, idx = F.max_pool2d(nc.tensor(a), 2, return_indices=True)
    x = nc.tensor(pooled.data, requires_grad=True)
    assert gradcheck(lambda x: F.max_unpool2d(x, idx, 2), (x,))
    assert F.max_unpool2d(x, idx, 2).shape == (2, 6, 6)


def test_max_unpool_refusals(torch):
    x = nc.ones(1, 1, 2, 2)
    idx = np.zeros((1, 1, 2, 2), dtype=np.int64)
    with pytest.raises(ValueError, match=r"invalid output_size .*dim 0 must be between 2 and 6"):
        F.max_unpool2d(x, idx, 2, output_size=(7, 4))
    with pytest.raises(ValueError):
        torch.nn.functional.max_unpool2d(torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2,
                                         dtype=torch.int64), 2, output_size=(7, 4))
    with pytest.raises(ValueError, match="Found an invalid max index: 16"):
        F.max_unpool2d(x, np.full((1, 1, 2, 2), 16, np.int64), 2)
    with pytest.raises(TypeError, match="int64"):
        F.max_unpool2d(x, idx.astype(np.int32), 2)
    with pytest.raises(ValueError, match="shape of indices"):
        F.max_unpool2d(x, idx[..., :1], 2)


# --- interpolate / Upsample ---------------------------------------------------------------------

CASES = [
    {"size": (7, 9)}, {"size": 5}, {"size": (3, 2)}, {"scale_factor": 2},
    {"scale_factor": 1.7}, {"scale_factor": (0.6, 2.5)}, {"scale_factor": 0.5},
    {"scale_factor": 1.7, "recompute_scale_factor": True}, {"size": (4, 5)},
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode, align", [("nearest", None), ("nearest-exact", None),
                                         ("bilinear", None), ("bilinear", False),
                                         ("bilinear", True)])
@pytest.mark.parametrize("kwargs", CASES)
def test_interpolate_matches_torch(torch, dtype, mode, align, kwargs, rng):
    a = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
    y, gx, ty, tgx = _both(
        torch, lambda x: F.interpolate(x, mode=mode, align_corners=align, **kwargs),
        lambda x: torch.nn.functional.interpolate(x, mode=mode, align_corners=align, **kwargs),
        a, rng)
    assert y.shape == ty.shape and y.dtype == dtype and gx.dtype == dtype
    _close(y.data, ty, dtype)
    _close(gx, tgx, dtype)


@pytest.mark.parametrize("mode, align", [("nearest", None), ("nearest-exact", None),
                                         ("linear", False), ("linear", True)])
@pytest.mark.parametrize("kwargs", [{"size": 9}, {"scale_factor": 1.5}, {"size": 3}])
def test_interpolate_1d_matches_torch(torch, mode, align, kwargs, rng):
    a = rng.standard_normal((2, 3, 5))
    y, gx, ty, tgx = _both(
        torch, lambda x: F.interpolate(x, mode=mode, align_corners=align, **kwargs),
        lambda x: torch.nn.functional.interpolate(x, mode=mode, align_corners=align, **kwargs),
        a, rng)
    _close(y.data, ty, np.float64)
    _close(gx, tgx, np.float64)


@pytest.mark.parametrize("mode, align", [("nearest", None), ("bilinear", False),
                                         ("bilinear", True), ("nearest-exact", None)])
def test_interpolate_gradcheck(mode, align, rng):
    x = nc.tensor(rng.standard_normal((1, 2, 3, 4)), requires_grad=True)
    assert gradcheck(lambda x: F.interpolate(x, size=(5, 3), mode=mode, align_corners=align),
                     (x,))


@settings(max_examples=25)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 9), st.integers(1, 9),
       st.sampled_from(["nearest", "bilinear", "nearest-exact"]), st.booleans())
def test_interpolate_shapes_and_adjoint(h, w, ho, wo, mode, align):
    rng = np.random.default_rng(h * 100 + w * 10 + ho)
    x = nc.tensor(rng.standard_normal((2, 3, h, w)), requires_grad=True)
    y = F.interpolate(x, size=(ho, wo), mode=mode, align_corners=align if mode == "bilinear"
                      else None)
    assert y.shape == (2, 3, ho, wo)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    # adjoint identity: <g, A x> == <Aᵀ g, x>
    assert np.isclose((g * y.data).sum(), (x.grad * x.data).sum(), rtol=1e-10, atol=1e-10)


def test_upsample_layer(torch, rng):
    a = rng.standard_normal((1, 2, 3, 3)).astype(np.float32)
    for kwargs in ({"scale_factor": 2}, {"size": (5, 4), "mode": "bilinear",
                                              "align_corners": True}):
        ours = nn.Upsample(**kwargs)(a).data
        theirs = torch.nn.Upsample(**kwargs)(torch.tensor(a)).numpy()
        _close(ours, theirs, np.float32)
    assert "scale_factor=2.0" in repr(nn.Upsample(scale_factor=2))


@pytest.mark.parametrize("kwargs", [
    {"size": 4, "scale_factor": 2}, {}, {"size": 4, "align_corners": True},
    {"size": 4, "mode": "linear"}, {"size": (2, 3, 4)}, {"scale_factor": (2, 2, 2)},
])
def test_interpolate_refuses_what_torch_refuses(torch, kwargs):
    a = np.ones((1, 1, 3, 3))
    with pytest.raises((ValueError, NotImplementedError, RuntimeError)):
        torch.nn.functional.interpolate(torch.tensor(a), **kwargs)
    with pytest.raises((ValueError, NotImplementedError)):
        F.interpolate(nc.tensor(a), **kwargs)


def test_interpolate_messages():
    x = nc.ones(1, 1, 3, 3)
    with pytest.raises(ValueError, match="only one of size or scale_factor should be defined"):
        F.interpolate(x, size=4, scale_factor=2)
    with pytest.raises(ValueError, match="either size or scale_factor should be defined"):
        F.interpolate(x)
    with pytest.raises(ValueError, match="align_corners option can only be set"):
        F.interpolate(x, size=4, align_corners=False)
    with pytest.raises(NotImplementedError, match="Got 4D input, but linear mode needs 3D"):
        F.interpolate(x, size=4, mode="linear")
    # implemented by PyTorch, not by numcnn: refused clearly
    with pytest.raises(NotImplementedError, match="mode 'bicubic' is not supported"):
        F.interpolate(x, size=4, mode="bicubic")
    with pytest.raises(NotImplementedError, match="antialias=True is not supported"):
        F.interpolate(x, scale_factor=0.5, mode="bilinear", antialias=True)


# --- Conv2d padding modes, Conv1d ---------------------------------------------------------------

def _conv_pair(torch, ours, theirs):
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.weight.data))
        if ours.bias is not None:
            theirs.bias.copy_(torch.tensor(ours.bias.data))


# PyTorch's own note that it copies the input for an even kernel with padding='same'
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning")
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular", "zeros"])
@pytest.mark.parametrize("kwargs", [{"kernel_size": 3, "padding": 1},
                                    {"kernel_size": (3, 2), "padding": (2, 1), "stride": 2},
                                    {"kernel_size": 4, "padding": "same"},
                                    {"kernel_size": 3, "padding": 1, "dilation": 2, "groups": 2}])
def test_conv2d_padding_modes_match_torch(torch, dtype, mode, kwargs, rng):
    ours = nn.Conv2d(4, 6, padding_mode=mode, dtype=dtype, **kwargs)
    theirs = torch.nn.Conv2d(4, 6, padding_mode=mode, dtype=getattr(torch, np.dtype(dtype).name),
                             **kwargs)
    _conv_pair(torch, ours, theirs)
    a = rng.standard_normal((2, 4, 7, 6)).astype(dtype)
    y, gx, ty, tgx = _both(torch, ours, theirs, a, rng)
    _close(y.data, ty, dtype)
    _close(gx, tgx, dtype)
    _close(ours.weight.grad, theirs.weight.grad.numpy(), dtype)
    assert (f"padding_mode={mode}" in repr(ours)) == (mode != "zeros")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("kwargs", [{"kernel_size": 3}, {"kernel_size": 3, "padding": 2,
                                                              "stride": 2},
                                    {"kernel_size": (2,), "padding": "same", "dilation": (3,)},
                                    {"kernel_size": 3, "padding": 1, "groups": 2, "bias": False}])
def test_conv1d_matches_torch(torch, dtype, mode, kwargs, rng):
    ours = nn.Conv1d(4, 6, padding_mode=mode, dtype=dtype, **kwargs)
    theirs = torch.nn.Conv1d(4, 6, padding_mode=mode, dtype=getattr(torch, np.dtype(dtype).name),
                             **kwargs)
    _conv_pair(torch, ours, theirs)
    for shape in ((3, 4, 11), (4, 11)):                   # batched and unbatched
        a = rng.standard_normal(shape).astype(dtype)
        ours.zero_grad()
        theirs.zero_grad()
        y, gx, ty, tgx = _both(torch, ours, theirs, a, rng)
        _close(y.data, ty, dtype)
        _close(gx, tgx, dtype)
        _close(ours.weight.grad, theirs.weight.grad.numpy(), dtype)


def test_conv1d_gradcheck_and_reuses_the_2d_kernel_without_copies(rng, monkeypatch):
    x = nc.tensor(rng.standard_normal((2, 4, 9)), requires_grad=True)
    w = nc.tensor(rng.standard_normal((6, 2, 3)), requires_grad=True)
    b = nc.tensor(rng.standard_normal(6), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=1, groups=2),
                     (x, w, b))
    seen = []
    real = F.conv2d

    def spy(x4, w4, *args, **kwargs):
        seen.append((x4.shape, w4.shape, np.shares_memory(x4.data, x.data),
                     np.shares_memory(w4.data, w.data)))
        return real(x4, w4, *args, **kwargs)

    monkeypatch.setattr(F, "conv2d", spy)
    F.conv1d(x, w, stride=1, groups=2)
    assert seen == [((2, 4, 1, 9), (6, 2, 1, 3), True, True)]


def test_conv_padding_mode_and_conv1d_refusals():
    with pytest.raises(ValueError, match=r"padding_mode must be one of \['zeros', 'reflect', "
                                         r"'replicate', 'circular'\]"):
        nn.Conv2d(1, 1, 3, padding_mode="mirror")
    with pytest.raises(TypeError, match="stride to be a single integer value or a list of 1"):
        F.conv1d(nc.ones(1, 1, 5), nc.ones(1, 1, 3), stride=(1, 2))
    with pytest.raises(ValueError, match="weight must be 3-D"):
        F.conv1d(nc.ones(1, 1, 5), nc.ones(1, 1, 1, 3))
    with pytest.raises(ValueError, match="padding='same' is not supported for strided"):
        nn.Conv1d(1, 1, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="reflect padding must be < the dimension size"):
        nn.Conv2d(1, 1, 5, padding=3, padding_mode="reflect")(nc.ones(1, 1, 3, 3))


# --- BatchNorm1d, Identity --------------------------------------------------------------------

def test_batchnorm1d_and_identity_match_torch(torch, rng):
    a = rng.standard_normal((8, 5)).astype(np.float32)
    ours, theirs = nn.BatchNorm1d(5), torch.nn.BatchNorm1d(5)
    for _ in range(2):
        y, gx, ty, tgx = _both(torch, ours, theirs, a, rng)
        _close(y.data, ty, np.float32)
        _close(gx, tgx, np.float32)
    _close(ours.running_var, theirs.running_var.numpy(), np.float32)
    assert nn.Identity(3, some=4)(a) is a or np.array_equal(nn.Identity()(a).data, a)


# --- gradient clipping ------------------------------------------------------------------------

@pytest.mark.parametrize("norm_type", [2.0, 1, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
@pytest.mark.parametrize("dtype", DTYPES)
def test_clip_grad_norm_matches_torch(torch, norm_type, max_norm, dtype, rng):
    grads = [rng.standard_normal(s).astype(dtype) for s in ((3, 4), (5,), (2, 2, 2))]
    ours = [nc.tensor(np.zeros_like(g), requires_grad=True) for g in grads]
    theirs = [torch.zeros(g.shape, dtype=getattr(torch, np.dtype(dtype).name),
                          requires_grad=True) for g in grads]
    for o, t, g in zip(ours, theirs, grads):
        o.grad = g.copy()
        t.grad = torch.tensor(g)
    ours.append(nc.tensor(np.zeros(2), requires_grad=True))     # no grad: skipped
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert isinstance(total, nc.Tensor) and total.shape == ()
    _close(total.item(), ttotal.item(), dtype)
    for o, t in zip(ours, theirs):
        _close(o.grad, t.grad.numpy(), dtype)
        assert o.grad.dtype == dtype


def test_clip_grad_value_and_refusals(torch, rng):
    g = rng.standard_normal((4, 4)) * 3
    p = nc.tensor(np.zeros((4, 4)), requires_grad=True)
    p.grad = g.copy()
    tp = torch.zeros(4, 4, dtype=torch.float64, requires_grad=True)
    tp.grad = torch.tensor(g)
    nn.utils.clip_grad_value_(p, 1.0)
    torch.nn.utils.clip_grad_value_(tp, 1.0)
    np.testing.assert_array_equal(p.grad, tp.grad.numpy())
    p.grad = np.array([[np.nan] * 4] * 4)
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    with pytest.raises(TypeError, match="max_norm must be a number"):
        nn.utils.clip_grad_norm_([p], "1")
    assert nn.utils.clip_grad_norm_([nc.tensor(np.zeros(2), requires_grad=True)], 1.0).item() == 0


# --- init helpers ------------------------------------------------------------------------------

def test_deterministic_inits_match_torch(torch):
    for shape, groups in (((6, 3, 3, 3), 1), ((4, 2, 5), 2), ((4, 4, 3, 3, 3), 1),
                          ((8, 2, 3, 3), 2)):
        ours, theirs = np.empty(shape, np.float32), torch.empty(shape)
        nn.init.dirac_(ours, groups)
        torch.nn.init.dirac_(theirs, groups)
        np.testing.assert_array_equal(ours, theirs.numpy())
    ours, theirs = np.empty((3, 5)), torch.empty(3, 5)
    nn.init.eye_(ours)
    torch.nn.init.eye_(theirs)
    np.testing.assert_array_equal(ours, theirs.numpy())


def test_random_inits_have_their_properties(rng):
    gen = np.random.default_rng(0)
    for shape in ((4, 9), (9, 4), (6, 2, 3, 3)):
        w = nn.init.orthogonal_(np.empty(shape), gain=2.0, generator=gen)
        flat = w.reshape(shape[0], -1)
        gram = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
        np.testing.assert_allclose(gram, 4.0 * np.eye(len(gram)), atol=1e-12)
    t = nn.init.trunc_normal_(np.empty(20000), mean=1.0, std=2.0, a=0.0, b=3.0, generator=gen)
    assert t.min() >= 0.0 and t.max() <= 3.0 and abs(t.mean() - 1.4) < 0.05
    s = nn.init.sparse_(np.empty((10, 30)), sparsity=0.3, std=0.5, generator=gen)
    assert ((s == 0).sum(axis=0) == 3).all()
    p = nn.Parameter(np.empty((3, 3), np.float32))
    assert nn.init.orthogonal_(p) is p and p.dtype == np.float32


def test_init_refusals(torch):
    for fn in (nn.init.eye_, nn.init.orthogonal_):
        with pytest.raises(ValueError, match="dimensions are supported"):
            fn(np.empty(3))
    with pytest.raises(ValueError, match="Only tensors with 3, 4, or 5 dimensions"):
        nn.init.dirac_(np.empty((2, 2)))
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.init.dirac_(np.empty((3, 2, 3)), groups=2)
    with pytest.raises(ValueError, match="std >= 0 and a <= b"):
        nn.init.trunc_normal_(np.empty(3), a=1, b=0)


def test_layers_are_exported_with_torch_names():
    for name in ("GELU", "SiLU", "Softplus", "Identity", "BatchNorm1d", "Dropout2d",
                 "MaxUnpool2d", "Upsample", "Conv1d"):
        assert name in nn.__all__ and isinstance(getattr(nn, name)(*{
            "Softplus": (), "GELU": (), "SiLU": (), "Identity": (), "Dropout2d": (),
            "BatchNorm1d": (3,), "MaxUnpool2d": (2,), "Upsample": (None, 2.0),
            "Conv1d": (1, 1, 3)}[name]), nn.Module)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.Upsample(scale_factor=2)(np.ones((1, 1, 2, 2)))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_conv2d_padding_mode_gradcheck(mode, rng):
    conv = nn.Conv2d(2, 3, 3, padding=(1, 2), padding_mode=mode, dtype=np.float64)
    x = nc.tensor(rng.standard_normal((1, 2, 4, 5)), requires_grad=True)
    assert gradcheck(lambda x, w, b: F.conv2d(F.pad(x, (2, 2, 1, 1), mode=mode), w, b),
                     (x, conv.weight, conv.bias))
    np.testing.assert_allclose(
        conv(x).data, F.conv2d(F.pad(x, (2, 2, 1, 1), mode=mode), conv.weight, conv.bias).data)


@settings(max_examples=30)
@given(st.integers(1, 12), st.integers(1, 4), st.integers(1, 3), st.integers(0, 2),
       st.integers(1, 2))
def test_conv1d_output_length(length, k, s, p, d):
    keff = d * (k - 1) + 1
    if length + 2 * p < keff:
        with pytest.raises(ValueError, match="does not fit"):
            F.conv1d(nc.ones(1, 2, length), nc.ones(3, 2, k), stride=s, padding=p, dilation=d)
        return
    y = F.conv1d(nc.ones(1, 2, length), nc.ones(3, 2, k), stride=s, padding=p, dilation=d)
    assert y.shape == (1, 3, (length + 2 * p - keff) // s + 1)


@settings(max_examples=30)
@given(st.integers(2, 9), st.integers(2, 9), st.integers(1, 3), st.integers(1, 3))
def test_max_unpool_inverts_the_pool_positions(h, w, k, s):
    if k > min(h, w):
        return
    rng = np.random.default_rng(h * 31 + w)
    x = nc.tensor(rng.permutation(h * w).reshape(1, 1, h, w).astype(np.float64))
    y, idx = F.max_pool2d(x, k, s, return_indices=True)
    out = F.max_unpool2d(y, idx, k, s, output_size=(h, w)).data.reshape(-1)
    # every maximum goes back where it was found; every other cell is zero
    np.testing.assert_array_equal(out[idx.ravel()], y.data.ravel())
    np.testing.assert_array_equal(out[idx.ravel()], x.data.reshape(-1)[idx.ravel()])
    others = np.ones(h * w, bool)
    others[idx.ravel()] = False
    assert (out[others] == 0).all()


def test_padding_mode_survives_save_and_is_not_exported_wrongly(tmp_path):
    pytest.importorskip("safetensors")
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="circular"))
    model.save(tmp_path / "m.safetensors")
    again = nn.Module.load(tmp_path / "m.safetensors")
    assert again[0].padding_mode == "circular"
    x = nc.randn(1, 1, 5, 5)
    np.testing.assert_array_equal(model(x).data, again(x).data)
    pytest.importorskip("onnx")
    from numcnn.onnx import OnnxExportError, export
    with pytest.raises(OnnxExportError, match="padding_mode='circular'"):
        export(model, (1, 5, 5), tmp_path / "m.onnx")


def test_sequentials_of_the_new_layers_save_with_their_architecture(tmp_path):
    pytest.importorskip("safetensors")
    model = nn.Sequential(nn.Conv1d(2, 4, 3, padding=1, padding_mode="reflect"), nn.GELU("tanh"),
                          nn.Softplus(2.0, 5.0), nn.SiLU(), nn.Dropout2d(0.3),
                          nn.Upsample(scale_factor=2, mode="linear", align_corners=True))
    model.save(tmp_path / "m.safetensors")
    again = nn.Module.load(tmp_path / "m.safetensors")
    assert repr(again) == repr(model.eval())
    x = nc.randn(2, 2, 6)
    with pytest.warns(UserWarning, match="dropout2d: a 3-D input is read as"):
        np.testing.assert_array_equal(model(x).data, again(x).data)
