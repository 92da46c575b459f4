"""Unbatched (C, H, W) input to conv2d and the pools, as PyTorch accepts it: the result (and
every gradient) equals the batched result for a batch of one with the batch axis removed."""
from __future__ import annotations

import numpy as np
import pytest

import numcnn as nc
from numcnn import functional as F
from numcnn import nn

CONV_CASES = [
    {},
    {"stride": 2, "padding": 1},
    {"padding": "same", "dilation": 2},
    {"padding": "same"},                   # kernel 4: asymmetric 'same' pads
    {"stride": (2, 1), "padding": (0, 2), "groups": 2},
]


def _pair(x_np, w_np, b_np, fn, unbatched: bool):
    """Run ``fn`` on (C, H, W) or on (1, C, H, W) input; return output and gradients."""
    x = nc.tensor(x_np if unbatched else x_np[None], requires_grad=True)
    w = nc.tensor(w_np, requires_grad=True) if w_np is not None else None
    b = nc.tensor(b_np, requires_grad=True) if b_np is not None else None
    y = fn(x, w, b)
    g = np.random.default_rng(1).standard_normal(y.shape).astype(y.dtype)
    (y * nc.tensor(g)).sum().backward()
    gx = x.grad if unbatched else x.grad[0]
    out = y.data if unbatched else y.data[0]
    return out, gx, None if w is None else w.grad, None if b is None else b.grad


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_unbatched_equals_batched(rng, case):
    groups = case.get("groups", 1)
    k = 4 if case.get("padding") == "same" and "dilation" not in case else 3
    x = rng.standard_normal((4, 9, 8))
    w = rng.standard_normal((6, 4 // groups, k, k))
    b = rng.standard_normal(6)

    def fn(x, w, b):
        return F.conv2d(x, w, b, **case)

    y3, gx3, gw3, gb3 = _pair(x, w, b, fn, unbatched=True)
    y4, gx4, gw4, gb4 = _pair(x, w, b, fn, unbatched=False)
    assert y3.ndim == 3 and y3.shape == y4.shape
    np.testing.assert_allclose(y3, y4, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gx3, gx4, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gw3, gw4, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gb3, gb4, rtol=1e-12, atol=1e-12)


POOL_CASES = [
    (F.max_pool2d, {"kernel_size": 2}),
    (F.max_pool2d, {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
    (F.max_pool2d, {"kernel_size": 2, "stride": 1, "dilation": 2}),
    (F.avg_pool2d, {"kernel_size": 2}),
    (F.avg_pool2d, {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True}),
    (F.avg_pool2d, {"kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False}),
    (F.adaptive_avg_pool2d, {"output_size": (3, 2)}),
]


@pytest.mark.parametrize("pool, kwargs", POOL_CASES,
                         ids=[f"{p.__name__}-{i}" for i, (p, _) in enumerate(POOL_CASES)])
def test_pools_unbatched_equal_batched(rng, pool, kwargs):
    x = rng.standard_normal((3, 9, 7))
    y3, gx3, _, _ = _pair(x, None, None, lambda x, w, b: pool(x, **kwargs), unbatched=True)
    y4, gx4, _, _ = _pair(x, None, None, lambda x, w, b: pool(x, **kwargs), unbatched=False)
    assert y3.ndim == 3 and y3.shape == y4.shape
    np.testing.assert_allclose(y3, y4, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(gx3, gx4, rtol=1e-12, atol=1e-12)


def test_max_pool_indices_unbatched(rng):
    x = rng.standard_normal((2, 6, 6))
    y3, i3 = F.max_pool2d(x, 2, return_indices=True)
    y4, i4 = F.max_pool2d(x[None], 2, return_indices=True)
    np.testing.assert_array_equal(y3.data, y4.data[0])
    np.testing.assert_array_equal(i3, i4[0])


def test_layers_accept_unbatched_input(rng):
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.AvgPool2d(2), nn.AdaptiveAvgPool2d(1))
    x = rng.standard_normal((1, 8, 8)).astype(np.float32)
    assert model(x).shape == (4, 1, 1)
    np.testing.assert_allclose(model(x).data, model(x[None]).data[0], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("bad", [(8,), (8, 8), (1, 1, 1, 8, 8)])
def test_other_ranks_are_rejected(bad):
    with pytest.raises(ValueError, match="4-D .* or 3-D unbatched"):
        F.conv2d(np.zeros(bad), np.zeros((1, 1, 1, 1)))
    with pytest.raises(ValueError, match="4-D .* or 3-D unbatched"):
        F.max_pool2d(np.zeros(bad), 1)


def test_unbatched_matches_torch(torch, rng):
    """PyTorch's own unbatched conv2d and pools agree too (gradients included)."""
    x = rng.standard_normal((4, 9, 8))
    w = rng.standard_normal((6, 2, 3, 3))
    b = rng.standard_normal(6)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.max_pool2d(
        torch.nn.functional.conv2d(tx, torch.tensor(w), torch.tensor(b), padding=1, groups=2),
        3, 2, 1, ceil_mode=True)
    ty.sum().backward()
    nx = nc.tensor(x, requires_grad=True)
    ny = F.max_pool2d(F.conv2d(nx, w, b, padding=1, groups=2), 3, 2, 1, ceil_mode=True)
    ny.sum().backward()
    np.testing.assert_allclose(ny.data, ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(nx.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-10)
