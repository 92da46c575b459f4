"""nn.ConvTranspose2d: PyTorch's arguments, defaults, parameter layout, state_dict keys,
``output_size=``, dtype handling and refusals (values against PyTorch: tests/interop)."""
from __future__ import annotations

import numpy as np
import pytest

import numcnn as nc
from numcnn import functional as F
from numcnn import nn


def test_defaults_and_layout():
    m = nn.ConvTranspose2d(6, 4, 3)
    assert (m.stride, m.padding, m.output_padding, m.dilation, m.groups) == \
        ((1, 1), (0, 0), (0, 0), (1, 1), 1)
    assert m.weight.shape == (6, 4, 3, 3) and m.bias.shape == (4,)
    assert m.weight.dtype == np.float32 and m.padding_mode == "zeros"
    assert list(m.state_dict()) == ["weight", "bias"]
    assert nn.ConvTranspose2d(6, 4, (2, 5), groups=2, bias=False).weight.shape == (6, 2, 2, 5)
    assert "bias" not in nn.ConvTranspose2d(6, 4, 3, bias=False).state_dict()


def test_positional_order_is_torchs():
    # in, out, kernel, stride, padding, output_padding, groups, bias, dilation
    m = nn.ConvTranspose2d(4, 6, 3, 2, 1, 1, 2, False, 1)
    assert (m.stride, m.padding, m.output_padding, m.groups, m.bias, m.dilation) == \
        ((2, 2), (1, 1), (1, 1), 2, None, (1, 1))


def test_forward_is_the_functional_and_trains():
    nc.manual_seed(0)
    m = nn.ConvTranspose2d(3, 2, 4, stride=2, padding=1, dtype=np.float64)
    x = nc.tensor(np.random.default_rng(0).standard_normal((2, 3, 5, 5)), requires_grad=True)
    y = m(x)
    assert y.shape == (2, 2, 10, 10) and y.dtype == np.float64
    expected = F.conv_transpose2d(x, m.weight, m.bias, stride=2, padding=1)
    np.testing.assert_array_equal(y.data, expected.data)
    opt = nc.optim.SGD(m.parameters(), lr=0.1)
    target = np.zeros(y.shape)
    loss0 = F.mse_loss(y, target)
    opt.zero_grad()
    loss0.backward()
    assert m.weight.grad.shape == m.weight.shape and m.bias.grad.shape == (2,)
    opt.step()
    assert F.mse_loss(m(x), target).item() < loss0.item()


def test_output_size_picks_the_output_padding():
    m = nn.ConvTranspose2d(2, 2, 3, stride=2, padding=1)
    x = np.zeros((1, 2, 4, 4), np.float32)
    assert m(x).shape == (1, 2, 7, 7)
    assert m(x, output_size=(8, 8)).shape == (1, 2, 8, 8)
    assert m(x, output_size=[1, 2, 7, 8]).shape == (1, 2, 7, 8)
    assert m(x[0], output_size=(8, 7)).shape == (2, 8, 7)
    with pytest.raises(ValueError, match=r"valid sizes range from \(7, 7\) to \(8, 8\)"):
        m(x, output_size=(9, 8))
    with pytest.raises(ValueError, match="output_size must have 2 or 4 elements"):
        m(x, output_size=(8,))


def test_float64_parameters_and_to():
    m = nn.ConvTranspose2d(2, 2, 3, dtype=np.float64)
    assert m.weight.dtype == m.bias.dtype == np.float64
    assert m.to(np.float32).weight.dtype == np.float32


@pytest.mark.parametrize("kwargs, exc, words", [
    ({"groups": 4}, ValueError, "out_channels=6 must be divisible by groups=4"),
    ({"groups": 0}, ValueError, "groups must be >= 1"),
    ({"groups": 1.5}, TypeError, "groups must be an int"),
    ({"padding": "same"}, TypeError, "no 'same' or 'valid'"),
    ({"padding": -1}, ValueError, "padding must be >= 0"),
    ({"stride": 2, "output_padding": 2}, ValueError, "output_padding must be smaller than"),
    ({"output_padding": -1}, ValueError, "output_padding must be >= 0"),
    ({"kernel_size": 0}, ValueError, "kernel_size must be >= 1"),
    ({"padding_mode": "reflect"}, ValueError, "only padding_mode='zeros'"),
    ({"bias": 1}, TypeError, "bias must be a bool"),
    ({"dtype": np.int32}, TypeError, "dtype must be float32 or float64"),
    ({"device": "cuda"}, ValueError, "device"),
])
def test_refusals(kwargs, exc, words):
    args = {"in_channels": 4, "out_channels": 6, "kernel_size": 3, **kwargs}
    with pytest.raises(exc, match=words.replace("(", r"\(")):
        nn.ConvTranspose2d(**args)


def test_wrong_input_channels_names_the_layouts():
    m = nn.ConvTranspose2d(4, 6, 3)
    with pytest.raises(ValueError, match="input has 3 channels but weight expects 4"):
        m(np.zeros((1, 3, 5, 5), np.float32))
